"""GET /api_gateway/v1/promotions/customer/{customerId}: the customer's wallet."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from promotions.models import PromotionRestriction, PromotionType
from promotions_site.timefmt import to_epoch_ms, to_iso
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)

ITEM_KEYS = [
    "earnedPromotionId", "promotionId", "promotionName", "validTill", "validTillISO", "unlockedDate",
    "unlockedDateISO", "customerId", "earnedType", "earnedStatus", "promotionStatus", "applicationMode",
    "redeemableFrom", "redeemableFromISO", "customFieldValues", "eventTime", "eventTimeISO",
    "supplementaryCriteria", "earnedFromType", "earnedFromId", "status",
]  # fmt: skip


def wallet(api, customer_id, **query):
    return api.get(f"/api_gateway/v1/promotions/customer/{customer_id}", query)


def days(n: int) -> dt.datetime:
    return timezone.now() + dt.timedelta(days=n)


def test_item_shape(api, org, customer):
    # given: an earned instance of an EARNING promotion, with supplementary criteria from the earn
    promotion = PromotionFactory(
        org=org, type=PromotionType.EARNING, name="Flat 10", custom_field_values={"channel": "app"}
    )
    criteria = {"loyaltyProgramId": 1, "programType": "TIER", "partnerProgramId": 2}
    instance = EarnedPromotionFactory(
        org=org,
        customer=customer,
        promotion=promotion,
        kind="EARNED",
        earned_from_type="ACTIVITY",
        earned_from_id="BILL-1",
        event_details={"id": "BILL-1", "type": "TransactionAdd", "supplementaryCriteria": criteria},
    )
    # when
    response = wallet(api, customer.pk)
    # then
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data", "errors"] and body["errors"] == []
    [item] = body["data"]
    assert list(item) == ITEM_KEYS
    assert item == {
        "earnedPromotionId": instance.pk,
        "promotionId": promotion.pk,
        "promotionName": "Flat 10",
        "validTill": to_epoch_ms(instance.valid_till),
        "validTillISO": to_iso(instance.valid_till),
        "unlockedDate": to_epoch_ms(instance.event_time),
        "unlockedDateISO": to_iso(instance.event_time),
        "customerId": customer.pk,
        "earnedType": "EARNED",
        "earnedStatus": "UNLOCKED",
        "promotionStatus": "ACTIVE",
        "applicationMode": "DISCOUNT",
        "redeemableFrom": to_epoch_ms(instance.event_time),
        "redeemableFromISO": to_iso(instance.event_time),
        "customFieldValues": {"channel": "app"},
        "eventTime": to_epoch_ms(instance.event_time),
        "eventTimeISO": to_iso(instance.event_time),
        "supplementaryCriteria": criteria,
        "earnedFromType": "ACTIVITY",
        "earnedFromId": "BILL-1",
        "status": "ACTIVE",
    }


def test_issued_instance_of_an_earning_promotion_is_locked(api, org, customer):
    # given: issued (not yet earned) EARNING, issued CUSTOMER, earned REWARD; an inactive promotion
    earning = EarnedPromotionFactory(
        org=org, customer=customer, promotion=PromotionFactory(org=org, type="EARNING"), valid_till=days(3)
    )
    issued = EarnedPromotionFactory(
        org=org, customer=customer, promotion=PromotionFactory(org=org, active=False), valid_till=days(2)
    )
    reward = EarnedPromotionFactory(
        org=org,
        customer=customer,
        promotion=PromotionFactory(org=org, type="REWARD", mode="PAYMENT_VOUCHER"),
        kind="EARNED",
        earned_from_type="REWARD",
        valid_till=days(1),
    )
    # when
    items = wallet(api, customer.pk).json()["data"]
    # then
    assert [(i["earnedPromotionId"], i["earnedType"], i["earnedStatus"]) for i in items] == [
        (earning.pk, "ISSUED", "LOCKED"),
        (issued.pk, "ISSUED", "UNLOCKED"),
        (reward.pk, "EARNED", "UNLOCKED"),
    ]
    assert items[0]["unlockedDate"] is None and items[0]["unlockedDateISO"] is None
    assert [i["promotionStatus"] for i in items] == ["ACTIVE", "INACTIVE", "ACTIVE"]
    assert items[2]["applicationMode"] == "PAYMENT_VOUCHER"
    assert items[0]["supplementaryCriteria"] is None


def test_sorted_by_valid_till_latest_first_then_id_and_limited(api, org, customer):
    # given: 12 instances, two of them sharing one validTill
    promotion = PromotionFactory(org=org, max_issuance_per_customer=-1)
    instances = [
        EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, valid_till=days(n + 1))
        for n in range(10)
    ]
    same_till = days(20)
    twins = [
        EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, valid_till=same_till)
        for _ in range(2)
    ]
    expected = sorted(i.pk for i in twins) + [i.pk for i in reversed(instances)]
    # when
    default = wallet(api, customer.pk).json()["data"]
    three = wallet(api, customer.pk, limit=3).json()["data"]
    everything = wallet(api, customer.pk, limit=100).json()["data"]
    # then
    assert [i["earnedPromotionId"] for i in default] == expected[:10]
    assert [i["earnedPromotionId"] for i in three] == expected[:3]
    assert [i["earnedPromotionId"] for i in everything] == expected


def test_active_only_keeps_valid_active_instances_of_running_promotions(api, org, customer):
    # given
    running = PromotionFactory(org=org, max_issuance_per_customer=-1)
    good = EarnedPromotionFactory(org=org, customer=customer, promotion=running)
    revoked = EarnedPromotionFactory(org=org, customer=customer, promotion=running, status="REVOKED")
    redeemed = EarnedPromotionFactory(org=org, customer=customer, promotion=running, status="REDEEMED")
    past_till = EarnedPromotionFactory(
        org=org, customer=customer, promotion=running, valid_till=timezone.now() - dt.timedelta(minutes=1)
    )
    inactive = EarnedPromotionFactory(
        org=org, customer=customer, promotion=PromotionFactory(org=org, active=False)
    )
    ended = EarnedPromotionFactory(
        org=org,
        customer=customer,
        promotion=PromotionFactory(
            org=org, start_date=days(-10), end_date=timezone.now() - dt.timedelta(minutes=1)
        ),
    )
    # when
    active_only = wallet(api, customer.pk, isIncludeActivePromotionsOnly="true").json()["data"]
    everything = wallet(api, customer.pk, isIncludeActivePromotionsOnly="false").json()["data"]
    # then
    assert [i["earnedPromotionId"] for i in active_only] == [good.pk]
    statuses = {i["earnedPromotionId"]: (i["status"], i["promotionStatus"]) for i in everything}
    assert statuses == {
        good.pk: ("ACTIVE", "ACTIVE"),
        revoked.pk: ("REVOKED", "ACTIVE"),
        redeemed.pk: ("REDEEMED", "ACTIVE"),
        past_till.pk: ("EXPIRED", "ACTIVE"),  # not yet marked by the expiry job, shown as expired
        inactive.pk: ("ACTIVE", "INACTIVE"),
        ended.pk: ("ACTIVE", "INACTIVE"),
    }


def test_pos_and_code_promotions_and_other_customers_are_not_in_the_wallet(api, org, customer):
    mine = EarnedPromotionFactory(org=org, customer=customer)
    EarnedPromotionFactory(org=org, customer=customer, promotion=PromotionFactory(org=org, type="POS"))
    EarnedPromotionFactory(org=org, customer=customer, promotion=PromotionFactory(org=org, type="CODE"))
    EarnedPromotionFactory(org=org)
    assert [i["earnedPromotionId"] for i in wallet(api, customer.pk).json()["data"]] == [mine.pk]


def test_empty_wallet(api, customer):
    assert wallet(api, customer.pk).json() == {"data": [], "errors": []}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"limit": -1},
        {"isIncludeActivePromotionsOnly": "maybe"},
        {"includeRedemptions": "2"},
    ],
)
def test_bad_query_parameters_are_400(api, customer, query):
    response = wallet(api, customer.pk, **query)
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == 400 and error["message"].startswith(next(iter(query)))


def test_unknown_ignored_parameters_are_accepted(api, org, customer):
    EarnedPromotionFactory(org=org, customer=customer)
    response = wallet(api, customer.pk, includeSupplementaryPromotions="true", entityId="STORE-1")
    assert response.status_code == 200 and len(response.json()["data"]) == 1


@pytest.mark.parametrize("customer_id", ["999999999", "99999999999999999999999", "0"])
def test_unknown_customer_is_404(api, customer_id):
    response = wallet(api, customer_id)
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": 404, "message": "Customer not found"}]}


def test_non_numeric_customer_id_is_404_in_the_envelope(api):
    response = wallet(api, "abc")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == 404


def test_another_orgs_customer_is_404(api, other_org):
    theirs = CustomerFactory(org=other_org)
    EarnedPromotionFactory(org=other_org, customer=theirs)
    response = wallet(api, theirs.pk)
    assert response.status_code == 404
    assert response.json() == {"errors": [{"code": 404, "message": "Customer not found"}]}


def test_read_only_client_reads_the_wallet(read_api, org, customer):
    EarnedPromotionFactory(org=org, customer=customer)
    response = wallet(read_api, customer.pk)
    assert response.status_code == 200 and len(response.json()["data"]) == 1


def test_unauthenticated_is_401(db, customer):
    from rest_framework.test import APIClient

    response = wallet(APIClient(), customer.pk)
    assert response.status_code == 401 and response.json()["errors"][0]["code"] == 401


# --- includeRedemptions --------------------------------------------------------------------------


def restrict(promotion, level, kpi, limit, **kwargs):
    return PromotionRestrictionFactory(
        promotion=promotion, level=level, kpi=kpi, limit=Decimal(limit), **kwargs
    )


def redeem(org, customer, promotion, instance=None, lines=((1, "10"),), reversed_=False):
    """One redemption by `customer` with one line per (redemption_count, discount)."""
    redemption = RedemptionFactory(org=org, customer=customer)
    for count, discount in lines:
        RedemptionLineFactory(
            redemption=redemption,
            promotion=promotion,
            earned_promotion=instance,
            redemption_count=count,
            discount=Decimal(discount),
        )
    if reversed_:
        RedemptionReversalFactory(redemption=redemption)
    return redemption


def test_restrictions_count_recorded_redemptions_per_level(api, org, customer):
    # given: limits at every level, every kpi at Customer level
    promotion = PromotionFactory(org=org, max_issuance_per_customer=-1)
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, valid_till=days(2))
    sibling = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, valid_till=days(1))
    restrict(promotion, "Cart", "REDEMPTION", "1")
    restrict(promotion, "Customer", "REDEMPTION", "5")
    restrict(promotion, "Customer", "TRANSACTION", "3")
    restrict(promotion, "Customer", "DISCOUNT", "100.5")
    restrict(promotion, "Promotion", "REDEMPTION", "10", window_type="MOVING")
    restrict(promotion, "Earn", "REDEMPTION", "2")
    # this customer: one transaction with two lines on the instance, one on the sibling
    redeem(org, customer, promotion, instance, lines=((1, "10"), (2, "15.25")))
    redeem(org, customer, promotion, sibling, lines=((1, "20"),))
    # not counted: a reversed redemption of this customer
    redeem(org, customer, promotion, instance, lines=((1, "40"),), reversed_=True)
    # another customer of the same org: Promotion level only
    other = CustomerFactory(org=org)
    redeem(org, other, promotion, lines=((3, "5"),))
    # another promotion of this customer: nowhere
    redeem(org, customer, PromotionFactory(org=org), lines=((4, "50"),))
    # when
    items = wallet(api, customer.pk, includeRedemptions="true").json()["data"]
    # then
    first = items[0]
    assert first["earnedPromotionId"] == instance.pk
    assert list(first) == [*ITEM_KEYS, "restrictions"]
    restrictions = first["restrictions"]
    assert list(restrictions) == ["Cart", "Customer", "Promotion", "Earn"]
    assert restrictions["Cart"] == [
        {
            "kpi": "REDEMPTION",
            "maxLimit": "1.000000",
            "remainingRedemption": 1,
            "windowType": "OVERALL",
            "fixedWindowConfig": None,
            "currentCycle": None,
            "periodStart": None,
            "periodEnd": None,
        }
    ]
    customer_level = {r["kpi"]: (r["maxLimit"], r["remainingRedemption"]) for r in restrictions["Customer"]}
    assert customer_level == {
        "REDEMPTION": ("5.000000", 1),  # 5 - (1 + 2 + 1)
        "TRANSACTION": ("3.000000", 1),  # 3 - 2 transactions
        "DISCOUNT": ("100.500000", "55.250000"),  # 100.5 - (10 + 15.25 + 20), six decimals as create echoes
    }
    assert restrictions["Promotion"] == [
        {
            "kpi": "REDEMPTION",
            "maxLimit": "10.000000",
            "remainingRedemption": 3,  # 10 - (4 mine + 3 theirs)
            # Stored before windows were checked (MOVING needs a frequency): counted over its life.
            "windowType": "MOVING",
            "fixedWindowConfig": None,
            "currentCycle": None,
            "periodStart": None,
            "periodEnd": None,
        }
    ]
    assert [(r["kpi"], r["remainingRedemption"]) for r in restrictions["Earn"]] == [("REDEMPTION", 0)]
    # the sibling instance: its own Earn counter, the same Customer and Promotion counters
    second = items[1]["restrictions"]
    assert [(r["kpi"], r["remainingRedemption"]) for r in second["Earn"]] == [("REDEMPTION", 1)]
    assert second["Customer"] == restrictions["Customer"] and second["Promotion"] == restrictions["Promotion"]


def test_restrictions_never_go_below_zero_and_are_absent_without_the_flag(api, org, customer):
    promotion = PromotionFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    restrict(promotion, "Customer", "REDEMPTION", "1")
    redeem(org, customer, promotion, lines=((3, "10"),))
    with_flag = wallet(api, customer.pk, includeRedemptions="true").json()["data"][0]
    assert with_flag["restrictions"]["Customer"][0]["remainingRedemption"] == 0
    assert with_flag["restrictions"]["Earn"] == [] and with_flag["restrictions"]["Cart"] == []
    without = wallet(api, customer.pk).json()["data"][0]
    assert "restrictions" not in without


def test_query_count_does_not_grow_with_the_number_of_items(
    api, org, customer, django_assert_max_num_queries
):
    def fill(count):
        for _ in range(count):
            promotion = PromotionFactory(org=org)
            instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
            for level in ("Cart", "Customer", "Promotion", "Earn"):
                restrict(promotion, level, PromotionRestriction.Kpi.REDEMPTION, "5")
            redeem(org, customer, promotion, instance)

    # given: a wallet of two items, and the queries its read takes
    fill(2)
    wallet(api, customer.pk)  # warms the authentication cache
    with CaptureQueriesContext(connection) as small:
        assert len(wallet(api, customer.pk, includeRedemptions="true").json()["data"]) == 2
    # when: the wallet grows to 30 items
    fill(28)
    # then
    with django_assert_max_num_queries(len(small)):
        response = wallet(api, customer.pk, includeRedemptions="true", limit=30)
    assert len(response.json()["data"]) == 30
    assert all(i["restrictions"]["Earn"][0]["remainingRedemption"] == 4 for i in response.json()["data"])


def test_remaining_has_one_number_format_per_kpi_never_a_float(api, org, customer):
    # given: a DISCOUNT limit of 1,000,000 of which 2,100 are used, and count limits
    promotion = PromotionFactory(org=org)
    EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    restrict(promotion, "Promotion", "DISCOUNT", "1000000")
    restrict(promotion, "Promotion", "REDEMPTION", "50")
    restrict(promotion, "Customer", "TRANSACTION", "4")
    redeem(org, customer, promotion, lines=((2, "2000"), (1, "100")))
    # when
    [item] = wallet(api, customer.pk, includeRedemptions="true").json()["data"]
    # then: a six-decimal string for DISCOUNT, as the create API echoes a limit; integers for counts
    promotion_level = {
        r["kpi"]: (r["maxLimit"], r["remainingRedemption"]) for r in item["restrictions"]["Promotion"]
    }
    assert promotion_level == {
        "DISCOUNT": ("1000000.000000", "997900.000000"),
        "REDEMPTION": ("50.000000", 47),
    }
    [transactions] = item["restrictions"]["Customer"]
    assert transactions["remainingRedemption"] == 3 and isinstance(transactions["remainingRedemption"], int)
