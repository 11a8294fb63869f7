"""Bring the dashboard's counters up to date: the closed days' summaries of every org (or those named)
and, with `--recount-tallies`, the per-promotion counts of instances issued and earned.

    python manage.py refresh_redemption_summaries                    # every org's missing days
    python manage.py refresh_redemption_summaries --recount-tallies  # after loading rows in SQL

The periodic task does the first every hour and the dashboard catches up on demand, so this is for
after a bulk load that bypassed the services (rows written in SQL): `--recount-tallies` recounts the
tallies from the earned promotions, and `--rebuild` drops the org's summaries and materialises them again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from promotions.models import Organization
from redemptions.models import RedemptionDay
from redemptions.summaries import redemption_days_refresh
from wallets.services import promotion_tallies_refresh


class Command(BaseCommand):
    help = "Materialise the missing days of the redemption summaries; optionally recount the tallies."

    def add_arguments(self, parser):
        parser.add_argument(
            "--org", type=int, action="append", help="an org id (repeatable); default every org"
        )
        parser.add_argument(
            "--recount-tallies", action="store_true", help="recount issued/earned per promotion"
        )
        parser.add_argument("--rebuild", action="store_true", help="drop the orgs' summaries first")

    def handle(self, *args, **options):
        orgs = Organization.objects.order_by("pk")
        if options["org"]:
            orgs = orgs.filter(pk__in=options["org"])
        for org in orgs:
            if options["recount_tallies"]:
                tallies = promotion_tallies_refresh(org=org)
                self.stdout.write(f"org {org.pk}: {tallies} promotion tallies recounted")
            if options["rebuild"]:
                RedemptionDay.objects.for_org(org).delete()
            days = redemption_days_refresh(org=org)
            self.stdout.write(f"org {org.pk}: {days} days materialised")
