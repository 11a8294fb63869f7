"""`expire_promotions [--org ID] [--batch-size N]`: mark earned promotions past their validTill EXPIRED.

The same service runs every hour as the Celery beat task `wallets.tasks.earned_promotions_expire_task`;
this command is for a run on demand (or from cron where no beat runs). Running it again changes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from promotions.models import Organization
from wallets.services import EXPIRE_BATCH, earned_promotions_expire


class Command(BaseCommand):
    help = "Mark ACTIVE earned promotions whose validTill has passed as EXPIRED, in batches; prints how many."

    def add_arguments(self, parser):
        parser.add_argument("--org", type=int, help="Only this org's instances (default: every org).")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=EXPIRE_BATCH,
            help=f"Instances per transaction (default {EXPIRE_BATCH:,}).",
        )

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        org = None
        if options["org"] is not None:
            org = Organization.objects.filter(pk=options["org"]).first()
            if org is None:
                raise CommandError(f"Organization {options['org']} does not exist.")
        expired = earned_promotions_expire(org=org, batch_size=options["batch_size"])
        scope = f" of org {org.pk}" if org else ""
        self.stdout.write(f"Expired {expired:,} earned promotion(s){scope}.")
