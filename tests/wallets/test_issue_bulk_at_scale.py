"""issueBulk at its cap of 10,000 customers: a constant number of queries, retries that create nothing,
and rows written in bulk exactly as the ORM would write them (bench/issue_bulk.py times the same call)."""

from __future__ import annotations

import math
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from promotions_site.timefmt import to_epoch_ms
from tests.factories import CustomerFactory, EarnedPromotionFactory, PromotionFactory
from wallets.models import Customer, EarnedPromotion

CAP = 10_000


def max_queries() -> int:
    """Client, promotion, org, active-promotion count, transaction start, customer lock, instances of
    the context, issued counts, the rows, the promotion's tally, audit event, transaction end: twelve
    on PostgreSQL, where
    the rows go in one COPY, whatever the number of customers. Other databases take the ORM path and
    insert in the largest batches they allow (SQLite: 999 parameters per statement)."""
    if connection.vendor == "postgresql":
        return 12
    batch = connection.ops.bulk_batch_size(EarnedPromotion._meta.concrete_fields, [None] * CAP)
    return 11 + math.ceil(CAP / batch)


def issue(api, promotion, body, context_id):
    return api.post(
        f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId={quote(context_id)}",
        body,
        format="json",
    )


def customers(org, count: int) -> list[int]:
    return [c.pk for c in Customer.objects.bulk_create([Customer(org=org) for _ in range(count)])]


def test_ten_thousand_customers_in_one_request_take_a_bounded_number_of_queries(
    api, org, django_assert_max_num_queries
):
    # given: a promotion limited to one issue per customer, so the limit is counted too
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=1)
    ids = customers(org, CAP)
    # when
    with django_assert_max_num_queries(max_queries()):
        response = issue(api, promotion, ids, "campaign-1")
    # then
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data"]
    assert list(body["data"]) == [str(i) for i in ids]
    assert EarnedPromotion.objects.filter(promotion=promotion, earned_from_id="campaign-1").count() == CAP
    assert {v["id"] for v in body["data"].values()} == set(
        EarnedPromotion.objects.filter(promotion=promotion).values_list("id", flat=True)
    )
    event = AuditEvent.objects.get(action="promotion.issue_bulk")
    assert event.data == {
        "contextId": "campaign-1",
        "requested": CAP,
        "created": CAP,
        "replayed": 0,
        "failed": 0,
    }


def test_retry_of_ten_thousand_creates_nothing_and_answers_the_same_body(
    api, org, django_assert_max_num_queries
):
    # given
    promotion = PromotionFactory(org=org, max_issuance_per_customer=-1)
    ids = customers(org, CAP)
    first = issue(api, promotion, ids, "retried").json()
    # when: the same request again, ids in another order
    with django_assert_max_num_queries(max_queries()):
        second = issue(api, promotion, list(reversed(ids)), "retried").json()
    # then: the same instances, times included, and no new row
    assert second["data"] == first["data"]
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == CAP
    replay = AuditEvent.objects.filter(action="promotion.issue_bulk").order_by("-id").first()
    assert replay.data["created"] == 0 and replay.data["replayed"] == CAP


def test_retry_after_a_partial_issue_creates_only_the_missing_instances(api, org):
    # given: half the customers were issued under the context; a tenth of the rest already hold
    # the promotion's one allowed instance from another context
    promotion = PromotionFactory(org=org, max_issuance_per_customer=1)
    ids = customers(org, 2_000)
    first = issue(api, promotion, ids[:1_000], "ctx").json()
    at_limit = ids[1_000:1_100]
    for customer_id in at_limit:
        EarnedPromotionFactory(
            org=org, customer_id=customer_id, promotion=promotion, earned_from_id="older-context"
        )
    # when
    response = issue(api, promotion, ids, "ctx").json()
    # then
    assert {k: v["id"] for k, v in response["data"].items() if int(k) in ids[:1_000]} == {
        k: v["id"] for k, v in first["data"].items()
    }
    assert len(response["data"]) == 1_900
    assert sorted(e["customerId"] for e in response["errors"]) == at_limit
    assert {e["code"] for e in response["errors"]} == {708}
    assert EarnedPromotion.objects.filter(promotion=promotion, earned_from_id="ctx").count() == 1_900


def test_bulk_written_rows_hold_every_default(api, org):
    # given: ids of every size (PostgreSQL would type small ones as smallint, large ones as bigint)
    promotion = PromotionFactory(org=org)
    ids = [CustomerFactory(org=org, id=n).pk for n in (7, 564332013, 2**40 + 3)]
    before = timezone.now()
    # when
    body = issue(api, promotion, ids, "defaults").json()
    # then
    assert list(body["data"]) == [str(i) for i in ids]
    for customer_id in ids:
        item = body["data"][str(customer_id)]
        instance = EarnedPromotion.objects.get(pk=item["id"])
        assert instance.customer_id == customer_id and instance.org == org
        assert (instance.kind, instance.earned_from_type, instance.earned_from_id, instance.seq) == (
            "ISSUED",
            "BULK_ISSUE",
            "defaults",
            1,
        )
        assert instance.status == "ACTIVE" and instance.status_changed_at is None
        assert (instance.redemption_count, instance.transaction_count) == (0, 0)
        assert instance.discount_total == Decimal(0) and instance.event_details == {}
        assert instance.valid_till == promotion.end_date and before <= instance.event_time <= timezone.now()
        assert before <= instance.created_at <= timezone.now()
        assert item["eventTime"] == to_epoch_ms(instance.event_time)
        assert item["validTill"] == to_epoch_ms(instance.valid_till)


@pytest.mark.parametrize("context_id", ["ünïcode ✓", "tab\there", "back\\slash", "new\nline"])
def test_context_ids_with_special_characters_round_trip(api, org, context_id):
    promotion = PromotionFactory(org=org)
    customer = CustomerFactory(org=org)
    body = issue(api, promotion, [customer.pk], context_id).json()
    assert body["data"][str(customer.pk)]["earnedFromId"] == context_id
    assert EarnedPromotion.objects.get(customer=customer).earned_from_id == context_id
    assert issue(api, promotion, [customer.pk], context_id).json() == body
