"""The redemption list by cursor (`X-Next-Cursor`, `cursor`) and deep numbered pages read from the end:
the same records as pageNumber/limit give, in the same order, with the same total."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.utils import timezone

from redemptions import selectors
from redemptions.summaries import redemption_days_refresh
from tests.factories import (
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)

URL = "/api_gateway/v1/promotions/redemptions"


@pytest.fixture
def history(org, other_org):
    """23 redemptions over 10 days (several sharing a transaction date, some with two lines), three
    reversed, the closed days materialised; and another org's."""
    now = timezone.now().replace(microsecond=0)
    promotions = [PromotionFactory(org=org) for _ in range(2)]
    for n in range(23):
        when = now - dt.timedelta(hours=10 * (n // 2))  # pairs share their transaction date
        redemption = RedemptionFactory(org=org, transaction_date=when)
        RedemptionLineFactory(redemption=redemption, promotion=promotions[n % 2])
        if n % 3 == 0:
            RedemptionLineFactory(redemption=redemption, promotion=promotions[(n + 1) % 2], level="CART")
        if n % 7 == 0:
            RedemptionReversalFactory(redemption=redemption)
    RedemptionLineFactory(redemption__org=other_org)
    redemption_days_refresh(org=org)
    return promotions


def numbered(api, **params) -> tuple[list[str], int]:
    """Every record by pageNumber: the ids in order, and the total every page said."""
    ids, totals, page = [], set(), 0
    while True:
        body = api.get(URL, {**params, "pageNumber": page}).json()
        totals.add(body["pagination"]["total"])
        if not body["data"]:
            break
        ids += [record["id"] for record in body["data"]]
        page += 1
    assert len(totals) == 1, totals
    return ids, totals.pop()


def by_cursor(api, **params) -> list[str]:
    ids, cursor = [], None
    while True:
        response = api.get(URL, {**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.json()
        ids += [record["id"] for record in response.json()["data"]]
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            return ids


@pytest.mark.parametrize("order", ["DESC", "ASC"])
@pytest.mark.parametrize(
    "filters", [{}, {"includeReversed": "true"}, {"promotionId": 0}], ids=["none", "all", "one"]
)
def test_the_cursor_walks_the_same_records_as_the_page_numbers(api, history, order, filters):
    if "promotionId" in filters:
        filters = {"promotionId": history[0].pk}
    # when
    pages, total = numbered(api, limit=4, order=order, **filters)
    walked = by_cursor(api, limit=4, order=order, **filters)
    # then: the same records, in the same order, none twice, and the total counts them
    assert walked == pages and len(set(pages)) == len(pages) == total > 4


def test_deep_numbered_pages_read_from_the_end_are_the_same_pages(api, history, monkeypatch):
    # given: what every page holds when read forwards
    forwards, total = numbered(api, limit=3, includeReversed="true")
    # when: every page from the first is "deep" (read backwards when in the back half)
    monkeypatch.setattr(selectors, "BACKWARDS_FROM_OFFSET", 0)
    backwards, total_again = numbered(api, limit=3, includeReversed="true")
    # then
    assert backwards == forwards and total_again == total


def test_the_total_from_the_summaries_is_the_count(api, org, history):
    from redemptions.models import RedemptionLine

    # given: a line recorded today after the days were materialised (counted live)
    RedemptionLineFactory(
        redemption__org=org, redemption__transaction_date=timezone.now(), promotion=history[1]
    )
    lines = RedemptionLine.objects.filter(redemption__org=org)
    unreversed = lines.filter(redemption__reversal__isnull=True)
    cases = [
        ({}, unreversed.count()),
        ({"includeReversed": "true"}, lines.count()),
        ({"promotionId": history[1].pk}, unreversed.filter(promotion=history[1]).count()),
        (
            {"promotionId": history[1].pk, "includeReversed": "true"},
            lines.filter(promotion=history[1]).count(),
        ),
    ]
    cases.append(({"customerId": 0}, 0))  # a filter, however falsy its value: counted, not summarised
    for params, expected in cases:
        assert api.get(URL, {**params, "limit": 2}).json()["pagination"]["total"] == expected, params


def test_a_cursor_answers_the_documented_body(api, history):
    first = api.get(URL, {"limit": 2})
    second = api.get(URL, {"limit": 2, "cursor": first.headers["X-Next-Cursor"]})
    assert list(second.json()) == ["data", "errors", "pagination"]
    assert second.json()["pagination"] == {
        "limit": 2,
        "pageNumber": 0,
        "total": first.json()["pagination"]["total"],
    }
    assert second.json()["data"] == api.get(URL, {"limit": 2, "pageNumber": 1}).json()["data"]


@pytest.mark.parametrize(
    "cursor", ["x", "%%%", "MTIz", "LTEuLTE", "MS4w", "MS4xLi0x", "MS4xLjEuMQ", "A" * 100]
)
def test_a_cursor_the_list_did_not_give_is_400(api, history, cursor):
    response = api.get(URL, {"cursor": cursor})
    assert response.status_code == 400 and response.json()["errors"][0]["code"] == 400


def test_the_last_page_has_no_next_cursor(api, history):
    body = api.get(URL, {"limit": 100})
    assert "X-Next-Cursor" not in body.headers


def test_a_walk_by_cursor_counts_its_total_once(api, org, history):
    # given: a walk's first page, then a redemption recorded today (counted live, not summarised)
    first = api.get(URL, {"limit": 2})
    total = first.json()["pagination"]["total"]
    RedemptionLineFactory(
        redemption__org=org, redemption__transaction_date=timezone.now(), promotion=history[0]
    )
    # when: the walk goes on by its cursor
    second = api.get(URL, {"limit": 2, "cursor": first.headers["X-Next-Cursor"]})
    third = api.get(URL, {"limit": 2, "cursor": second.headers["X-Next-Cursor"]})
    # then: its pages answer the total its first page counted; a new walk counts the new line
    assert second.json()["pagination"]["total"] == third.json()["pagination"]["total"] == total
    assert api.get(URL, {"limit": 2}).json()["pagination"]["total"] == total + 1


def test_a_cursor_without_a_total_counts_it(api, history):
    first = api.get(URL, {"limit": 2})
    when, line_id, total = selectors.cursor_decode(first.headers["X-Next-Cursor"])
    micros = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    cursor = base64.urlsafe_b64encode(f"{micros}.{line_id}".encode()).decode().rstrip("=")
    second = api.get(URL, {"limit": 2, "cursor": cursor})
    assert second.status_code == 200
    assert second.json()["pagination"]["total"] == total == first.json()["pagination"]["total"]
    assert second.json()["data"] == api.get(URL, {"limit": 2, "pageNumber": 1}).json()["data"]
