"""The marketer dashboard: activity per promotion, the org's totals, and redemptions per day as SVG."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from redemptions.charts import axis_top
from redemptions.summaries import redemption_days_refresh
from tests.admin_support import staff_login
from tests.factories import (
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
    UserFactory,
)
from wallets.services import promotion_tallies_refresh

DASHBOARD = "/admin/dashboard/"


def org_today(org) -> dt.date:
    return timezone.localdate(timezone=org.tz)


def at_noon(org, days_ago: int) -> dt.datetime:
    return dt.datetime.combine(org_today(org) - dt.timedelta(days=days_ago), dt.time(12), tzinfo=org.tz)


def redemption(org, promotions_discounts, *, days_ago=0, reversed_=False):
    made = RedemptionFactory(org=org, transaction_date=at_noon(org, days_ago))
    for promotion, discount in promotions_discounts:
        RedemptionLineFactory(redemption=made, promotion=promotion, discount=Decimal(discount))
    if reversed_:
        RedemptionReversalFactory(redemption=made)
    return made


@pytest.fixture
def activity(org, other_org):
    diwali = PromotionFactory(org=org, name="Diwali 10%")
    flat = PromotionFactory(org=org, name="Flat 500")
    quiet = PromotionFactory(org=org, name="Quiet one")
    customer = CustomerFactory(org=org)
    for _ in range(2):
        EarnedPromotionFactory(org=org, customer=customer, promotion=diwali, kind="ISSUED")
    EarnedPromotionFactory(org=org, customer=customer, promotion=diwali, kind="EARNED")
    EarnedPromotionFactory(org=org, customer=customer, promotion=flat, kind="EARNED")
    redemption(org, [(diwali, "100"), (flat, "50")])  # today: both promotions, counted once in totals
    redemption(org, [(flat, "500")], days_ago=1, reversed_=True)
    redemption(org, [(diwali, "30")], days_ago=3)
    redemption(org, [(diwali, "70")], days_ago=40)  # before the chart's 30 days
    # another org's activity, which must count nowhere here
    theirs = PromotionFactory(org=other_org, name="Theirs")
    EarnedPromotionFactory(org=other_org, promotion=theirs)
    redemption(other_org, [(theirs, "999")])
    # The factories write behind the services' back: recount what the services would have counted.
    promotion_tallies_refresh()
    return {"diwali": diwali, "flat": flat, "quiet": quiet, "theirs": theirs}


@pytest.fixture
def marketer(client, org):
    staff_login(client, org)
    return client


def test_activity_per_promotion_and_totals(marketer, activity):
    # when
    response = marketer.get(DASHBOARD)
    # then
    assert response.status_code == 200
    rows = {row.promotion.name: row for row in response.context["activity"]}
    assert set(rows) == {"Diwali 10%", "Flat 500", "Quiet one"}
    numbers = {name: (r.issued, r.earned, r.redeemed, r.reversed, r.discount) for name, r in rows.items()}
    assert numbers == {
        "Diwali 10%": (2, 1, 3, 0, Decimal("200")),
        "Flat 500": (0, 1, 1, 1, Decimal("50")),
        "Quiet one": (0, 0, 0, 0, Decimal("0")),
    }
    totals = response.context["totals"]
    assert (totals.issued, totals.earned, totals.redeemed, totals.reversed, totals.discount) == (
        2, 2, 3, 1, Decimal("250"),
    )  # fmt: skip
    html = response.content.decode()
    assert "Theirs" not in html and "999.00" not in html
    assert '<td class="numeric">200.00</td>' in html


def test_redemptions_per_day_chart(marketer, activity, org):
    # when
    response = marketer.get(DASHBOARD)
    # then 30 days, oldest first, ending today in the org's time zone
    days = response.context["days"]
    assert len(days) == 30 and days[-1].day == org_today(org)
    counts = {day.day: (day.redeemed, day.reversed) for day in days if day.redeemed or day.reversed}
    today = org_today(org)
    assert counts == {
        today: (1, 0),
        today - dt.timedelta(days=1): (0, 1),
        today - dt.timedelta(days=3): (1, 0),
    }
    # drawn as inline SVG: a bar per day with its numbers, both axes titled
    html = response.content.decode()
    svg = re.search(r"<svg class=\"chart\".*?</svg>", html, re.S).group(0)
    assert svg.count('<g class="bar">') == 30
    assert f"{today:%a %d %b %Y}: 1 redeemed, 0 reversed" in svg
    assert ">Redemptions</text>" in svg and f"Transaction date ({org.timezone})" in svg
    assert f"{today:%d %b}" in svg  # the last day is always labelled
    assert "<script" not in html.split('id="redemptions-per-day"')[1].split("</div>")[0]


def test_the_chart_of_one_promotion(marketer, activity, org):
    # when
    response = marketer.get(DASHBOARD, {"promotion": activity["flat"].pk})
    # then only the days of its transactions
    days = {
        day.day: (day.redeemed, day.reversed)
        for day in response.context["days"]
        if day.redeemed or day.reversed
    }
    today = org_today(org)
    assert days == {today: (1, 0), today - dt.timedelta(days=1): (0, 1)}
    assert "Redemptions per day, last 30 days: Flat 500" in response.content.decode()
    # the table still shows every promotion
    assert len(response.context["activity"]) == 3


def test_another_orgs_promotion_is_not_a_chart_choice(marketer, activity):
    response = marketer.get(DASHBOARD, {"promotion": activity["theirs"].pk})
    assert response.status_code == 200
    assert response.context["promotion"] is None
    assert "Select a valid choice" in response.content.decode()
    assert sum(day.redeemed for day in response.context["days"]) == 2  # the org's, unfiltered


def test_each_org_sees_its_own_numbers(client, activity, other_org):
    # given a staff user of the other org
    staff_login(client, other_org)
    # when
    response = client.get(DASHBOARD)
    # then
    assert [row.promotion.name for row in response.context["activity"]] == ["Theirs"]
    assert response.context["totals"].discount == Decimal("999")
    assert "Diwali" not in response.content.decode()


def test_a_fixed_number_of_queries_however_many_promotions(marketer, org):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer.get(DASHBOARD).status_code == 200
        return len(captured)

    # given one promotion with activity
    first = PromotionFactory(org=org)
    redemption(org, [(first, "10")], days_ago=3)
    redemption_days_refresh(org=org)  # the hourly task: a day is materialised once, not per load
    with_one = queries()
    # when there are twenty more, each issued and redeemed
    for _ in range(20):
        promotion = PromotionFactory(org=org)
        EarnedPromotionFactory(org=org, promotion=promotion)
        redemption(org, [(promotion, "5")], days_ago=2)
        RedemptionLineFactory(redemption=redemption(org, [(promotion, "1")]), promotion=first)  # today
    redemption_days_refresh(org=org)
    # then: session, user, permissions, org, the catch-up's two reads (nothing missing), then the page's
    assert queries() == with_one <= 20


def test_promotions_are_paged(marketer, org, monkeypatch):
    monkeypatch.setattr("redemptions.admin.DASHBOARD_PROMOTIONS_PER_PAGE", 2)
    for name in ("A", "B", "C"):
        PromotionFactory(org=org, name=name)
    first = marketer.get(DASHBOARD)
    second = marketer.get(DASHBOARD, {"p": 2})
    assert len(first.context["activity"]) == 2 and len(second.context["activity"]) == 1
    assert "Page 1 of 2 (3 promotions)" in first.content.decode()


def test_the_admin_index_links_to_the_dashboard(marketer):
    html = marketer.get("/admin/").content.decode()
    assert f'href="{DASHBOARD}"' in html and "Redemption audit" in html


def test_the_dashboard_needs_view_permissions(client, org):
    staff_login(client, org, codenames=["view_promotion"])
    assert client.get(DASHBOARD).status_code == 403
    assert f'href="{DASHBOARD}"' not in client.get("/admin/").content.decode()


def test_the_dashboard_needs_a_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_superuser_without_org_picks_the_org(client, activity, org, other_org):
    client.force_login(UserFactory(org=None, is_superuser=True))
    response = client.get(DASHBOARD, {"org": other_org.pk})
    assert [row.promotion.name for row in response.context["activity"]] == ["Theirs"]
    assert 'name="org"' in response.content.decode()


@pytest.mark.parametrize(
    ("highest", "expected"),
    [(0, (1, 1)), (1, (1, 1)), (3, (3, 1)), (7, (8, 2)), (10, (10, 5)), (37, (40, 10)), (1234, (1500, 500))],
)
def test_the_y_axis_takes_round_steps(highest, expected):
    assert axis_top(highest) == expected
