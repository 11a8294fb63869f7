"""`check_promotions [--org ID ...] [--active-only]`: list the stored promotions the engine cannot evaluate.

Create and update refuse a promotion the engine cannot evaluate (400 naming the part); rows stored
before that, or a change of the engine, can still hold one. The evaluate API skips such a promotion
(and logs it); this command lists them, one line each: `<promotion id> org <org id> <name>: <path>:
<reason>`. Exit status 0 with a one-line summary when every promotion compiles, else 1.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from promotions.selectors import promotions_not_compiling


class Command(BaseCommand):
    help = "List stored promotions the promotion engine cannot evaluate; exit status 1 when there is any."

    def add_arguments(self, parser):
        parser.add_argument(
            "--org", type=int, action="append", dest="orgs", help="Only this org (repeatable)."
        )
        parser.add_argument("--active-only", action="store_true", help="Only active promotions.")

    def handle(self, *args, **options):
        failures = 0
        for promotion, reason in promotions_not_compiling(
            org_ids=options["orgs"], active_only=options["active_only"]
        ):
            failures += 1
            self.stdout.write(f"{promotion.pk} org {promotion.org_id} {promotion.name!r}: {reason}")
        if failures:
            self.stderr.write(f"{failures} promotion(s) the engine cannot evaluate.")
            sys.exit(1)
        self.stdout.write("Every promotion compiles.")
