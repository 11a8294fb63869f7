"""A promotion's performance page: totals from the tallies and daily summaries, the chart, the top stores
(redemptions' till codes joined to the org's tills) and API clients, the redemption rate, the CSV,
permission and org isolation."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from redemptions.performance import _top_stores
from tests.admin_support import staff_login
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
    StoreFactory,
    TillFactory,
)
from wallets.services import promotion_tallies_refresh


def org_today(org) -> dt.date:
    return timezone.localdate(timezone=org.tz)


def at_noon(org, days_ago: int) -> dt.datetime:
    return dt.datetime.combine(org_today(org) - dt.timedelta(days=days_ago), dt.time(12), tzinfo=org.tz)


def url(promotion, query: str = "") -> str:
    return reverse("admin-promotion-performance", args=[promotion.pk]) + query


@pytest.fixture
def seeded(org, other_org):
    org.rounding_precision = 2
    org.save()
    promotion = PromotionFactory(
        org=org, name="Diwali 10%", start_date=at_noon(org, 10), end_date=at_noon(org, -10)
    )
    other = PromotionFactory(org=org, name="Other")
    till = ApiClientFactory(org=org, username="till-mumbai-01")
    customer = CustomerFactory(org=org)
    for kind in ("ISSUED", "ISSUED", "ISSUED", "EARNED"):
        EarnedPromotionFactory(org=org, customer=customer, promotion=promotion, kind=kind)

    # two stores, Mumbai with two tills; another org has a till whose code ours do not
    mumbai = StoreFactory(org=org, name="Mumbai Central", code="MUM-01")
    pune = StoreFactory(org=org, name="Pune", code="PUN-01")
    TillFactory(org=org, code="mum.till.1", store=mumbai)
    TillFactory(org=org, code="mum.till.2", store=mumbai)
    TillFactory(org=org, code="pun.till.1", store=pune)
    TillFactory(org=other_org, code="their.till")

    def redeem(days_ago, discount, *, reversed_=False, client=None, also=None, till=""):
        made = RedemptionFactory(
            org=org, transaction_date=at_noon(org, days_ago), api_client=client, till_code=till
        )
        RedemptionLineFactory(redemption=made, promotion=promotion, discount=Decimal(discount))
        if also is not None:
            RedemptionLineFactory(redemption=made, promotion=also, discount=Decimal("1000"))
        if reversed_:
            RedemptionReversalFactory(redemption=made)

    redeem(0, "10.005", client=till, till="mum.till.1")  # today: counted live
    redeem(1, "20", client=till, also=other, till="mum.till.2")
    redeem(1, "99", reversed_=True, client=till, till="pun.till.1")
    redeem(3, "5")  # no till recorded
    redeem(20, "7", till="their.till")  # before its start date: outside the days shown, in the totals;
    # a till code of another org: no store of ours
    theirs = PromotionFactory(org=other_org, name="Theirs")
    made = RedemptionFactory(org=other_org, transaction_date=at_noon(other_org, 1))
    RedemptionLineFactory(redemption=made, promotion=theirs, discount=Decimal("555"))
    promotion_tallies_refresh()
    return {"promotion": promotion, "theirs": theirs}


def test_numbers_match_the_redemptions_and_reversals(client, org, seeded):
    staff_login(client, org)
    response = client.get(url(seeded["promotion"]))
    assert response.status_code == 200
    performance = response.context["performance"]
    totals = performance.totals
    assert (totals.issued, totals.earned, totals.redeemed, totals.reversed) == (3, 1, 4, 1)
    assert totals.discount == Decimal("42.005")
    assert performance.rate == Decimal("100.0")  # 4 redeemed / (3 + 1) given
    days = {day.day: (day.redeemed, day.reversed, day.discount) for day in performance.days}
    today = org_today(org)
    assert len(performance.days) == 11 and performance.days[-1].day == today
    assert days[today] == (1, 0, Decimal("10.005"))
    assert days[today - dt.timedelta(days=1)] == (1, 1, Decimal("20"))
    assert days[today - dt.timedelta(days=3)] == (1, 0, Decimal("5"))
    assert [(c.name, c.redeemed, c.reversed, c.discount) for c in performance.clients] == [
        ("till-mumbai-01", 2, 1, Decimal("30.005")),
        ("(no API client: the admin or a job)", 2, 0, Decimal("12")),
    ]
    assert [(s.name, s.code, s.redeemed, s.reversed, s.discount) for s in performance.stores] == [
        ("Mumbai Central", "MUM-01", 2, 0, Decimal("30.005")),
        ("No store recorded", "", 2, 0, Decimal("12")),
        ("Pune", "PUN-01", 0, 1, Decimal("0")),
    ]
    html = response.content.decode()
    assert "42.01" in html and "<svg" in html and "Top stores" in html
    assert '<th scope="row">Mumbai Central</th><td>MUM-01</td>' in html and "30.01" in html
    assert "555" not in html


def test_csv_has_the_same_numbers(client, org, seeded):
    staff_login(client, org)
    response = client.get(url(seeded["promotion"], "?format=csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["day", "issued", "earned", "redeemed", "reversed", "discount"]
    assert rows[12] == ["total", "3", "1", "4", "1", "42.01"]
    yesterday = (org_today(org) - dt.timedelta(days=1)).isoformat()
    assert [yesterday, "", "", "1", "1", "20.00"] in rows
    # then, after an empty row, the top stores under their own header: the page's numbers
    assert rows[13:] == [
        [],
        ["store", "store code", "redeemed", "reversed", "discount"],
        ["Mumbai Central", "MUM-01", "2", "0", "30.01"],
        ["No store recorded", "", "2", "0", "12.00"],
        ["Pune", "PUN-01", "0", "1", "0.00"],
    ]
    assert rows[12][0] == "total"


def test_permission_and_org_isolation(client, org, seeded):
    staff_login(client, org, codenames=["view_promotion"])
    assert client.get(url(seeded["promotion"])).status_code == 403
    staff_login(client, org)
    assert client.get(url(seeded["theirs"])).status_code == 404
    assert client.get(url(seeded["theirs"], "?format=csv")).status_code == 404


def test_the_promotion_page_links_to_it(client, org, seeded):
    staff_login(client, org)
    promotion = seeded["promotion"]
    page = client.get(reverse("admin:promotions_promotion_change", args=[promotion.pk]))
    assert url(promotion) in page.content.decode()


def test_a_promotion_not_started_yet_has_no_days(client, org):
    staff_login(client, org)
    promotion = PromotionFactory(org=org, start_date=at_noon(org, -5), end_date=at_noon(org, -20))
    response = client.get(url(promotion))
    assert response.status_code == 200 and response.context["performance"].days == []
    assert response.context["performance"].rate is None
    assert "not started yet" in response.content.decode()


def test_top_stores_take_two_queries_however_many_tills(org, django_assert_num_queries):
    # given: twelve tills of four stores, each with a redemption of the promotion
    promotion = PromotionFactory(org=org, start_date=at_noon(org, 5), end_date=at_noon(org, -5))
    stores = [StoreFactory(org=org, name=f"Store {n}", code=f"S{n}") for n in range(4)]
    for n in range(12):
        till = TillFactory(org=org, code=f"till.q.{n}", store=stores[n % 4])
        made = RedemptionFactory(org=org, transaction_date=at_noon(org, 1), till_code=till.code)
        RedemptionLineFactory(redemption=made, promotion=promotion, discount=Decimal(n))

    # when
    with django_assert_num_queries(2):  # the aggregate per till code, then the tills' stores
        rows = _top_stores(org, promotion, org_today(org))

    # then: each store's three tills added up
    assert [(row.code, row.redeemed, row.discount) for row in rows] == [
        ("S3", 3, Decimal(3 + 7 + 11)), ("S2", 3, Decimal(2 + 6 + 10)), ("S1", 3, Decimal(1 + 5 + 9)),
        ("S0", 3, Decimal(0 + 4 + 8)),
    ]  # fmt: skip
