"""Cart locks on limits that reset (docs/cart-locks.md, "Windows"): a cart reserves on the counter row of
the window its evaluation falls in, the evaluation's headroom is that window's limit less its used and
reserved units, cancel gives back to that row, a bound redemption turns the reservation into the use of
its transaction's window (moving it when the transaction falls in another window), and a promotion with a
MOVING Customer or Promotion limit is withheld from a locked evaluation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.rules import org_rules_forget
from promotions.windows import LIFETIME, window_at, window_rule_stored
from promotions_site.timefmt import to_epoch_ms
from redemptions.invariants import violations
from redemptions.models import CartLock, CartLockUnit, Redemption, RedemptionCounter
from tests.conftest import basic_auth
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
    RedemptionCounterFactory,
)
from tests.redemptions.support import codes, redeem
from tests.redemptions.test_cart_locks import (
    CART_100_OFF,
    CART_OVER_1500,
    WITH_EVALUATION,
    applied,
    cancel,
    cart,
    evaluate,
)
from tests.redemptions.test_redemption_with_cart_evaluation import bound

MONTHLY = {"window_type": "FIXED", "fixed_window_config": {"cycleType": "CALENDAR_MONTH"}}
MOVING_3_DAYS = {"frequency": "DAYS", "min_time_between_repeat": 3 * 86_400_000}


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


@pytest.fixture
def org(db):
    return OrganizationFactory(redemption_strategy=WITH_EVALUATION, timezone="America/New_York")


def promotion_with(org, limit: int, level: str = "Promotion", **window):
    promotion = PromotionFactory(
        org=org,
        type="POS",
        condition=CART_OVER_1500,
        action=CART_100_OFF,
        start_date=timezone.now() - dt.timedelta(days=120),
    )
    PromotionRestrictionFactory(promotion=promotion, level=level, kpi="REDEMPTION", limit=limit, **window)
    return promotion


def window_key(promotion, at: dt.datetime) -> dt.date:
    restriction = promotion.restrictions.get()
    rule = window_rule_stored(restriction)
    return window_at(rule, tz=promotion.org.tz, at=at, promotion_start=promotion.start_date).key


def rows(promotion) -> dict[dt.date, tuple[Decimal, Decimal]]:
    """{window start: (used, reserved)} of the promotion's counter rows."""
    return {
        key: (used, reserved)
        for key, used, reserved in RedemptionCounter.objects.filter(
            restriction__promotion=promotion
        ).values_list("window_start", "used", "reserved")
    }


def broken(org, but: str = "~") -> list[str]:
    """The invariants `org`'s rows break (PostgreSQL: the checks are its SQL), but those named `but...`."""
    if connection.vendor != "postgresql":
        return []
    return [violation for violation in violations([org.pk]) if not violation.startswith(but)]


def open_cart(api, customer) -> dict:
    response = evaluate(api, cart(customer))
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_a_cart_reserves_on_its_windows_row_and_the_headroom_is_that_windows(org, api):
    # given: 2 a month; last month used up, this month one used
    promotion = promotion_with(org, limit=2, **MONTHLY)
    now = timezone.now()
    this_month = window_key(promotion, now)
    last_month = window_key(
        promotion, dt.datetime.combine(this_month, dt.time(12), tzinfo=org.tz) - dt.timedelta(days=2)
    )
    restriction = promotion.restrictions.get()
    for key, used in ((last_month, 2), (this_month, 1)):
        RedemptionCounterFactory(
            org=org, restriction=restriction, scope="", window_start=key, used=used, limit=2
        )

    # when: two customers evaluate
    first = open_cart(api, CustomerFactory(org=org))
    second = open_cart(api, CustomerFactory(org=org))

    # then: the first is offered this month's last unit and reserves it on this month's row (its unit
    # names the row); the second is offered nothing (used 1 + reserved 1 of 2), and opens no cart
    assert [entry["promotionId"] for entry in first["appliedPromotions"]] == [promotion.pk]
    assert second["appliedPromotions"] == []
    assert rows(promotion) == {last_month: (2, 0), this_month: (1, 1)}
    unit = CartLockUnit.objects.get()
    assert (unit.lock_id, unit.window_start) == (first["evaluationId"], this_month)
    # (the seeded `used` has no redemptions behind it: only the cart invariants are checked)
    assert broken(org, but="counter equals") == []


def test_a_lifetime_limit_reserves_on_its_one_row(org, api):
    promotion = promotion_with(org, limit=5)

    open_cart(api, CustomerFactory(org=org))

    assert rows(promotion) == {LIFETIME: (0, 1)}
    assert CartLockUnit.objects.get().window_start == LIFETIME


