"""`purge_idempotency_keys [--batch-size N]`: delete the Idempotency-Key rows past their 72-hour retention.

The same service runs every hour as the Celery beat task `promotions.tasks.idempotency_keys_purge_task`;
this command is for a run on demand (or from cron where no beat runs). Running it again deletes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from promotions.services import IDEMPOTENCY_PURGE_BATCH, idempotency_keys_purge


class Command(BaseCommand):
    help = (
        "Delete the Idempotency-Key rows older than their retention (72 hours), in batches; prints how many."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=IDEMPOTENCY_PURGE_BATCH,
            help=f"Rows per transaction (default {IDEMPOTENCY_PURGE_BATCH:,}).",
        )

    def handle(self, *args, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        purged = idempotency_keys_purge(batch_size=options["batch_size"])
        self.stdout.write(f"Purged {purged:,} idempotency key(s).")
