"""Bulk jobs (the admin's issue and bulk-earn runs): preview, items, chunks, idempotent re-runs."""

from __future__ import annotations

import pytest

from promotions.models import PromotionType
from tests.factories import CustomerFactory, EarnedPromotionFactory, PromotionFactory, UserFactory
from wallets.models import BulkJob, BulkJobItem, EarnedPromotion
from wallets.services import (
    bulk_job_chunks,
    bulk_job_create,
    bulk_job_preview,
    bulk_job_run_chunk,
    bulk_job_start,
    bulk_jobs,
)


@pytest.fixture
def promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=1)


def issue_job(org, promotion, values, identifier_type="id", context="ctx"):
    return bulk_job_create(
        org=org,
        kind="ISSUE",
        promotion=promotion,
        params={"contextId": context},
        identifier_type=identifier_type,
        values=values,
        user=UserFactory(org=org),
    )


def test_preview_counts_without_writing(org, promotion):
    # given 3 known customers (one already holding the promotion), one unknown, one duplicate
    customers = CustomerFactory.create_batch(3, org=org)
    EarnedPromotionFactory(org=org, customer=customers[0], promotion=promotion)
    values = [str(c.pk) for c in customers] + ["999999999", str(customers[1].pk)]

    # when
    preview = bulk_job_preview(
        org=org, kind="ISSUE", promotion=promotion, identifier_type="id", values=values
    )

    # then
    assert (preview.total, preview.found, preview.unknown, preview.duplicates) == (5, 3, 1, 1)
    # each customer found in one bucket: the holder is at the limit of 1, not also "already holding"
    assert (preview.first_time, preview.already_holding, preview.over_limit, preview.same_context) == (
        2,
        0,
        1,
        0,
    )
    assert not BulkJob.objects.exists()


@pytest.mark.parametrize(
    "identifier_type, attribute, spelling",
    [
        ("mobile", "mobile", lambda v: "+" + v),
        ("email", "email", str.upper),
        ("externalId", "external_id", str),
    ],
)
def test_customers_by_identifier(org, promotion, identifier_type, attribute, spelling):
    customers = CustomerFactory.create_batch(2, org=org)
    values = [spelling(getattr(c, attribute)) for c in customers] + ["nobody"]

    job = issue_job(org, promotion, values, identifier_type=identifier_type)

    items = list(job.items.order_by("line"))
    assert [i.customer_id for i in items] == [customers[0].pk, customers[1].pk, None]
    assert items[2].status == "FAILED" and items[2].code == 1007


def test_job_runs_through_the_issue_service(org, promotion, django_capture_on_commit_callbacks):
    # given
    customers = CustomerFactory.create_batch(5, org=org)
    job = issue_job(org, promotion, [str(c.pk) for c in customers] + ["42", str(customers[0].pk)])

    # when
    with django_capture_on_commit_callbacks(execute=True):
        bulk_job_start(job=job)  # dispatch happens on commit; tests run it synchronously

    # then every customer holds one instance of this context, the unknown one failed
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed, job.percent) == ("DONE", 7, 6, 1, 100)
    assert EarnedPromotion.objects.filter(promotion=promotion, earned_from_id="ctx").count() == 5
    assert job.started_at and job.finished_at


def test_a_chunk_run_twice_creates_nothing_twice(org, promotion, settings):
    settings.BULK_JOB_INLINE_MAX = 0
    customers = CustomerFactory.create_batch(4, org=org)
    job = issue_job(org, promotion, [str(c.pk) for c in customers])
    [(low, high)] = bulk_job_chunks(job=job)

    first = bulk_job_run_chunk(job_id=job.pk, low=low, high=high)
    again = bulk_job_run_chunk(job_id=job.pk, low=low, high=high)

    assert (first, again) == (4, 0)
    job.refresh_from_db()
    assert (job.done, job.failed, job.status) == (4, 0, "DONE")
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 4


def test_chunks_split_the_pending_items(org, promotion, monkeypatch):
    monkeypatch.setattr(bulk_jobs, "BULK_JOB_CHUNK_SIZE", 3)
    customers = CustomerFactory.create_batch(7, org=org)
    job = issue_job(org, promotion, [str(c.pk) for c in customers])

    chunks = bulk_job_chunks(job=job)

    assert len(chunks) == 3
    ids = list(job.items.order_by("id").values_list("id", flat=True))
    covered = [i for low, high in chunks for i in ids if low <= i < high]
    assert covered == ids


def test_a_crashed_chunk_marks_the_job_failed_and_resumes(org, promotion, monkeypatch):
    # given a job whose first attempt crashes inside the issue service
    customers = CustomerFactory.create_batch(3, org=org)
    job = issue_job(org, promotion, [str(c.pk) for c in customers])
    [(low, high)] = bulk_job_chunks(job=job)
    real = bulk_jobs.earned_promotions_issue

    def crash(**kwargs):
        raise RuntimeError("worker lost its database")

    monkeypatch.setattr(bulk_jobs, "earned_promotions_issue", crash)
    with pytest.raises(RuntimeError):
        bulk_jobs.bulk_job_chunk_run(job_id=job.pk, low=low, high=high)
    job.refresh_from_db()
    assert job.status == "FAILED" and "worker lost" in job.error
    assert set(job.items.values_list("status", flat=True)) == {"PENDING"}
    assert not EarnedPromotion.objects.exists()

    # when the chunk runs again
    monkeypatch.setattr(bulk_jobs, "earned_promotions_issue", real)
    bulk_jobs.bulk_job_chunk_run(job_id=job.pk, low=low, high=high)

    # then it completes what was missing
    job.refresh_from_db()
    assert (job.done, job.failed) == (3, 0)
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 3