def test_cancel_gives_back_to_the_windows_row(org, api):
    promotion = promotion_with(org, limit=2, level="Customer", **MONTHLY)
    customer = CustomerFactory(org=org)
    data = open_cart(api, customer)
    this_month = window_key(promotion, CartLock.objects.get().created_at)

    response = cancel(api, customer, data["evaluationId"])

    assert response.status_code == 200, response.content
    assert rows(promotion) == {this_month: (0, 0)}
    assert broken(org) == []


def test_a_bound_redemption_in_the_carts_window_turns_the_reservation_into_its_use(org, api):
    promotion = promotion_with(org, limit=2, **MONTHLY)
    customer = CustomerFactory(org=org)
    data = open_cart(api, customer)
    evaluated_at = CartLock.objects.get().created_at
    this_month = window_key(promotion, evaluated_at)

    response = redeem(api, bound(customer, data, transactionDate=to_epoch_ms(evaluated_at)))

    assert response.status_code == 200, response.content
    assert rows(promotion) == {this_month: (1, 0)}
    assert CartLock.objects.get().status == "REDEEMED"
    assert broken(org) == []


def test_a_bound_redemption_dated_in_another_window_gives_back_and_takes_in_its_own(org, api):
    # given: a cart reserving this month's unit; the transaction happened last month
    promotion = promotion_with(org, limit=2, **MONTHLY)
    customer = CustomerFactory(org=org)
    data = open_cart(api, customer)
    evaluated_at = CartLock.objects.get().created_at
    this_month = window_key(promotion, evaluated_at)
    earlier = evaluated_at - dt.timedelta(days=40)
    that_month = window_key(promotion, earlier)

    # when it is redeemed with that date
    response = redeem(api, bound(customer, data, transactionDate=to_epoch_ms(earlier)))

    # then: this month's reservation is given back, the use is counted in the transaction's month
    assert response.status_code == 200, response.content
    assert rows(promotion) == {this_month: (0, 0), that_month: (1, 0)}
    assert broken(org) == []


def test_a_bound_redemption_dated_in_a_full_window_is_refused_and_the_cart_stays_open(org, api):
    # given: the transaction's month is used up
    promotion = promotion_with(org, limit=1, **MONTHLY)
    customer = CustomerFactory(org=org)
    data = open_cart(api, customer)
    evaluated_at = CartLock.objects.get().created_at
    this_month = window_key(promotion, evaluated_at)
    earlier = evaluated_at - dt.timedelta(days=40)
    that_month = window_key(promotion, earlier)
    RedemptionCounterFactory(
        org=org, restriction=promotion.restrictions.get(), scope="", window_start=that_month, used=1, limit=1
    )

    # when
    response = redeem(api, bound(customer, data, transactionDate=to_epoch_ms(earlier)))

    # then: the limit of that month refuses it; nothing moved, the cart still holds this month's unit
    assert (response.status_code, codes(response)) == (409, [409])
    assert not Redemption.objects.exists()
    assert rows(promotion) == {this_month: (0, 1), that_month: (1, 0)}
    assert CartLock.objects.get().status == "OPEN"


@pytest.mark.parametrize("level", ["Promotion", "Customer"])
def test_a_promotion_with_a_moving_limit_is_withheld_from_a_locked_evaluation(org, api, level):
    # given: a promotion limited to 2 in any 3 days, and one without a limit
    moving = promotion_with(org, limit=2, level=level, **MOVING_3_DAYS)
    plain = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF, start_date=moving.start_date
    )
    customer = CustomerFactory(org=org)

    # when the customer's cart is evaluated under cart locking
    response = evaluate(api, cart(customer))

    # then: only the other promotion is offered; nothing is reserved against the MOVING limit
    assert response.status_code == 200, response.content
    assert applied(response) == [plain.pk]
    assert not RedemptionCounter.objects.filter(restriction__promotion=moving).exists()
    assert not CartLockUnit.objects.filter(restriction__promotion=moving).exists()
    assert broken(org) == []


def test_a_moving_limit_is_still_offered_without_cart_locking(db):
    # given: the same promotion in an org without cart evaluation
    org = OrganizationFactory(timezone="America/New_York")
    assert org.redemption_strategy != WITH_EVALUATION
    moving = promotion_with(org, limit=2, **MOVING_3_DAYS)
    client = ApiClientFactory(org=org)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))

    response = evaluate(api, cart(CustomerFactory(org=org)))

    assert response.status_code == 200, response.content
    assert applied(response) == [moving.pk]
    assert not CartLock.objects.exists()
