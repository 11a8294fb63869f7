"""The admin's redemption export is a background job: started from the list, run by a real Celery
worker, its progress and file on the job page; a failed export says so and keeps nothing."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.files.storage import default_storage
from django.test import TestCase
from django.urls import reverse

from redemptions.services import redemption_export_create, redemption_export_run
from tests.admin_support import csv_rows, staff_login
from tests.factories import (
    OrganizationFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)
from wallets.models import BulkJob

EXPORT = "/admin/redemptions/redemption/export/"


def wait_for(job: BulkJob, seconds: float = 60) -> BulkJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"{job} still {job.status} after {seconds} s")


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_export_runs_on_a_worker_and_its_page_offers_the_file(worker, client, monkeypatch):
    from redemptions import services

    # given: 7 redemptions of a promotion (one reversed), read 3 at a time, and one of another promotion
    monkeypatch.setattr(
        services, "EXPORT_REDEMPTIONS_PER_CHUNK", 3
    )  # this process only: the worker's is 2000
    org = OrganizationFactory()
    promotion, other = PromotionFactory(org=org), PromotionFactory(org=org)
    mine = [RedemptionLineFactory(redemption__org=org, promotion=promotion) for _ in range(7)]
    RedemptionReversalFactory(redemption=mine[0].redemption)
    RedemptionLineFactory(redemption__org=org, promotion=other)
    staff_login(client, org)
    # when: the marketer asks for the promotion's export
    assert client.get(EXPORT, {"promotion": promotion.pk}).status_code == 200
    started = client.post(f"{EXPORT}?promotion={promotion.pk}")
    # then: the request only started a job, which the worker runs
    job = BulkJob.objects.get(kind=BulkJob.Kind.EXPORT)
    assert started.status_code == 302 and started["Location"] == reverse(
        "admin:wallets_bulkjob_change", args=[job.pk]
    )
    job = wait_for(job)
    assert worker.poll() is None, "the worker died"
    assert (job.status, job.done, job.total, job.promotion_id) == ("DONE", 7, 7, promotion.pk), job.error
    progress = client.get(reverse("admin:wallets_bulkjob_progress", args=[job.pk])).json()
    assert progress["finished"] and progress["percent"] == 100
    page = client.get(started["Location"]).content.decode()
    assert 'id="bulk-job-output"' in page and "Export redemptions" in page
    download = client.get(reverse("admin:wallets_bulkjob_output", args=[job.pk]))
    rows = csv_rows(download)
    assert sorted(row["id"] for row in rows) == sorted(str(line.pk) for line in mine)
    assert {row["promotionId"] for row in rows} == {promotion.pk}
    default_storage.delete(job.output_file.name)


def test_a_failed_export_says_so_and_keeps_nothing(client, org):
    # given: an export whose filter the run cannot read (a date the list would have refused)
    RedemptionLineFactory(redemption__org=org)
    user = staff_login(client, org)
    with TestCase.captureOnCommitCallbacks(execute=True):
        job = redemption_export_create(
            org=org, user=user, filters={"date_from": "2025-13-01"}, time_zone="UTC"
        )
    # then: the job failed, with the reason, and offers no file
    job.refresh_from_db()
    assert job.status == BulkJob.Status.FAILED and "The export failed" in job.error and not job.output_file
    page = client.get(reverse("admin:wallets_bulkjob_change", args=[job.pk])).content.decode()
    assert "The job stopped" in page and "Nothing was kept of this export" in page
    assert 'id="bulk-job-output"' not in page
    assert client.get(reverse("admin:wallets_bulkjob_output", args=[job.pk])).status_code == 404
    # and it is not retried as a bulk job would be (there is nothing to resume)
    retried = client.post(reverse("admin:wallets_bulkjob_retry", args=[job.pk]))
    assert retried.status_code == 302
    job.refresh_from_db()
    assert job.status == BulkJob.Status.FAILED


def test_chunks_walk_every_line_newest_first_and_a_done_job_is_not_written_again(client, org, monkeypatch):
    from django.utils import timezone

    from redemptions import services

    # given: 5 redemptions read 2 at a time, three sharing one transaction date, one with two lines
    monkeypatch.setattr(services, "EXPORT_REDEMPTIONS_PER_CHUNK", 2)
    now = timezone.now().replace(microsecond=0)
    redemptions = [RedemptionFactory(org=org, transaction_date=now - (n // 3) * dt.timedelta(hours=1))
                   for n in range(5)]  # fmt: skip
    lines = [RedemptionLineFactory(redemption=r) for r in redemptions]
    lines.append(RedemptionLineFactory(redemption=redemptions[1], level="CART"))
    user = staff_login(client, org)
    with TestCase.captureOnCommitCallbacks(execute=True):
        job = redemption_export_create(org=org, user=user, filters={}, time_zone="UTC")
    job.refresh_from_db()
    output = reverse("admin:wallets_bulkjob_output", args=[job.pk])
    rows = csv_rows(client.get(output))
    # then: every line once, newest transaction first (ties: the later redemption first), lines in order
    newest_first = sorted(redemptions, key=lambda r: (r.transaction_date, r.pk), reverse=True)
    expected = [str(line.pk) for r in newest_first
                for line in sorted((x for x in lines if x.redemption_id == r.pk), key=lambda x: (x.level, x.position))]  # fmt: skip
    assert [row["id"] for row in rows] == expected and (job.done, job.total) == (6, 6)
    # when the task is delivered again: the file stays as it was
    name = job.output_file.name
    again = redemption_export_run(job_id=job.pk)
    assert again.output_file.name == name and [row["id"] for row in csv_rows(client.get(output))] == expected
    default_storage.delete(name)


def test_the_export_page_of_a_superuser_without_org_asks_for_one(client, org):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_superuser=True, is_staff=True, org=None))
    response = client.get(EXPORT)
    assert response.status_code == 200 and "Choose an organization" in response.content.decode()
    response = client.post(EXPORT)
    assert response.status_code == 200 and not BulkJob.objects.filter(kind=BulkJob.Kind.EXPORT).exists()
