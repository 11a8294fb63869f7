"""The stored customer lists of the admin's bulk jobs: each deleted once no longer needed.

A preview stores the list it shows (the uploaded file, or the pasted text) under `bulk_jobs/`, and its
confirmation makes that file the job's input, which the job page offers for download. A preview that
is cancelled is deleted at once; one never confirmed is deleted once it can no longer be confirmed (a
day, `PREVIEW_MAX_AGE`); a job's input is deleted `BULK_JOB_INPUT_RETENTION_DAYS` after the job
finished (the job keeps the file's name). `bulk_job_inputs_purge` runs hourly on Celery beat and as
the `purge_bulk_job_inputs` command.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from wallets.models import BulkJob

logger = logging.getLogger(__name__)

INPUT_DIRECTORY = "bulk_jobs"
# How long a preview can be confirmed (its signed draft expires then).
PREVIEW_MAX_AGE = dt.timedelta(days=1)
# A preview being confirmed right at its expiry is not deleted under the confirmation's feet.
_PURGE_MARGIN = dt.timedelta(hours=1)


def bulk_job_input_store(*, key: str, content, extension: str) -> str:
    """Store a preview's customer list under its draft's random `key`; returns its storage path."""
    return default_storage.save(f"{INPUT_DIRECTORY}/{timezone.now():%Y/%m}/{key}.{extension}", content)


def bulk_job_input_discard(*, path: str) -> bool:
    """Delete a preview's stored list, unless a job took it as its input; whether it was deleted."""
    if not path.startswith(f"{INPUT_DIRECTORY}/") or BulkJob.objects.filter(input_file=path).exists():
        return False
    default_storage.delete(path)
    return True


def _stored_files(directory: str):
    try:
        directories, files = default_storage.listdir(directory)
    except FileNotFoundError:
        return
    for name in files:
        yield posixpath.join(directory, name)
    for name in directories:
        yield from _stored_files(posixpath.join(directory, name))


def bulk_job_inputs_purge(*, now: dt.datetime | None = None) -> int:
    """Delete the previews never confirmed that can no longer be, and the inputs of jobs finished more
    than `BULK_JOB_INPUT_RETENTION_DAYS` ago; returns how many files. Running it again deletes nothing.
    Not audited: the files are copies of what the job's items and audit events already record."""
    now = now or timezone.now()
    deleted = 0
    cutoff = now - PREVIEW_MAX_AGE - _PURGE_MARGIN
    old = [
        path for path in _stored_files(INPUT_DIRECTORY) if default_storage.get_modified_time(path) < cutoff
    ]
    taken = set(BulkJob.objects.filter(input_file__in=old).values_list("input_file", flat=True))
    for path in old:
        if path not in taken:
            default_storage.delete(path)
            deleted += 1
    finished = BulkJob.objects.filter(
        finished_at__lt=now - dt.timedelta(days=settings.BULK_JOB_INPUT_RETENTION_DAYS)
    ).exclude(input_file="")
    for job in finished.only("pk", "input_file"):
        default_storage.delete(job.input_file.name)
        BulkJob.objects.filter(pk=job.pk).update(input_file="")
        deleted += 1
    if deleted:
        logger.info("purged %s bulk job input file(s)", deleted)
    return deleted