def test_over_limit_customers_fail_with_708(org, promotion, django_capture_on_commit_callbacks):
    customer = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, earned_from_id="earlier")

    job = issue_job(org, promotion, [str(customer.pk)])
    with django_capture_on_commit_callbacks(execute=True):
        bulk_job_start(job=job)

    item = BulkJobItem.objects.get(job=job)
    assert (item.status, item.code) == ("FAILED", 708)


def test_earn_job(org, django_capture_on_commit_callbacks):
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=2)
    customers = CustomerFactory.create_batch(3, org=org)
    job = bulk_job_create(
        org=org,
        kind="EARN",
        promotion=None,
        params={
            "earnedFromId": "spring-campaign",
            "earnedFromType": "ACTIVITY",
            "entries": [{"promotionId": earning.pk, "earnCount": 3}],
        },
        identifier_type="id",
        values=[str(c.pk) for c in customers],
        user=None,
    )

    with django_capture_on_commit_callbacks(execute=True):
        bulk_job_start(job=job)

    job.refresh_from_db()
    # each customer earns 2 of the 3 asked (maxEarningPerCustomer), reported as 708 on the item
    assert EarnedPromotion.objects.filter(promotion=earning).count() == 6
    assert set(job.items.values_list("code", flat=True)) == {708}


def test_issue_job_refuses_a_promotion_that_cannot_be_issued(org):
    pos = PromotionFactory(org=org, type=PromotionType.POS)

    with pytest.raises(bulk_jobs.PromotionError) as error:
        issue_job(org, pos, ["1"])

    assert int(error.value.code) == 707
    assert not BulkJob.objects.exists()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_chunk_process_each_item_once():
    import threading

    from django.db import connection

    from tests.factories import OrganizationFactory

    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    customers = CustomerFactory.create_batch(50, org=org)
    job = issue_job(org, promotion, [str(c.pk) for c in customers])
    [(low, high)] = bulk_job_chunks(job=job)
    barrier, taken = threading.Barrier(2), []

    def worker():
        try:
            barrier.wait()
            taken.append(bulk_job_run_chunk(job_id=job.pk, low=low, high=high))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]

    job.refresh_from_db()
    assert sum(taken) == 50
    assert (job.done, job.failed, job.status) == (50, 0, "DONE")
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 50


def earn_params(promotion_id, earn_count=1, earned_from_type="ACTIVITY", earned_from_id="campaign"):
    return {
        "earnedFromId": earned_from_id,
        "earnedFromType": earned_from_type,
        "entries": [{"promotionId": promotion_id, "earnCount": earn_count}],
    }


@pytest.mark.parametrize(
    "change, code",
    [
        ({"type": PromotionType.CUSTOMER}, 714),
        ({"active": False}, 709),
        ({"params": {"earn_count": 0}}, 400),
        ({"params": {"earn_count": 101}}, 400),
        ({"params": {"earned_from_type": "BULK_ISSUE"}}, 400),
        ({"params": {"earned_from_id": ""}}, 400),
        ({"other_org": True}, 404),
    ],
)
def test_earn_job_refusals(org, other_org, change, code):
    # given
    owner = other_org if change.get("other_org") else org
    promotion_kwargs = {k: v for k, v in change.items() if k in ("type", "active")}
    promotion = PromotionFactory(org=owner, **{"type": PromotionType.EARNING, **promotion_kwargs})
    params = earn_params(promotion.pk, **change.get("params", {}))

    # when
    with pytest.raises(bulk_jobs.PromotionError) as error:
        bulk_job_create(
            org=org, kind="EARN", promotion=None, params=params, identifier_type="id", values=["1"], user=None
        )

    # then
    assert int(error.value.code) == code
    assert not BulkJob.objects.exists()


def test_the_same_idempotency_key_returns_the_first_job(org, promotion):
    customers = CustomerFactory.create_batch(2, org=org)
    values = [str(c.pk) for c in customers]

    def create(key):
        return bulk_job_create(
            org=org,
            kind="ISSUE",
            promotion=promotion,
            params={"contextId": "ctx"},
            identifier_type="id",
            values=values,
            user=None,
            idempotency_key=key,
        )

    first, again, other = create("k1"), create("k1"), create("k2")

    assert first.pk == again.pk != other.pk
    assert BulkJobItem.objects.filter(job=first).count() == 2


def test_only_a_failed_job_is_retried(org, promotion):
    job = issue_job(org, promotion, ["1"])

    with pytest.raises(bulk_jobs.PromotionError) as error:
        bulk_jobs.bulk_job_retry(job=job, user=None)

    assert int(error.value.code) == 409
