"""The dashboard's counters: per-promotion tallies kept by the issue and earn services, and the daily
summaries (RedemptionDay) materialised for closed days, caught up on demand and kept exact by the
redemption and reversal services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from promotions.models import PromotionType
from promotions_site.timefmt import to_epoch_ms
from redemptions.models import RedemptionDay
from redemptions.selectors import org_activity_totals, promotion_activity_list, redemptions_per_day
from redemptions.summaries import redemption_day_counts, redemption_days_refresh
from redemptions.tasks import redemption_days_refresh_task
from tests.factories import CustomerFactory, PromotionFactory, RedemptionFactory, RedemptionLineFactory
from tests.redemptions.support import URL, body, line, redeem
from wallets.models import EarnedPromotion, PromotionTally
from wallets.services import promotion_tallies_refresh

DAY = dt.timedelta(days=1)


def at_noon(org, days_ago: int) -> dt.datetime:
    today = timezone.localdate(timezone=org.tz)
    return dt.datetime.combine(today - days_ago * DAY, dt.time(12), tzinfo=org.tz)


@pytest.fixture
def pos(org):
    """Two POS promotions running since two months ago (anyone may redeem them, any day since)."""
    started = timezone.now() - 60 * DAY
    return [
        PromotionFactory(org=org, type=PromotionType.POS, name=name, start_date=started)
        for name in ("A", "B")
    ]


def record(api, customer, txn, promotions, *, days_ago: int, discount=100):
    data = body(
        customer,
        txn=txn,
        redemptions=[line(p, discount=discount) for p in promotions],
        transactionDate=to_epoch_ms(at_noon(customer.org, days_ago)),
    )
    response = redeem(api, data)
    assert response.status_code == 200, response.json()


def reverse(api, txn):
    response = api.post(f"{URL}/reverse", {"transactionIdentifier": txn}, format="json")
    assert response.status_code == 200, response.json()


def recounted(org) -> dict:
    """Every materialised row against a count from the tables: {(promotion, day): (row, counted)}."""
    rows = {(row.promotion_id, row.day): row for row in RedemptionDay.objects.for_org(org)}
    low = dt.datetime.combine(min(day for _, day in rows), dt.time.min, tzinfo=org.tz)
    high = dt.datetime.combine(timezone.localdate(timezone=org.tz), dt.time.min, tzinfo=org.tz)
    counted = {(row.promotion_id, row.day): row for row in redemption_day_counts(org=org, low=low, high=high)}
    fields = ("redeemed", "reversed", "discount", "lines", "reversed_lines")
    return {
        key: (
            tuple(getattr(rows[key], name) for name in fields),
            tuple(getattr(counted[key], name) for name in fields)
            if key in counted
            else (0, 0, Decimal(0), 0, 0),
        )
        for key in rows
    }


def test_closed_days_are_materialised_once_with_zero_days_included(api, org, customer, pos):
    # given: redemptions five and two days ago, one today
    record(api, customer, "T1", pos, days_ago=5)
    record(api, customer, "T2", pos[:1], days_ago=2)
    record(api, customer, "T3", pos[:1], days_ago=0)
    # when
    written = redemption_days_refresh(org=org)
    # then: one org row per closed day from the first (zeros too), promotion rows where redeemed, not today
    assert written == 5
    org_days = RedemptionDay.objects.for_org(org).filter(promotion__isnull=True).order_by("day")
    assert [(row.day, row.redeemed, row.lines) for row in org_days] == [
        (timezone.localdate(at_noon(org, n), org.tz), 1 if n in (5, 2) else 0, {5: 2, 2: 1}.get(n, 0))
        for n in (5, 4, 3, 2, 1)
    ]
    assert RedemptionDay.objects.for_org(org).filter(promotion__isnull=False).count() == 3
    # and again: nothing is missing, nothing is written
    assert redemption_days_refresh(org=org) == 0
    assert all(row == counted for row, counted in recounted(org).values())


def test_the_write_path_keeps_materialised_days_exact(api, org, customer, pos):
    # given: materialised days
    record(api, customer, "T1", pos, days_ago=3, discount=100)
    record(api, customer, "T2", pos[:1], days_ago=3, discount=40)
    redemption_days_refresh(org=org)
    # when: a late (backdated) redemption lands on a materialised day, one of a promotion not yet
    # redeemed that day, and reversals of an old and of the late one
    record(api, customer, "T-LATE", pos[1:], days_ago=3, discount=7)
    record(api, customer, "T-LATE-2", pos, days_ago=2, discount=5)
    reverse(api, "T2")
    reverse(api, "T-LATE-2")
    # then: every row equals a count from the tables
    checked = recounted(org)
    assert checked and all(row == counted for row, counted in checked.values()), checked
    org_day = RedemptionDay.objects.get(
        org=org, promotion=None, day=timezone.localdate(at_noon(org, 3), org.tz)
    )
    assert (org_day.redeemed, org_day.reversed, org_day.discount) == (2, 1, Decimal(207))


def test_the_dashboard_reads_agree_with_a_count_of_the_tables(api, org, customer, pos):
    record(api, customer, "T1", pos, days_ago=4)
    record(api, customer, "T2", pos[:1], days_ago=1)
    redemption_days_refresh(org=org)
    record(api, customer, "T3", pos, days_ago=0)  # today: counted live
    record(api, customer, "T4", pos[:1], days_ago=4)  # on a materialised day
    reverse(api, "T1")
    # when
    totals = org_activity_totals(org=org)
    activity = {row.promotion.name: row for row in promotion_activity_list(org=org, promotions=pos)}
    days = redemptions_per_day(org=org, days=7)
    # then
    assert (totals.redeemed, totals.reversed, totals.discount) == (3, 1, Decimal(400))
    assert (activity["A"].redeemed, activity["A"].reversed, activity["A"].discount) == (3, 1, Decimal(300))
    assert (activity["B"].redeemed, activity["B"].reversed, activity["B"].discount) == (1, 1, Decimal(100))
    assert [(d.redeemed, d.reversed) for d in days] == [
        (0, 0),
        (0, 0),
        (1, 1),
        (0, 0),
        (0, 0),
        (1, 0),
        (1, 0),
    ]


def test_the_periodic_task_materialises_every_orgs_missing_days(org, other_org):
    for owner in (org, other_org):
        redemption = RedemptionFactory(org=owner, transaction_date=at_noon(owner, 2))
        RedemptionLineFactory(redemption=redemption)
    assert redemption_days_refresh_task() == 4
    assert redemption_days_refresh_task() == 0


def test_an_org_without_redemptions_has_nothing_to_materialise(org):
    assert redemption_days_refresh(org=org) == 0


def test_tallies_count_what_the_services_issue_and_earn(api, org):
    # given: a CUSTOMER promotion issued to two customers, and an EARNING one earned by each twice
    customers = [CustomerFactory(org=org) for _ in range(2)]
    issued = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    earning = PromotionFactory(org=org, type=PromotionType.EARNING)
    response = api.post(
        f"/api_gateway/v1/promotions/{issued.pk}/issueBulk?contextId=ctx-1",
        [c.pk for c in customers],
        format="json",
    )
    assert response.status_code == 200, response.json()
    for customer in customers:
        for n in range(2):
            earn = {"customerId": customer.pk, "earnedFromType": "ACTIVITY", "earnedFromId": f"BILL-{n}",
                    "eventTimeISO": timezone.now().isoformat(), "eventDetails": {"id": f"BILL-{n}", "type": "TransactionAdd"}}  # fmt: skip
            response = api.post(f"/api_gateway/v1/promotions/{earning.pk}/earn", earn, format="json")
            assert response.status_code == 200, response.json()
    # and a replayed issue, which creates nothing
    api.post(
        f"/api_gateway/v1/promotions/{issued.pk}/issueBulk?contextId=ctx-1", [customers[0].pk], format="json"
    )
    # then: the tallies say what the table holds, and a recount agrees
    tallies = {t.promotion_id: (t.issued, t.earned) for t in PromotionTally.objects.for_org(org)}
    assert tallies == {issued.pk: (2, 0), earning.pk: (0, 4)}
    assert EarnedPromotion.objects.filter(org=org).count() == 6
    promotion_tallies_refresh(org=org)
    assert {t.promotion_id: (t.issued, t.earned) for t in PromotionTally.objects.for_org(org)} == tallies
