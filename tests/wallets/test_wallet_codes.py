"""The customer's wallet shows the promo codes linked to it as items of earnedType CODE
(docs/code-link.md, "In the wallet"), on both read paths."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from promotions.models import PromoCode, PromotionType
from promotions.windows import LIFETIME
from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import RedemptionCounter
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)

pytestmark = pytest.mark.django_db


def wallet(api, customer, **query):
    response = api.get(f"/api_gateway/v1/promotions/customer/{customer.pk}", query)
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_a_linked_code_is_a_wallet_item(api, org, customer):
    # given: an issued instance ending in 20 days and a code linked to the customer whose promotion ends in 30
    now = timezone.now()
    promotion = PromotionFactory(
        org=org, type=PromotionType.CODE, name="Code 30", end_date=now + dt.timedelta(days=30),
        custom_field_values={"channel": "app"},
    )  # fmt: skip
    limit = PromotionRestrictionFactory(promotion=promotion, level="Code", kpi="REDEMPTION", limit=Decimal(2))
    linked_on = now - dt.timedelta(hours=1)
    code = PromoCode.objects.create(
        org=org, promotion=promotion, code="MYCODE1", customer=customer, linked_on=linked_on
    )
    RedemptionCounter.objects.create(
        org=org, restriction=limit, scope=f"code:{code.pk}", window_start=LIFETIME, used=1, limit=2
    )
    EarnedPromotionFactory(
        org=org,
        customer=customer,
        promotion=PromotionFactory(org=org),
        valid_till=now + dt.timedelta(days=20),
    )
    # and codes that are not this customer's: unlinked, another customer's
    PromoCode.objects.create(org=org, promotion=promotion, code="FREE1")
    PromoCode.objects.create(
        org=org, promotion=promotion, code="THEIRS1", customer=CustomerFactory(org=org), linked_on=now
    )

    # when
    items = wallet(api, customer, includeRedemptions="true")

    # then: the code first (latest validTill), then the instance
    assert [item["earnedType"] for item in items] == ["CODE", "ISSUED"]
    item = items[0]
    restrictions = item.pop("restrictions")
    assert item == {
        "earnedPromotionId": str(code.pk),
        "promotionId": promotion.pk,
        "promotionName": "Code 30",
        "validTill": to_epoch_ms(promotion.end_date),
        "validTillISO": to_iso(promotion.end_date),
        "unlockedDate": to_epoch_ms(linked_on),
        "unlockedDateISO": to_iso(linked_on),
        "customerId": customer.pk,
        "earnedType": "CODE",
        "earnedStatus": "UNLOCKED",
        "promotionStatus": "ACTIVE",
        "applicationMode": "DISCOUNT",
        "redeemableFrom": to_epoch_ms(linked_on),
        "redeemableFromISO": to_iso(linked_on),
        "customFieldValues": {"channel": "app"},
        "eventTime": to_epoch_ms(linked_on),
        "eventTimeISO": to_iso(linked_on),
        "supplementaryCriteria": None,
        "earnedFromType": "CODE_LINK",
        "earnedFromId": "MYCODE1",
        "status": "ACTIVE",
        "promoCode": "MYCODE1",
    }
    assert [(r["kpi"], r["maxLimit"], r["remainingRedemption"]) for r in restrictions["Code"]] == [
        ("REDEMPTION", "2.000000", 1)
    ]
    # an instance's item has no promoCode and no Code limits
    assert "promoCode" not in items[1]
    assert "Code" not in items[1]["restrictions"]


def test_a_deactivated_code_or_an_ended_promotion(api, org, customer):
    now = timezone.now()
    running = PromotionFactory(org=org, type=PromotionType.CODE)
    ended = PromotionFactory(
        org=org,
        type=PromotionType.CODE,
        start_date=now - dt.timedelta(days=9),
        end_date=now - dt.timedelta(days=1),
    )
    PromoCode.objects.create(
        org=org, promotion=running, code="OFF2", active=False, customer=customer, linked_on=now
    )
    PromoCode.objects.create(org=org, promotion=ended, code="OLD2", customer=customer, linked_on=now)
    PromoCode.objects.create(org=org, promotion=running, code="ON2", customer=customer, linked_on=now)

    items = {item["promoCode"]: item for item in wallet(api, customer)}

    assert {code: item["status"] for code, item in items.items()} == {
        "OFF2": "REVOKED",
        "OLD2": "EXPIRED",
        "ON2": "ACTIVE",
    }
    assert items["OLD2"]["promotionStatus"] == "INACTIVE"
    # only the usable one with isIncludeActivePromotionsOnly
    assert [item["promoCode"] for item in wallet(api, customer, isIncludeActivePromotionsOnly="true")] == [
        "ON2"
    ]


def test_the_limit_counts_codes_and_instances_together(api, org):
    customer = CustomerFactory(org=org)
    now = timezone.now()
    for days in (5, 15, 25):
        promotion = PromotionFactory(org=org, type=PromotionType.CODE, end_date=now + dt.timedelta(days=days))
        PromoCode.objects.create(
            org=org, promotion=promotion, code=f"L{days}", customer=customer, linked_on=now
        )
        EarnedPromotionFactory(org=org, customer=customer, valid_till=now + dt.timedelta(days=days + 1))

    items = wallet(api, customer, limit=3)

    assert [item["earnedType"] for item in items] == ["ISSUED", "CODE", "ISSUED"]
    assert items[1]["promoCode"] == "L25"
