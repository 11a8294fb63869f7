"""`purge_bulk_job_inputs`: delete the admin's stored customer lists that are no longer needed.

Previews never confirmed, once they can no longer be (a day), and the input files of jobs finished
more than `BULK_JOB_INPUT_RETENTION_DAYS` ago. The same service runs every hour as the Celery beat task
`wallets.tasks.bulk_job_inputs_purge_task`; this command is for a run on demand (or from cron where no
beat runs). Running it again deletes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from wallets.services import bulk_job_inputs_purge


class Command(BaseCommand):
    help = "Delete the bulk-job customer lists no longer needed (stale previews, old jobs' inputs); prints how many."

    def handle(self, *args, **options):
        purged = bulk_job_inputs_purge()
        self.stdout.write(f"Purged {purged:,} bulk job input file(s).")
