"""Limits whose windows reset, through the APIs: a fixed window resets on the 1st in the org's zone,
a reversal gives back to its own window, evaluate does not offer a promotion whose window is used up,
the wallet shows the current window. (Both redemption paths: tests/redemptions/test_redemption_function.py.)"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from promotions.rules import org_rules_forget
from promotions_site.timefmt import to_epoch_ms
from redemptions.models import RedemptionCounter
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    OrganizationFactory,
    PromotionFactory,
    PromotionRestrictionFactory,
)
from tests.redemptions.support import body, codes, line, redeem
from tests.redemptions.test_evaluation_create import CART_100_OFF, CART_OVER_1500, applied_ids, cart, evaluate
from tests.redemptions.test_redemption_reverse import reverse

MONTHLY = {"window_type": "FIXED", "fixed_window_config": {"cycleType": "CALENDAR_MONTH"}}


@pytest.fixture
def org(db):
    return OrganizationFactory(timezone="America/New_York")


@pytest.fixture(autouse=True)
def _rules_cache_empty():
    org_rules_forget()
    yield
    org_rules_forget()


def month_start(org, months_back: int) -> dt.date:
    """The first day of a month before this one, in the org's zone."""
    day = timezone.now().astimezone(org.tz).date().replace(day=1)
    for _ in range(months_back):
        day = (day - dt.timedelta(days=1)).replace(day=1)
    return day


def local(org, day: dt.date, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=org.tz)


def redeem_at(api, customer, promotion, when: dt.datetime, txn: str):
    return redeem(api, body(customer, txn, [line(promotion)], transactionDate=to_epoch_ms(when)))


def monthly_promotion(org, limit=3, **fields):
    promotion = PromotionFactory(
        org=org, type="POS", start_date=timezone.now() - dt.timedelta(days=120), **fields
    )
    PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="REDEMPTION", limit=limit, **MONTHLY
    )
    return promotion


def test_a_monthly_limit_gives_three_more_on_the_first_in_the_org_zone(api, org, customer):
    # given: 3 a month per customer, New York time
    promotion = monthly_promotion(org)
    earlier, later = month_start(org, 2), month_start(org, 1)
    for day in (1, 2, 3):
        assert (
            redeem_at(api, customer, promotion, local(org, earlier.replace(day=day)), f"A{day}").status_code
            == 200
        )

    # when: a fourth that month, on its last minute (already the 1st in UTC), and on the 1st itself
    fourth = redeem_at(api, customer, promotion, local(org, later - dt.timedelta(days=1), 23, 59), "A4")
    on_the_first = [
        redeem_at(api, customer, promotion, local(org, later, 0, minute), f"B{minute}")
        for minute in (0, 1, 2, 3)
    ]

    # then
    assert (fourth.status_code, codes(fourth)) == (409, [409])
    assert "Customer REDEMPTION limit of 3 reached" in fourth.json()["errors"][0]["message"]
    assert [response.status_code for response in on_the_first] == [200, 200, 200, 409]
    assert sorted(
        RedemptionCounter.objects.filter(restriction__promotion=promotion).values_list("window_start", "used")
    ) == [(earlier, Decimal(3)), (later, Decimal(3))]


def test_a_lifetime_limit_next_to_a_monthly_one_holds_across_months(api, org, customer):
    # given: 3 a month and 4 in all
    promotion = monthly_promotion(org)
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=4)
    earlier, later = month_start(org, 2), month_start(org, 1)
    answers = [
        redeem_at(api, customer, promotion, local(org, earlier.replace(day=d)), f"A{d}") for d in (1, 2, 3)
    ]

    # when
    answers += [
        redeem_at(api, customer, promotion, local(org, later.replace(day=d)), f"B{d}") for d in (1, 2)
    ]

    # then: the fifth meets the lifetime limit, though its month has room
    assert [response.status_code for response in answers] == [200, 200, 200, 200, 409]
    assert "Customer REDEMPTION limit of 4 reached" in answers[-1].json()["errors"][0]["message"]


def test_a_reversal_gives_back_to_the_window_it_was_taken_from(api, org, customer):
    # given: last-but-one month used up, one in last month
    promotion = monthly_promotion(org)
    earlier, later = month_start(org, 2), month_start(org, 1)
    for day in (1, 2, 3):
        redeem_at(api, customer, promotion, local(org, earlier.replace(day=day)), f"A{day}")
    redeem_at(api, customer, promotion, local(org, later), "B1")

    # when: one of the earlier month's is returned
    assert reverse(api, "A2").status_code == 200

    # then: that month has a unit again, the later one is untouched
    used = dict(
        RedemptionCounter.objects.filter(restriction__promotion=promotion).values_list("window_start", "used")
    )
    assert used == {earlier: Decimal(2), later: Decimal(1)}
    assert redeem_at(api, customer, promotion, local(org, earlier.replace(day=20)), "A5").status_code == 200
    assert redeem_at(api, customer, promotion, local(org, earlier.replace(day=21)), "A6").status_code == 409


