"""The wallet's one-statement read on PostgreSQL (`wallet_read`) against the ORM path it replaces there
(`customer_get` + `wallet_get`, which SQLite still takes): the same entries, rendered to the same bytes."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Decimal

import pytest
from django.http import Http404
from django.utils import timezone

from promotions.models import PromoCode, PromotionRestriction, PromotionType
from promotions.windows import window_at, window_rule_stored
from redemptions.models import CartLockUnit, RedemptionCounter
from tests.factories import (
    CartLockFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionActivationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
)
from wallets.models import EarnedPromotion
from wallets.selectors import customer_get, wallet_get, wallet_read
from wallets.serializers import WALLET_RESPONSE

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

LIFETIME: dict = {}
MONTHLY = {"window_type": "FIXED", "fixed_window_config": {"cycleType": "CALENDAR_MONTH"}}
LAST_7_DAYS = {"window_type": "MOVING", "frequency": "DAYS", "min_time_between_repeat": 7 * 86_400_000}


def rendered(entries) -> str:
    return json.dumps(WALLET_RESPONSE.render(entries), sort_keys=True, default=str)


@pytest.fixture
def wallets(org):
    """Customers holding random mixes of instances: ISSUED and EARNED, locked and unlocked, expired,
    revoked, of active, inactive and ended promotions of every wallet type and of a POS promotion (never
    shown), some requiring the customer's activation (given or not), with limits at every level and
    redemption lines counted against them, and open carts reserving some of them."""
    rng = random.Random(20261203)
    now = timezone.now()
    promotions = []
    for number in range(8):
        promotion = PromotionFactory(
            org=org,
            type=rng.choice([*PromotionType.WALLET_TYPES, PromotionType.POS]),
            active=rng.random() > 0.2,
            start_date=now - dt.timedelta(days=5),
            end_date=now + dt.timedelta(days=rng.choice((-1, 30))),
            custom_field_values=rng.choice(({}, {"channel": "app", "n": number})),
            customer_activation_required=number % 3 == 0,
        )
        for level in rng.sample(list(PromotionRestriction.Level), 2):
            # a lifetime limit, or (Customer and Promotion levels) a monthly one or one over the last 7 days
            window = (
                rng.choice((LIFETIME, MONTHLY, LAST_7_DAYS))
                if level in ("Customer", "Promotion")
                else LIFETIME
            )
            PromotionRestrictionFactory(
                promotion=promotion, level=level, kpi=rng.choice(list(PromotionRestriction.Kpi)), **window
            )
        promotions.append(promotion)
    customers = []
    for _ in range(6):
        customer = CustomerFactory(org=org)
        for _ in range(rng.randrange(0, 7)):
            promotion = rng.choice(promotions)
            kind = rng.choice(("ISSUED", "EARNED"))
            locked = kind == "ISSUED" and rng.random() < 0.3
            unlocked = kind == "ISSUED" and not locked and rng.random() < 0.5
            instance = EarnedPromotionFactory(
                org=org, customer=customer, promotion=promotion, kind=kind, locked=locked,
                unlocked_from_type="ACTIVITY" if unlocked else "", unlocked_from_id="BILL-9" if unlocked else "",
                status=rng.choice(("ACTIVE", "ACTIVE", "REVOKED")),
                valid_till=now + dt.timedelta(days=rng.choice((-2, 3, 3, 9))),
                event_details=rng.choice(({}, {"supplementaryCriteria": {"programType": "TIER"}})),
            )  # fmt: skip
            if promotion.customer_activation_required and rng.random() < 0.5:
                PromotionActivationFactory(org=org, customer=customer, promotion=promotion)
            if rng.random() < 0.5:
                redemption = RedemptionFactory(org=org, customer=customer)
                RedemptionLineFactory(redemption=redemption, promotion=promotion, earned_promotion=instance)
        customers.append(customer)
    _open_carts(org, rng, promotions, customers, now)
    _linked_codes(org, rng, customers, now)
    return customers


def _linked_codes(org, rng, customers, now):
    """Promo codes linked to the customers (the wallet's CODE items): of active, inactive and ended
    CODE promotions with Code limits (lifetime or monthly) used and reserved per code, some codes
    deactivated, some ending exactly when an instance does (a tie broken by id), some unlinked."""
    for number in range(3):
        promotion = PromotionFactory(
            org=org, type=PromotionType.CODE, active=number != 1, start_date=now - dt.timedelta(days=5),
            end_date=now + dt.timedelta(days=(3, 9, -1)[number]),
        )  # fmt: skip
        limits = [
            PromotionRestrictionFactory(
                promotion=promotion, level="Code", kpi=kpi, limit=Decimal(5), **window
            )
            for kpi, window in (("REDEMPTION", LIFETIME), ("DISCOUNT", MONTHLY))
        ]
        PromotionRestrictionFactory(
            promotion=promotion, level="Promotion", kpi="REDEMPTION", limit=Decimal(50)
        )
        for index in range(rng.randrange(3, 8)):
            customer = rng.choice([*customers, None])
            code = PromoCode.objects.create(
                org=org, promotion=promotion, code=f"C{number}X{index}", active=rng.random() > 0.2,
                customer=customer, linked_on=now - dt.timedelta(hours=index) if customer else None,
            )  # fmt: skip
            for restriction in limits:
                if rng.random() < 0.6:
                    rule = window_rule_stored(restriction)
                    key = window_at(rule, tz=org.tz, at=now, promotion_start=promotion.start_date).key
                    RedemptionCounter.objects.create(
                        org=org, restriction=restriction, scope=f"code:{code.pk}", window_start=key,
                        used=rng.randrange(0, 3), reserved=rng.randrange(0, 3), limit=restriction.limit,
                    )  # fmt: skip
        if number == 0:  # an instance ending with the code promotion: ordered by id after a tie
            instance = EarnedPromotion.objects.filter(org=org, promotion__type=PromotionType.CUSTOMER).first()
            if instance is not None:
                EarnedPromotion.objects.filter(pk=instance.pk).update(valid_till=promotion.end_date)


def _open_carts(org, rng, promotions, customers, now):
    """What open carts reserve (docs/cart-locks.md): some of the Customer and Promotion limits on
    their current window's counter row, and some instances' Earn limits (CartLockUnit rows), one of
    them by a cart already past its time (which no longer holds them)."""
    for promotion in promotions:
        for restriction in promotion.restrictions.all():
            if restriction.level not in ("Customer", "Promotion") or rng.random() < 0.3:
                continue
            rule = window_rule_stored(restriction)
            key = window_at(rule, tz=org.tz, at=now, promotion_start=promotion.start_date).key
            scopes = [str(c.pk) for c in customers] if restriction.level == "Customer" else [""]
            for scope in scopes:
                RedemptionCounter.objects.get_or_create(
                    org=org, restriction=restriction, scope=scope, window_start=key,
                    defaults={"limit": restriction.limit, "reserved": rng.randrange(1, 4)},
                )  # fmt: skip
    for customer in customers:
        for instance in customer.earned_promotions.all():
            for restriction in instance.promotion.restrictions.filter(level="Earn"):
                if rng.random() < 0.6:
                    expired = rng.random() < 0.3
                    created = now - dt.timedelta(hours=2 if expired else 0)
                    lock = CartLockFactory(
                        org=org, customer=customer, created_at=created,
                        expires_at=created + dt.timedelta(hours=1),
                    )  # fmt: skip
                    CartLockUnit.objects.create(
                        lock=lock, earned_promotion=instance, kpi=restriction.kpi, amount=rng.randrange(1, 3)
                    )


@pytest.mark.parametrize("active_only", [False, True])
@pytest.mark.parametrize("include_redemptions", [False, True])
@pytest.mark.parametrize("limit", [2, 10])
def test_the_one_statement_reads_what_the_orm_reads(org, wallets, active_only, include_redemptions, limit):
    now = timezone.now()
    options = {
        "limit": limit,
        "active_only": active_only,
        "include_redemptions": include_redemptions,
        "now": now,
    }
    shown, reserved, codes_shown = 0, 0, 0
    for customer in wallets:
        expected = wallet_get(customer=customer_get(org=org, customer_id=customer.pk), **options)
        read = wallet_read(org=org, customer_id=customer.pk, **options)
        assert rendered(read) == rendered(expected)
        shown += len(read)
        codes_shown += sum(1 for entry in read if entry.instance.kind == "CODE")
        reserved += sum(
            usage.reserved for entry in read for usages in entry.restrictions.values() for usage in usages
        )
    assert shown > 0
    assert codes_shown > 0
    # open carts' reservations were counted (and subtracted from remaining) on both paths
    assert (reserved > 0) == include_redemptions


def test_another_orgs_customer_or_an_impossible_id_is_404(org, other_org):
    stranger = CustomerFactory(org=other_org)
    for customer_id in (stranger.pk, 0, 2**63):
        with pytest.raises(Http404):
            wallet_read(org=org, customer_id=customer_id, limit=10)


def test_a_customer_without_instances_has_an_empty_wallet(org):
    assert wallet_read(org=org, customer_id=CustomerFactory(org=org).pk, limit=10) == []
