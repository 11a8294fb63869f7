"""A real Celery worker, on the local Redis broker, runs a bulk job's chunks against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from promotions.models import PromotionType
from promotions_site.celery import app as celery_app
from tests.factories import CustomerFactory, OrganizationFactory, PromotionFactory
from wallets.models import BulkJob, EarnedPromotion
from wallets.services import bulk_job_create, bulk_job_start, bulk_jobs

BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(settings):
    """A `celery worker` process on the Redis broker, using the test database; stopped afterwards."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "CELERY_BROKER_URL": BROKER,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "promotions_site.settings",
    }
    queue = f"test-{os.getpid()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "promotions_site", "worker", "-l", "warning", "-c", "2",
         "-Q", queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "-P", "threads"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    # Send from this process to the same broker and queue.
    old = {key: celery_app.conf[key] for key in ("broker_url", "task_always_eager", "task_default_queue")}
    celery_app.conf.update(broker_url=BROKER, task_always_eager=False, task_default_queue=queue)
    _forget_connections()
    settings.CELERY_BROKER_URL = BROKER
    settings.BULK_JOBS_IN_PROCESS = "thread"
    settings.BULK_JOB_INLINE_MAX = 0
    yield process
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    celery_app.conf.update(old)
    _forget_connections()
    print(output)


def _forget_connections():
    """Celery caches its producer pool and queue routing from the config at first use: drop them so
    the new broker and queue apply (as a forked worker does)."""
    celery_app.close()
    celery_app.__dict__.pop("amqp", None)


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
