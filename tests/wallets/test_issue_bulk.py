"""POST /api_gateway/v1/promotions/{promotionId}/issueBulk?contextId=."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from promotions.models import AuditEvent, PromotionType
from promotions_site.timefmt import to_epoch_ms
from tests.concurrency import run_concurrently
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
)
from wallets.models import EarnedPromotion


def issue(api, promotion, body, context_id="2 items in cart"):
    return api.post(
        f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId={context_id}", body, format="json"
    )


@pytest.fixture
def promotion(org):
    return PromotionFactory(org=org, type=PromotionType.CUSTOMER)


def test_documented_example_shape(api, org, promotion):
    # given: the documented customer
    customer = CustomerFactory(org=org, id=564332013)
    # when
    response = issue(api, promotion, [564332013])
    # then
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data"]
    item = body["data"]["564332013"]
    assert list(item) == ["id", "customerId", "promotionId", "earnedFromId", "eventTime", "validTill"]
    assert item["customerId"] == 564332013 and item["promotionId"] == promotion.pk
    assert item["earnedFromId"] == "2 items in cart"
    assert item["validTill"] == to_epoch_ms(promotion.end_date)
    assert abs(item["eventTime"] - to_epoch_ms(timezone.now())) < 60_000
    instance = EarnedPromotion.objects.get(pk=item["id"])
    assert (
        instance.customer == customer
        and instance.kind == "ISSUED"
        and instance.earned_from_type == "BULK_ISSUE"
    )
    assert len(item["id"]) == 24


def test_retry_with_same_context_returns_same_ids_and_creates_nothing(api, org, promotion):
    customers = CustomerFactory.create_batch(3, org=org)
    ids = [c.pk for c in customers]
    first = issue(api, promotion, ids).json()
    second = issue(api, promotion, list(reversed(ids))).json()
    assert {k: v["id"] for k, v in first["data"].items()} == {k: v["id"] for k, v in second["data"].items()}
    assert EarnedPromotion.objects.count() == 3
    assert AuditEvent.objects.filter(action="promotion.issue_bulk").count() == 2


def test_duplicate_ids_in_one_request_are_issued_once(api, org, promotion):
    customer = CustomerFactory(org=org)
    response = issue(api, promotion, [customer.pk, customer.pk, str(customer.pk)])
    assert list(response.json()["data"]) == [str(customer.pk)]
    assert EarnedPromotion.objects.count() == 1


def test_per_customer_errors_next_to_successes(api, org, other_org, promotion):
    # given: one good customer, one unknown, one of another org, one at the limit, one whose context was earned
    good = CustomerFactory(org=org)
    at_limit = CustomerFactory(org=org)
    EarnedPromotionFactory(org=org, customer=at_limit, promotion=promotion, earned_from_id="older-context")
    earned = CustomerFactory(org=org)
    EarnedPromotionFactory(
        org=org,
        customer=earned,
        promotion=promotion,
        kind="EARNED",
        earned_from_type="ACTIVITY",
        earned_from_id="ctx",
    )
    foreign = CustomerFactory(org=other_org)
    # when
    response = issue(
        api, promotion, [good.pk, 999999999, foreign.pk, at_limit.pk, earned.pk], context_id="ctx"
    )
    # then
    assert response.status_code == 200
    body = response.json()
    assert list(body["data"]) == [str(good.pk)]
    assert sorted((e["customerId"], e["code"]) for e in body["errors"]) == sorted(
        [(999999999, 1007), (foreign.pk, 1007), (at_limit.pk, 708), (earned.pk, 713)]
    )
    assert EarnedPromotion.objects.filter(earned_from_id="ctx", kind="ISSUED").count() == 1


def test_max_issuance_per_customer_counts_distinct_contexts(api, org):
    promotion = PromotionFactory(org=org, max_issuance_per_customer=2)
    customer = CustomerFactory(org=org)
    assert str(customer.pk) in issue(api, promotion, [customer.pk], "a").json()["data"]
    assert str(customer.pk) in issue(api, promotion, [customer.pk], "b").json()["data"]
    third = issue(api, promotion, [customer.pk], "c").json()
    assert third["data"] == {} and third["errors"][0]["code"] == 708
    # unlimited
    unlimited = PromotionFactory(org=org, max_issuance_per_customer=-1)
    for context in "abcdef":
        assert str(customer.pk) in issue(api, unlimited, [customer.pk], context).json()["data"]


@pytest.mark.parametrize("body", [[], [None], ["abc"], [1.5], [True], [-4], [0], [{"id": 1}], ["12x"]])
def test_invalid_customer_ids_are_1006(api, org, promotion, body):
    response = issue(api, promotion, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == 1006
    assert not EarnedPromotion.objects.exists()


@pytest.mark.parametrize("body", [{"customerIds": [1]}, 5, "x"])
def test_body_that_is_not_an_array_is_400(api, promotion, body):
    response = issue(api, promotion, body)
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == 400


def test_too_many_ids_is_400(api, promotion):
    response = issue(api, promotion, list(range(1, 10_002)))
    assert response.status_code == 400 and "At most 10000" in response.json()["errors"][0]["message"]


def test_missing_context_id_is_400(api, promotion):
    response = api.post(f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk", [1], format="json")
    assert response.status_code == 400
    assert response.json() == {"errors": [{"code": 400, "message": "contextId: This field is required."}]}


@pytest.mark.parametrize("ptype", [PromotionType.POS, PromotionType.CODE, PromotionType.REWARD])
def test_types_that_are_not_issued_are_707(api, org, ptype):
    promotion = PromotionFactory(org=org, type=ptype)
    customer = CustomerFactory(org=org)
    response = issue(api, promotion, [customer.pk])
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == 707
    assert not EarnedPromotion.objects.exists()


def test_earning_type_can_be_issued(api, org):
    promotion = PromotionFactory(org=org, type=PromotionType.EARNING)
    customer = CustomerFactory(org=org)
    assert str(customer.pk) in issue(api, promotion, [customer.pk]).json()["data"]


def test_expired_is_706_and_not_running_is_709(api, org):
    customer = CustomerFactory(org=org)
    now = timezone.now()
    expired = PromotionFactory(
        org=org, start_date=now - dt.timedelta(days=5), end_date=now - dt.timedelta(days=1)
    )
    inactive = PromotionFactory(org=org, active=False)
    future = PromotionFactory(
        org=org, start_date=now + dt.timedelta(days=1), end_date=now + dt.timedelta(days=5)
    )
    assert issue(api, expired, [customer.pk]).json()["errors"][0]["code"] == 706
    assert issue(api, inactive, [customer.pk]).json()["errors"][0]["code"] == 709
    assert issue(api, future, [customer.pk]).json()["errors"][0]["code"] == 709
    assert not EarnedPromotion.objects.exists()


def test_org_over_its_active_cap_is_705(api, org, promotion):
    # given: the cap was lowered below the active count
    PromotionFactory(org=org)
    org.max_active_promotions = 1
    org.save()
    customer = CustomerFactory(org=org)
    # when
    response = issue(api, promotion, [customer.pk])
    # then
    assert response.json()["errors"][0]["code"] == 705
    assert not EarnedPromotion.objects.exists()


def test_unknown_or_foreign_promotion_is_404(api, other_org):
    foreign = PromotionFactory(org=other_org)
    for promotion_id in (foreign.pk, "ffffffffffffffffffffffff"):
        response = api.post(
            f"/api_gateway/v1/promotions/{promotion_id}/issueBulk?contextId=x", [1], format="json"
        )
        assert response.status_code == 404
        assert response.json() == {"errors": [{"code": 404, "message": "Passed promotion is not found"}]}


def test_read_only_client_cannot_issue(read_api, org, promotion):
    customer = CustomerFactory(org=org)
    assert issue(read_api, promotion, [customer.pk]).status_code == 403
    assert not EarnedPromotion.objects.exists()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_threads_never_exceed_max_issuance_per_customer():
    # given: a promotion allowing 3 issues per customer, 5 customers
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, max_issuance_per_customer=3)
    customers = [c.pk for c in CustomerFactory.create_batch(5, org=org)]

    # when: each thread issues under its own context, in a different customer order
    def call(api, index):
        order = customers[index % 5 :] + customers[: index % 5]
        return issue(api, promotion, order, context_id=f"ctx-{index}").status_code

    statuses = run_concurrently(20, call, org=org)
    # then
    assert statuses == [200] * 20
    for customer_id in customers:
        assert EarnedPromotion.objects.filter(promotion=promotion, customer_id=customer_id).count() == 3


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_threads_retrying_one_context_create_each_instance_once():
    org = OrganizationFactory()
    promotion = PromotionFactory(org=org, max_issuance_per_customer=-1)
    customers = [c.pk for c in CustomerFactory.create_batch(10, org=org)]
    results = run_concurrently(
        20, lambda api, _: issue(api, promotion, customers, context_id="same").json(), org=org
    )
    assert EarnedPromotion.objects.filter(promotion=promotion).count() == 10
    ids = {tuple(sorted(v["id"] for v in result["data"].values())) for result in results}
    assert len(ids) == 1
