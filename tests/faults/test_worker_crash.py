"""A Celery worker killed with SIGKILL in the middle of a bulk issuance chunk: the chunk is delivered
again (late acknowledgement) and the job ends with exactly its rows, each once, and its progress right.

The kill lands at a known point: a side transaction holds the job's row, so the chunk, having issued
its instances and marked its items in its own open transaction, waits there to add to the job's
counters. Nothing in the app is changed for the test.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from promotions.models import AuditEvent, PromotionType
from tests.celery_worker import BROKER, CeleryWorker, new_queue, running, tasks_sent_to
from tests.factories import CustomerFactory, OrganizationFactory, PromotionFactory
from tests.faults.support import backend_has_written, children, lock_waiter, side_connection, wait_for
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion
from wallets.services import bulk_job_create, bulk_job_start, bulk_jobs

VISIBILITY_TIMEOUT = 2  # seconds (production: CELERY_VISIBILITY_TIMEOUT, 600 by default)

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(settings):
    """A queue of this test's own on the Redis broker; this process sends the job's chunks to it."""
    with tasks_sent_to(new_queue("faults"), settings) as name:
        yield name


def _sql(model) -> str:
    return model._meta.db_table


@pytest.mark.parametrize("crash", ["pool process", "whole worker"])
def test_a_chunk_killed_midway_is_run_again_and_the_job_ends_exact(crash, queue, tmp_path, monkeypatch):
    # given a job issuing a promotion to 20 customers, in two chunks of 10
    monkeypatch.setattr(bulk_jobs, "BULK_JOB_CHUNK_SIZE", 10)
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    customers = CustomerFactory.create_batch(20, org=org)
    job = bulk_job_create(
        org=org, kind="ISSUE", promotion=promotion, params={"contextId": "crash"}, identifier_type="id",
        values=[str(c.pk) for c in customers], user=None,
    )  # fmt: skip
    # and the second chunk's first customer locked elsewhere, so that chunk waits on it
    customer_lock, job_lock = side_connection(), side_connection()
    customer_lock.execute(f"SELECT 1 FROM {_sql(Customer)} WHERE id = %s FOR UPDATE", [customers[10].pk])
    pool = "prefork" if crash == "pool process" else "threads"

    def start_worker(number: int) -> CeleryWorker:
        worker = CeleryWorker(
            tmp_path / f"worker-{number}.log", broker=BROKER, queue=queue, pool=pool,
            CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        )  # fmt: skip
        return stack.enter_context(running(worker))

    with ExitStack() as stack:
        stack.callback(customer_lock.close)
        stack.callback(job_lock.close)
        worker = start_worker(1)
        bulk_job_start(job=job)  # autocommit: both chunks go to the broker at once

        # when the first chunk is done and the second waits for its customer
        wait_for(lambda: lock_waiter(f"SELECT id FROM {_sql(Customer)}"), timeout=30, what="the second chunk")
        job.refresh_from_db()
        assert (job.status, job.done) == ("RUNNING", 10)
        # then the job's row is held, the customer let go: the chunk issues its instances, marks its
        # items, and waits to add them to the job's counters, its transaction open
        job_lock.execute(f"SELECT 1 FROM {_sql(BulkJob)} WHERE id = %s FOR UPDATE", [job.pk])
        customer_lock.rollback()
        killed = wait_for(
            lambda: lock_waiter(f'UPDATE "{_sql(BulkJob)}" SET "done"'),
            timeout=20,
            what="the chunk's last step",
        )
        assert backend_has_written(killed)
        # and the worker is killed there: the process running the chunk, or the whole worker
        if crash == "pool process":
            [pool_process] = children(worker.process.pid)
            worker.kill(pool_process)  # the worker sees it lost the chunk and puts it back at once
        else:
            worker.kill()
            # nothing acknowledged the chunk: Redis gives it to the next worker once it is invisible
            # no more (on RabbitMQ, as soon as the dead worker's connection drops)
            time.sleep(VISIBILITY_TIMEOUT)
            start_worker(2)

        # the killed chunk's transaction outlives its process (its backend still waits on the job's
        # row): the chunk delivered again must wait for it to end, not skip the items it holds
        wait_for(
            lambda: lock_waiter(f'SELECT "{_sql(BulkJobItem)}"."id"'),
            timeout=30,
            what="the chunk to be delivered again (and to wait for the killed chunk's locks)",
        )
        job_lock.rollback()  # the killed chunk's statement ends, its lost client rolls it back

        # then the job finishes, with each customer's instance once
        wait_for(
            lambda: BulkJob.objects.filter(pk=job.pk, status__in=["DONE", "FAILED"]).exists(),
            timeout=30,
            what="the job to finish",
        )
        job.refresh_from_db()
        assert (job.status, job.done, job.failed, job.error) == ("DONE", 20, 0, "")
        assert set(BulkJobItem.objects.filter(job=job).values_list("status", flat=True)) == {"DONE"}
        issued = list(
            EarnedPromotion.objects.filter(promotion=promotion).values_list("customer_id", flat=True)
        )
        assert sorted(issued) == sorted(c.pk for c in customers)
        # one audit event per committed chunk: the killed chunk's was rolled back with it
        assert AuditEvent.objects.filter(action="promotion.issue_bulk", object_id=promotion.pk).count() == 2
