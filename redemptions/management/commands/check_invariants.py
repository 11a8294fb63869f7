"""Check the invariants of the stored data (`redemptions.invariants`), read-only, safe on production.

    python manage.py check_invariants                       # every org
    python manage.py check_invariants --org 100737 --org 100738

Runs in one read-only REPEATABLE READ transaction, so every check sees the same snapshot while the app
keeps writing, and nothing can be written. Each check is one statement, bound by the app's statement
timeout unless `--statement-timeout` says otherwise. Exits 0 with a one-line summary when every invariant holds;
otherwise lists the violations (a few rows per invariant) and exits 1.
"""

from __future__ import annotations

import time
from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from promotions.models import Organization
from redemptions.invariants import INVARIANTS, violations


class Command(BaseCommand):
    help = (
        "Check the invariants of the stored data (counters equal the redemptions they count, no limit "
        "exceeded, nothing crosses orgs, one audit event per redemption) in a read-only transaction. "
        "Exit status 1 and the violations when any is found, 0 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--org",
            dest="orgs",
            type=int,
            action="append",
            metavar="ID",
            help="Check only this organization's rows (repeat for several; default: every org).",
        )
        parser.add_argument(
            "--statement-timeout",
            type=float,
            metavar="SECONDS",
            help="Longest a check may run (0: no limit; default: the app's DB_STATEMENT_TIMEOUT_MS). "
            "A large database may need more than the default.",
        )

    def handle(self, *args, **options):
        if options["statement_timeout"] is not None and options["statement_timeout"] < 0:
            raise CommandError("--statement-timeout must be 0 (no limit) or more seconds.")
        org_ids = sorted(set(options["orgs"])) if options["orgs"] else None
        if org_ids is not None:
            missing = set(org_ids) - set(
                Organization.objects.filter(pk__in=org_ids).values_list("pk", flat=True)
            )
            if missing:
                raise CommandError(f"Organization {', '.join(map(str, sorted(missing)))} does not exist.")
        started = time.perf_counter()
        # Inside a caller's transaction (a test's) the isolation level is the caller's to set.
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            with connection.cursor() as cursor:
                if outermost:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if options["statement_timeout"] is not None:
                    milliseconds = round(options["statement_timeout"] * 1000)
                    cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
            found = violations(org_ids)
            transaction.set_rollback(True)
        elapsed = time.perf_counter() - started
        scope = f"org {', '.join(map(str, org_ids))}" if org_ids else "every org"
        if not found:
            self.stdout.write(f"All {len(INVARIANTS)} invariants hold for {scope} ({elapsed:.1f} s).")
            return
        by_invariant: dict[str, list[str]] = defaultdict(list)
        for violation in found:
            invariant, _, row = violation.partition(": ")
            by_invariant[invariant].append(row)
        for invariant in INVARIANTS:
            rows = by_invariant.get(invariant)
            self.stdout.write(f"{'FAIL' if rows else 'ok  '} {invariant}")
            for row in rows or ():
                self.stdout.write(f"       {row}")
        raise CommandError(
            f"{len(by_invariant)} of {len(INVARIANTS)} invariants violated for {scope} "
            f"({len(found)} rows listed above, a few per invariant)."
        )
