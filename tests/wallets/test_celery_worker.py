"""A real Celery worker (the `worker` fixture), on the local Redis broker, runs a bulk job's chunks against
the test database."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from promotions.models import PromotionType
from tests.celery_worker import BROKER
from tests.factories import CustomerFactory, OrganizationFactory, PromotionFactory
from wallets.models import BulkJob, EarnedPromotion
from wallets.services import bulk_job_create, bulk_job_start, bulk_jobs

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def test_worker_runs_every_chunk_of_a_bulk_job(worker, monkeypatch):
    # given a job of 50 customers in chunks of 10
    monkeypatch.setattr(bulk_jobs, "BULK_JOB_CHUNK_SIZE", 10)
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    customers = CustomerFactory.create_batch(50, org=org)
    job = bulk_job_create(
        org=org, kind="ISSUE", promotion=promotion, params={"contextId": "worker"}, identifier_type="id",
        values=[str(c.pk) for c in customers], user=None,
    )  # fmt: skip

    # when it starts: five chunk tasks go to the broker
    bulk_job_start(job=job)  # autocommit: dispatch runs at once

    # then the worker finishes the job
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED):
            break
        time.sleep(0.2)
    assert worker.poll() is None, "the worker died"
    assert (job.status, job.done, job.failed) == ("DONE", 50, 0), job.error
    assert EarnedPromotion.objects.filter(promotion=promotion, earned_from_id="worker").count() == 50
    assert settings.CELERY_BROKER_URL == BROKER