def test_a_moving_window_counts_the_last_days_only(api, org, customer):
    # given: 2 transactions in any 3 days
    promotion = PromotionFactory(org=org, type="POS", start_date=timezone.now() - dt.timedelta(days=120))
    PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="TRANSACTION", limit=2, frequency="DAYS",
        min_time_between_repeat=3 * 86_400_000,
    )  # fmt: skip
    first = month_start(org, 1)
    for offset in (0, 1):
        redeem_at(api, customer, promotion, local(org, first + dt.timedelta(days=offset)), f"M{offset}")

    # when: the third day, its last minute; the fourth day, its first minute
    third = redeem_at(api, customer, promotion, local(org, first + dt.timedelta(days=2), 23, 59), "M2")
    fourth = redeem_at(api, customer, promotion, local(org, first + dt.timedelta(days=3), 0, 0), "M3")

    # and late reports: the day before the first (its 3 days would hold the second day's as well) and
    # three days before (no window of 3 days holds it and the others)
    late = redeem_at(api, customer, promotion, local(org, first - dt.timedelta(days=1)), "L1")
    later = redeem_at(api, customer, promotion, local(org, first - dt.timedelta(days=3)), "L3")

    # then
    assert (third.status_code, fourth.status_code) == (409, 200)
    assert (late.status_code, later.status_code) == (409, 200)


def test_evaluate_does_not_offer_a_promotion_whose_window_is_used_up(api, org, customer):
    # given: a cart promotion, once per customer in any 2 days; used by this customer 5 minutes ago
    # (today or, just after midnight, yesterday: inside the window either way)
    promotion = PromotionFactory(
        org=org, type="POS", condition=CART_OVER_1500, action=CART_100_OFF,
        start_date=timezone.now() - dt.timedelta(days=120),
    )  # fmt: skip
    PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="REDEMPTION", limit=1, window_type="MOVING", frequency="DAYS",
        min_time_between_repeat=2 * 86_400_000,
    )  # fmt: skip
    other, earlier = CustomerFactory(org=org), CustomerFactory(org=org)
    assert redeem(api, body(customer, "NOW", [line(promotion)])).status_code == 200
    week_ago = to_epoch_ms(timezone.now() - dt.timedelta(days=7))
    assert redeem(api, body(earlier, "OLD", [line(promotion)], transactionDate=week_ago)).status_code == 200

    # then
    assert applied_ids(evaluate(api, cart(customer))) == []
    assert applied_ids(evaluate(api, cart(other))) == [promotion.pk]
    assert applied_ids(evaluate(api, cart(earlier))) == [promotion.pk]  # a week ago is out of the window


def test_the_wallet_shows_the_current_window(api, customer):
    # given: a Berlin org; a wallet promotion, 2 a week from Monday and 5 in all per customer
    org = customer.org
    org.timezone = "Europe/Berlin"
    org.save(update_fields=["timezone"])
    promotion = PromotionFactory(org=org, type="CUSTOMER", start_date=timezone.now() - dt.timedelta(days=30))
    PromotionRestrictionFactory(
        promotion=promotion, level="Customer", kpi="REDEMPTION", limit=2, window_type="FIXED",
        fixed_window_config={"cycleType": "WEEK", "weekStartDay": "MONDAY"},
    )  # fmt: skip
    PromotionRestrictionFactory(promotion=promotion, level="Customer", kpi="REDEMPTION", limit=5)
    PromotionRestrictionFactory(promotion=promotion, level="Earn", kpi="REDEMPTION", limit=10)
    instance = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    now = timezone.now()
    data = body(customer, "W1", [line(promotion, instance)], transactionDate=to_epoch_ms(now))
    assert redeem(api, data).status_code == 200

    # when
    response = api.get(f"/api_gateway/v1/promotions/customer/{customer.pk}", {"includeRedemptions": "true"})

    # then
    limits = response.json()["data"][0]["restrictions"]["Customer"]
    tz = ZoneInfo("Europe/Berlin")
    today = now.astimezone(tz).date()
    monday = today - dt.timedelta(days=today.weekday())
    midnight = lambda day: to_epoch_ms(dt.datetime.combine(day, dt.time(0), tzinfo=tz))  # noqa: E731
    assert limits == [
        {
            "kpi": "REDEMPTION", "maxLimit": "2.000000", "remainingRedemption": 1, "windowType": "FIXED",
            "fixedWindowConfig": {"cycleType": "WEEK", "weekStartDay": "MONDAY"},
            "currentCycle": {"startDate": monday.isoformat(), "endDate": (monday + dt.timedelta(days=6)).isoformat()},
            "periodStart": midnight(monday), "periodEnd": midnight(monday + dt.timedelta(days=7)),
        },
        {
            "kpi": "REDEMPTION", "maxLimit": "5.000000", "remainingRedemption": 4, "windowType": "OVERALL",
            "fixedWindowConfig": None, "currentCycle": None, "periodStart": None, "periodEnd": None,
        },
    ]  # fmt: skip
