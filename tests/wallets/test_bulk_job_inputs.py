"""The admin's customer lists: uploads capped in bytes, and the stored lists deleted once no longer needed
(a cancelled preview at once, a preview never confirmed after a day, a job's input after its retention)."""

# The bulk screens' fixtures are imported from their test module, and pytest passes them by name.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.core.management import call_command
from django.utils import timezone

from tests.factories import CustomerFactory
from tests.wallets.test_admin_bulk_jobs import (  # noqa: F401
    _media,
    confirm,
    issue_preview,
    issue_url,
    job_url,
    marketer,
    promotion,
    upload,
)
from wallets.models import BulkJob
from wallets.services import bulk_job_inputs_purge
from wallets.tasks import bulk_job_inputs_purge_task


def stored_files() -> list[Path]:
    return sorted(path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file())


# --- the byte cap -------------------------------------------------------------------------------


def test_a_file_over_the_cap_is_a_form_error_and_never_stored_whole(
    marketer, promotion, settings, monkeypatch
):
    # given: a cap of 100 kB, and what reaches Django's own upload handlers counted
    settings.ADMIN_UPLOAD_MAX_BYTES = 100_000
    received = []
    original = MemoryFileUploadHandler.receive_data_chunk

    def counting(self, raw_data, start):
        received.append(len(raw_data))
        return original(self, raw_data, start)

    monkeypatch.setattr(MemoryFileUploadHandler, "receive_data_chunk", counting)
    content = "\n" * 1_000_000  # 1 MB of blank lines: ten times the cap
    # when
    response = issue_preview(marketer, promotion, csv_file=upload(content))
    # then: the form again, saying why; the file dropped at the cap, not read, not stored
    assert response.status_code == 200
    assert "preview" not in response.context
    errors = response.context["adminform"].form.errors
    assert errors["csv_file"] == [
        "The file is larger than 97.7\xa0KB, the most an upload may be. "
        "Split the list into several files, one job each."
    ]
    assert sum(received) <= settings.ADMIN_UPLOAD_MAX_BYTES
    assert stored_files() == []


def test_a_file_within_the_cap_is_previewed(marketer, org, promotion, settings):
    customer = CustomerFactory(org=org)
    content = f"{customer.pk}\n"
    settings.ADMIN_UPLOAD_MAX_BYTES = len(content)
    response = issue_preview(marketer, promotion, csv_file=upload(content))
    assert response.context["preview"].to_give == 1


# --- stored lists deleted -----------------------------------------------------------------------


def test_a_cancelled_preview_deletes_its_list_and_cannot_be_confirmed(marketer, org, promotion):
    # given
    customer = CustomerFactory(org=org)
    preview = issue_preview(marketer, promotion, csv_file=upload(f"{customer.pk}\n"))
    assert len(stored_files()) == 1
    draft = preview.context["draft"]
    # when
    cancelled = marketer.post(
        issue_url(promotion), {"post": "yes", "draft": draft, "cancel": "No, take me back"}
    )
    # then
    assert cancelled.status_code == 302
    assert stored_files() == []
    assert not BulkJob.objects.exists()
    confirmed = marketer.post(issue_url(promotion), {"post": "yes", "draft": draft}, follow=True)
    assert "no longer stored" in confirmed.content.decode()
    assert not BulkJob.objects.exists()


def test_cancelling_a_preview_already_confirmed_keeps_the_jobs_input(marketer, org, promotion, confirm):
    # given: a confirmed preview (the back button, then "No, take me back")
    preview = issue_preview(marketer, promotion, f"{CustomerFactory(org=org).pk}\n")
    confirm(marketer, issue_url(promotion), preview)
    job = BulkJob.objects.get()
    # when
    response = marketer.post(
        issue_url(promotion), {"post": "yes", "draft": preview.context["draft"], "cancel": "1"}
    )
    # then
    assert response["Location"] == job_url(job)
    assert marketer.get(job_url(job, "input")).status_code == 200


def test_a_preview_with_nothing_to_give_stores_nothing(marketer, promotion):
    response = issue_preview(marketer, promotion, "424242\n")
    assert response.context["preview"].to_give == 0
    assert stored_files() == []


def test_purge_deletes_previews_never_confirmed_once_a_day_old(marketer, org, promotion, confirm):
    # given: two previews, one of them confirmed (its list is the job's input)
    customers = CustomerFactory.create_batch(2, org=org)
    issue_preview(marketer, promotion, f"{customers[0].pk}\n", context_id="left")
    confirm(marketer, issue_url(promotion), issue_preview(marketer, promotion, f"{customers[1].pk}\n"))
    job = BulkJob.objects.get()
    assert len(stored_files()) == 2
    # when: within the day, then past it
    within = bulk_job_inputs_purge(now=timezone.now() + dt.timedelta(hours=23))
    after = bulk_job_inputs_purge(now=timezone.now() + dt.timedelta(days=2))
    again = bulk_job_inputs_purge(now=timezone.now() + dt.timedelta(days=2))
    # then: only the unconfirmed one goes, once; the job's input stays and downloads
    assert (within, after, again) == (0, 1, 0)
    assert [path.name for path in stored_files()] == [Path(job.input_file.name).name]
    assert marketer.get(job_url(job, "input")).status_code == 200


def test_purge_deletes_a_jobs_input_after_its_retention(marketer, org, promotion, confirm, settings):
    # given: a finished job
    settings.BULK_JOB_INPUT_RETENTION_DAYS = 30
    customer = CustomerFactory(org=org)
    confirm(marketer, issue_url(promotion), issue_preview(marketer, promotion, f"{customer.pk}\n"))
    job = BulkJob.objects.get()
    assert job.status == BulkJob.Status.DONE
    # when
    kept = bulk_job_inputs_purge(now=job.finished_at + dt.timedelta(days=29))
    purged = bulk_job_inputs_purge(now=job.finished_at + dt.timedelta(days=31))
    # then: the file is gone, the job keeps its name and says so
    assert (kept, purged) == (0, 1)
    assert stored_files() == []
    job.refresh_from_db()
    assert (job.input_file.name, job.input_name) == ("", "pasted.txt")
    page = marketer.get(job_url(job)).content.decode()
    assert "pasted.txt" in page and job_url(job, "input") not in page
    assert marketer.get(job_url(job, "input")).status_code == 404


def test_purge_runs_hourly_on_beat_and_as_a_command(marketer, promotion, org):
    # given: a preview past its day
    issue_preview(marketer, promotion, f"{CustomerFactory(org=org).pk}\n")
    [path] = stored_files()
    old = (timezone.now() - dt.timedelta(days=2)).timestamp()
    os.utime(path, (old, old))
    # then: scheduled, and the task and the command run the purge
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "wallets.tasks.bulk_job_inputs_purge_task" in schedule
    assert bulk_job_inputs_purge_task.delay().get() == 1
    out = io.StringIO()
    call_command("purge_bulk_job_inputs", stdout=out)
    assert out.getvalue() == "Purged 0 bulk job input file(s).\n"
    assert stored_files() == []
