"""Cart locks on limits that reset (docs/cart-locks.md, "Windows"): a cart reserves on the counter row of
the window its evaluation falls in, the evaluation's headroom is that window's limit less its used and
reserved units, cancel gives back to that row, a bound redemption turns the reservation into the use of
its transaction's window (moving it when the transaction falls in another window); a MOVING limit
reserves on its day's row under its lock row, its windows summed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from promotions.rules import org_rules_forget
from promotions.windows import LIFETIME, window_at, window_rule_stored
from promotions_site.timefmt import to_epoch_ms
from redemptions.invariants import violations
from redemptions.models import CartLock, CartLockUnit, Redemption, RedemptionCounter
from tests.factories import (
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


def today(org) -> dt.date:
    return timezone.now().astimezone(org.tz).date()


@pytest.mark.parametrize("level", ["Promotion", "Customer"])
def test_a_moving_limit_reserves_on_its_day_under_its_lock_row_and_counts_the_window(org, api, level):
    # given: 2 in any 3 days; one used yesterday (by the first customer, for the Customer level)
    promotion = promotion_with(org, limit=2, level=level, **MOVING_3_DAYS)
    first, second = CustomerFactory(org=org), CustomerFactory(org=org)
    scope = str(first.pk) if level == "Customer" else ""
    yesterday = today(org) - dt.timedelta(days=1)
    RedemptionCounterFactory(
        org=org,
        restriction=promotion.restrictions.get(),
        scope=scope,
        window_start=yesterday,
        used=1,
        limit=2,
    )

    # when: the first customer evaluates
    data = open_cart(api, first)

    # then: the evaluation's day's bucket holds the reservation, the lock row nothing; the unit names the day
    day = window_key(promotion, CartLock.objects.get().created_at)
    assert [entry["promotionId"] for entry in data["appliedPromotions"]] == [promotion.pk]
    assert rows(promotion) == {LIFETIME: (0, 0), yesterday: (1, 0), day: (0, 1)}
    assert CartLockUnit.objects.get().window_start == day
    if level == "Promotion":
        # the window's 2 are used (1) and reserved (1): the other customer is offered nothing
        assert open_cart(api, second)["appliedPromotions"] == []
        cancel(api, first, data["evaluationId"])
        assert [entry["promotionId"] for entry in open_cart(api, second)["appliedPromotions"]] == [
            promotion.pk
        ]
    assert broken(org, but="counter equals") == []


def test_a_moving_limits_later_bucket_counts_in_the_headroom(org, api):
    # given: 1 in any 3 days, used by a sale reported for tomorrow (up to a day ahead is accepted)
    promotion = promotion_with(org, limit=1, **MOVING_3_DAYS)
    RedemptionCounterFactory(
        org=org,
        restriction=promotion.restrictions.get(),
        scope="",
        window_start=today(org) + dt.timedelta(days=1),
        used=1,
        limit=1,
    )

    # when
    response = evaluate(api, cart(CustomerFactory(org=org)))

    # then: the window ending tomorrow holds today, so nothing is offered (and no retry ends in 521)
    assert response.status_code == 200, response.content
    assert applied(response) == []
    assert not CartLock.objects.exists()


def test_a_bound_redemption_turns_a_moving_reservation_into_its_days_use(org, api):
    promotion = promotion_with(org, limit=2, **MOVING_3_DAYS)
    customer = CustomerFactory(org=org)
    data = open_cart(api, customer)
    evaluated_at = CartLock.objects.get().created_at
    day = window_key(promotion, evaluated_at)

    response = redeem(api, bound(customer, data, transactionDate=to_epoch_ms(evaluated_at)))

    assert response.status_code == 200, response.content
    assert rows(promotion) == {LIFETIME: (0, 0), day: (1, 0)}
    assert broken(org) == []


@pytest.mark.postgres_only
def test_the_invariants_catch_a_unit_moved_to_another_windows_row(org, api):
    # given: a cart's unit on this month's row
    promotion_with(org, limit=2, **MONTHLY)
    open_cart(api, CustomerFactory(org=org))
    assert broken(org) == []

    # when: its unit is made to name another month (the counter still holds it on this month's)
    CartLockUnit.objects.update(window_start=dt.date(2000, 1, 1))

    # then: the reservation no longer matches the rows, nor the evaluation's window
    found = broken(org)
    assert any(v.startswith("counter's reserved equals its open carts' units") for v in found), found
    assert any(v.startswith("an open cart's unit is reserved in the window its evaluation") for v in found), (
        found
    )
