"""GET /api_gateway/v1/promotions/redemptions: one record per redemption line, filtered, paginated."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from promotions.models import PromoCode, PromotionMode
from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import RedemptionLine
from tests.factories import (
    ApiClientFactory,
    CustomerFactory,
    EarnedPromotionFactory,
    PromotionFactory,
    RedemptionFactory,
    RedemptionLineFactory,
    RedemptionReversalFactory,
)

URL = "/api_gateway/v1/promotions/redemptions"
DAY = dt.timedelta(days=1)
RECORD_KEYS = [
    "id",
    "orgId",
    "promotionId",
    "promoCode",
    "earnedPromotionId",
    "customerId",
    "redemptionDate",
    "redemptionDateISO",
    "transactionIdentifier",
    "transactionNumber",
    "promotionName",
    "promotionMessageLabel",
    "transactionEntityIdentifier",
    "cartEvaluationId",
    "redemptionTill",
    "discount",
    "redemptionCount",
    "amount",
    "redemptionType",
    "discountAppliedQuantity",
    "promotionAppliedQuantity",
    "sku",
    "productId",
    "reversed",
]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [record["id"] for record in response.json()["data"]]


def line_ids(*lines: RedemptionLine) -> list[str]:
    return [str(line.pk) for line in lines]


def line_on(org, when: dt.datetime, **kwargs) -> RedemptionLine:
    """A line of a new redemption of `org` whose transaction happened at `when`."""
    return RedemptionLineFactory(redemption__org=org, redemption__transaction_date=when, **kwargs)


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def test_a_line_item_record_has_every_documented_field(api, org):
    # given: a line-item redemption of an earned promotion, recorded by a till
    till = ApiClientFactory(org=org, username="store.server")
    promotion = PromotionFactory(org=org, name="Flat 500 off", message_label="Flat 500 off on 2000")
    customer = CustomerFactory(org=org)
    earned = EarnedPromotionFactory(org=org, customer=customer, promotion=promotion)
    when = dt.datetime(2025, 12, 16, 9, 0, 45, 123000, tzinfo=dt.UTC)
    redemption = RedemptionFactory(
        org=org,
        customer=customer,
        transaction_identifier="TXN-42",
        transaction_number="BILL-42",
        transaction_date=when,
        amount=Decimal("2000"),
        api_client=till,
    )
    line = RedemptionLineFactory(
        redemption=redemption,
        promotion=promotion,
        earned_promotion=earned,
        sku="SKU-1001",
        redemption_count=2,
        discount=Decimal("500"),
        discount_applied_on_quantity=Decimal("1.5"),
        promotion_applied_on_quantity=Decimal(3),
    )

    # when
    response = api.get(URL)

    # then
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data", "errors", "pagination"]
    assert body["errors"] == []
    assert body["pagination"] == {"limit": 10, "pageNumber": 0, "total": 1}
    [record] = body["data"]
    assert list(record) == RECORD_KEYS
    assert record == {
        "id": str(line.pk),
        "orgId": org.pk,
        "promotionId": promotion.pk,
        "promoCode": None,
        "earnedPromotionId": earned.pk,
        "customerId": customer.pk,
        "redemptionDate": 1765875645123,
        "redemptionDateISO": to_iso(when),
        "transactionIdentifier": "TXN-42",
        "transactionNumber": "BILL-42",
        "promotionName": "Flat 500 off",
        "promotionMessageLabel": "Flat 500 off on 2000",
        "transactionEntityIdentifier": f"REGULAR_l_{line.pk}",
        "cartEvaluationId": None,
        "redemptionTill": "store.server",
        "discount": "500.000000",
        "redemptionCount": 2,
        "amount": "2000.000000",
        "redemptionType": "LINEITEM",
        "discountAppliedQuantity": "1.500000",
        "promotionAppliedQuantity": "3.000000",
        "sku": "SKU-1001",
        "productId": None,
        "reversed": False,
    }


def test_a_cart_level_record_names_its_redemption(api, org):
    # given: a cart-level line with no sku, no earned promotion, no label, recorded by no client
    line = RedemptionLineFactory(redemption__org=org, level=RedemptionLine.Level.CART)

    # when
    [record] = api.get(URL).json()["data"]

    # then
    assert record["redemptionType"] == "CART"
    assert record["transactionEntityIdentifier"] == f"REGULAR_b_{line.redemption_id}"
    assert record["sku"] is None and record["earnedPromotionId"] is None
    assert record["promotionMessageLabel"] is None and record["redemptionTill"] is None


def test_one_record_per_line_with_the_transaction_repeated(api, org, now):
    # given: one transaction with a line item and a cart-level line
    redemption = RedemptionFactory(org=org, transaction_date=now)
    item = RedemptionLineFactory(redemption=redemption, level=RedemptionLine.Level.LINE_ITEM)
    cart = RedemptionLineFactory(redemption=redemption, level=RedemptionLine.Level.CART)

    # when
    records = api.get(URL).json()["data"]

    # then: the higher line id first on a tie (DESC)
    assert [r["id"] for r in records] == line_ids(cart, item)
    assert {r["transactionIdentifier"] for r in records} == {redemption.transaction_identifier}
    assert {r["redemptionDate"] for r in records} == {to_epoch_ms(now)}


# --- Filters --------------------------------------------------------------------------------------


def test_filters_by_customer(api, org, now):
    customer = CustomerFactory(org=org)
    mine = line_on(org, now, redemption__customer=customer)
    line_on(org, now)

    assert ids(api.get(URL, {"customerId": customer.pk})) == line_ids(mine)
    assert ids(api.get(URL, {"customerId": 999999999})) == []


def test_filters_by_promotion(api, org, now):
    promotion = PromotionFactory(org=org)
    wanted = [line_on(org, now - DAY, promotion=promotion), line_on(org, now, promotion=promotion)]
    line_on(org, now)

    assert ids(api.get(URL, {"promotionId": promotion.pk})) == line_ids(*reversed(wanted))
    assert ids(api.get(URL, {"promotionId": "0" * 24})) == []


def test_filters_by_transaction_identifier(api, org, now):
    redemption = RedemptionFactory(org=org, transaction_identifier="POS-7-0042", transaction_date=now)
    lines = RedemptionLineFactory.create_batch(2, redemption=redemption)
    line_on(org, now)

    assert ids(api.get(URL, {"transactionIdentifier": "POS-7-0042"})) == line_ids(*reversed(lines))
    assert ids(api.get(URL, {"transactionIdentifier": "POS-7-004"})) == []


def test_filters_by_transaction_entity_identifier(api, org, now):
    # given: one redemption with two cart-level lines and a line item
    redemption = RedemptionFactory(org=org, transaction_date=now)
    carts = RedemptionLineFactory.create_batch(2, redemption=redemption, level=RedemptionLine.Level.CART)
    item = RedemptionLineFactory(redemption=redemption, level=RedemptionLine.Level.LINE_ITEM)
    line_on(org, now)

    # when / then: the cart-level lines of the redemption, or the one line item
    assert ids(api.get(URL, {"transactionEntityIdentifier": f"REGULAR_b_{redemption.pk}"})) == line_ids(
        *reversed(carts)
    )
    assert ids(api.get(URL, {"transactionEntityIdentifier": f"REGULAR_l_{item.pk}"})) == line_ids(item)
    # a cart-level line is not addressed as a line item
    assert ids(api.get(URL, {"transactionEntityIdentifier": f"REGULAR_l_{carts[0].pk}"})) == []


def test_filters_by_the_promotion_mode(api, org, now):
    voucher = line_on(org, now, promotion__mode=PromotionMode.PAYMENT_VOUCHER)
    discount = line_on(org, now, promotion__mode=PromotionMode.DISCOUNT)

    assert ids(api.get(URL, {"mode": "PAYMENT_VOUCHER"})) == line_ids(voucher)
    assert ids(api.get(URL, {"mode": "DISCOUNT"})) == line_ids(discount)


def test_filters_by_transaction_date_in_epoch_ms_both_bounds_inclusive(api, org, now):
    # given: transactions on three consecutive days
    before, inside, after = (line_on(org, now + offset * DAY) for offset in (-1, 0, 1))
    start = to_epoch_ms(now)

    # when / then
    assert ids(api.get(URL, {"startDate": start, "endDate": start})) == line_ids(inside)
    assert ids(api.get(URL, {"startDate": start + 1})) == line_ids(after)
    assert ids(api.get(URL, {"endDate": start - 1})) == line_ids(before)
    assert ids(api.get(URL, {"startDate": start})) == line_ids(after, inside)


def test_the_widest_date_range_is_accepted(api, org, now):
    line = line_on(org, now)

    assert ids(api.get(URL, {"startDate": 0, "endDate": 253402300799999})) == line_ids(line)
    assert ids(api.get(URL, {"endDateISO": "9999-12-31T23:59:59.999999Z"})) == line_ids(line)


def test_the_end_bound_covers_its_whole_millisecond(api, org, now):
    # given: a transaction recorded with microseconds (an ISO transactionDate with a fraction)
    line = line_on(org, now + dt.timedelta(microseconds=1500))
    millis = to_epoch_ms(now) + 1

    assert ids(api.get(URL, {"endDate": millis})) == line_ids(line)
    assert ids(api.get(URL, {"endDate": millis - 1})) == []


def test_filters_by_transaction_date_in_iso_with_offset(api, org):
    # given: 14:30:45 at +05:30 is 09:00:45 UTC
    instant = dt.datetime(2025, 12, 16, 9, 0, 45, tzinfo=dt.UTC)
    line_on(org, instant - dt.timedelta(seconds=1))
    inside = line_on(org, instant)
    line_on(org, instant + dt.timedelta(seconds=1))

    # when: the offset encoded, and a `+` that arrived as a space (not URL-encoded)
    encoded = api.get(
        URL, {"startDateISO": "2025-12-16T14:30:45+05:30", "endDateISO": "2025-12-16T09:00:45Z"}
    )
    raw = api.get(f"{URL}?startDateISO=2025-12-16T14:30:45+05:30&endDateISO=2025-12-16T14:30:45+05:30")

    # then
    assert ids(encoded) == line_ids(inside)
    assert ids(raw) == line_ids(inside)


def test_an_offset_beyond_what_postgresql_stores_is_read_as_its_instant(api, org):
    # given: 05:00:19 at -22:27 is 03:27:19 UTC the next day (found by the fuzzer: it was a 500)
    instant = dt.datetime(2025, 12, 17, 3, 27, 19, tzinfo=dt.UTC)
    inside = line_on(org, instant)
    line_on(org, instant + dt.timedelta(seconds=1))

    # when
    response = api.get(URL, {"endDateISO": "2025-12-16T05:00:19.0-22:27"})

    # then
    assert response.status_code == 200
    assert ids(response) == line_ids(inside)


def test_a_control_character_is_a_bad_date_not_an_absent_one(api, org):
    # found by the fuzzer: `\x1f` was stripped as whitespace, so the filter was silently dropped
    response = api.get(URL, {"startDateISO": "\x1f"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("startDateISO: Must be an ISO 8601 timestamp")


def test_integers_in_the_query_are_written_as_integers(api, org, now):
    # Django's form field would read `5.0` as 5; the schema says integer
    for params in ({"customerId": "5.0"}, {"startDate": f"{to_epoch_ms(now)}.0"}):
        response = api.get(URL, params)
        assert response.status_code == 400, params


def test_filters_combine(api, org, now):
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org)
    wanted = line_on(org, now, redemption__customer=customer, promotion=promotion)
    line_on(org, now, redemption__customer=customer)
    line_on(org, now, promotion=promotion)
    line_on(org, now - DAY, redemption__customer=customer, promotion=promotion)

    response = api.get(
        URL, {"customerId": customer.pk, "promotionId": promotion.pk, "startDate": to_epoch_ms(now)}
    )

    assert ids(response) == line_ids(wanted)


def test_the_codes_filter_selects_the_lines_redeemed_through_those_codes(api, org, now):
    promotion = PromotionFactory(org=org, type="CODE")
    summer = PromoCode.objects.create(org=org, promotion=promotion, code="SUMMER10")
    winter = PromoCode.objects.create(org=org, promotion=promotion, code="WINTER10")
    line_on(org, now)
    with_summer = line_on(org, now, promotion=promotion, promo_code=summer)
    with_winter = line_on(org, now, promotion=promotion, promo_code=winter)

    assert ids(api.get(URL, {"codes": "summer10"})) == line_ids(with_summer)
    assert sorted(ids(api.get(URL, {"codes": "SUMMER10, winter10"}))) == sorted(
        line_ids(with_summer, with_winter)
    )
    assert ids(api.get(URL, {"codes": "NOSUCH"})) == []
    record = api.get(URL, {"codes": "WINTER10"}).json()["data"][0]
    assert record["promoCode"] == "WINTER10"


# --- Reversed redemptions ------------------------------------------------------------------------


def test_reversed_redemptions_are_left_out_unless_asked_for(api, org, now):
    # given: one redemption reversed, one not
    kept = line_on(org, now)
    undone = line_on(org, now - DAY)
    RedemptionReversalFactory(redemption=undone.redemption)

    # when
    default = api.get(URL).json()
    included = api.get(URL, {"includeReversed": "true"}).json()
    excluded = api.get(URL, {"includeReversed": "False"}).json()

    # then
    assert [r["id"] for r in default["data"]] == line_ids(kept)
    assert default["pagination"]["total"] == 1
    assert [(r["id"], r["reversed"]) for r in included["data"]] == [
        (str(kept.pk), False),
        (str(undone.pk), True),
    ]
    assert included["pagination"]["total"] == 2
    assert excluded == default


# --- Sorting and pagination ----------------------------------------------------------------------


def test_sorts_on_the_transaction_date_desc_by_default_and_asc_on_request(api, org, now):
    # given: created in an order that is neither date order nor id order
    middle = line_on(org, now)
    latest = line_on(org, now + DAY)
    earliest = line_on(org, now - DAY)

    # then
    assert ids(api.get(URL)) == line_ids(latest, middle, earliest)
    assert ids(api.get(URL, {"sortOn": "REDEMPTION_DATE", "order": "DESC"})) == line_ids(
        latest, middle, earliest
    )
    assert ids(api.get(URL, {"order": "ASC"})) == line_ids(earliest, middle, latest)


@pytest.mark.parametrize("order", ["ASC", "DESC"])
def test_pages_cover_every_record_once_even_on_tied_dates(api, org, now, order):
    # given: 23 lines, most of them sharing a transaction date
    lines = [line_on(org, now) for _ in range(15)] + [line_on(org, now + i * DAY) for i in (-2, -1, 1, 2)]
    redemption = RedemptionFactory(org=org, transaction_date=now)
    lines += RedemptionLineFactory.create_batch(4, redemption=redemption)

    # when: every page of 5
    pages = [api.get(URL, {"limit": 5, "pageNumber": n, "order": order}).json() for n in range(6)]

    # then: no overlap, no gap, and the order is (date, id) in the requested direction
    seen = [record["id"] for page in pages for record in page["data"]]
    expected = sorted(
        lines, key=lambda line: (line.redemption.transaction_date, line.pk), reverse=order == "DESC"
    )
    assert seen == line_ids(*expected)
    assert [len(page["data"]) for page in pages] == [5, 5, 5, 5, 3, 0]
    assert {page["pagination"]["total"] for page in pages} == {23}
    assert [page["pagination"]["pageNumber"] for page in pages] == list(range(6))
    assert {page["pagination"]["limit"] for page in pages} == {5}


def test_limit_defaults_to_10_and_goes_up_to_100(api, org, now):
    for i in range(101):
        line_on(org, now + i * dt.timedelta(seconds=1))

    default = api.get(URL).json()
    largest = api.get(URL, {"limit": 100}).json()

    assert len(default["data"]) == 10 and default["pagination"] == {
        "limit": 10,
        "pageNumber": 0,
        "total": 101,
    }
    assert len(largest["data"]) == 100 and largest["pagination"]["total"] == 101


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"pageNumber": -1},
        {"pageNumber": 1_000_001},
        {"sortOn": "CREATED_DATE"},
        {"order": "UP"},
        {"customerId": "abc"},
        {"customerId": str(2**63)},
        {"promotionId": "a" * 25},
        {"transactionIdentifier": "t" * 251},
        {"transactionEntityIdentifier": "REGULAR_x_1"},
        {"transactionEntityIdentifier": "REGULAR_b_"},
        {"transactionEntityIdentifier": "42"},
        {"mode": "CASHBACK"},
        {"startDate": "yesterday"},
        {"startDate": -1},
        {"endDate": 253402300800000},
        {"startDateISO": "2025-12-16T14:30:45"},
        {"endDateISO": "16/12/2025"},
        {"endDateISO": "9999-12-31T23:59:59-05:00"},
        {"startDateISO": "1969-12-31T23:59:59Z"},
        {"startDate": 1765875645000, "startDateISO": "2025-12-16T14:30:45+05:30"},
        {"startDate": 1765875645001, "endDate": 1765875645000},
        {"startDateISO": "2025-12-16T14:30:46+05:30", "endDate": 1765875645000},
        {"includeReversed": "maybe"},
    ],
)
def test_bad_parameters_are_400_in_the_envelope(api, org, params):
    # when
    response = api.get(URL, params)

    # then
    assert response.status_code == 400, params
    body = response.json()
    assert list(body) == ["errors"]
    assert body["errors"][0]["code"] == 400
    assert body["errors"][0]["message"].startswith(next(iter(params)).removesuffix("ISO"))


# --- Access and org scoping ----------------------------------------------------------------------


def test_never_lists_another_orgs_redemptions(api, org, other_org, now):
    # given: a redemption in each org
    mine = line_on(org, now)
    theirs = line_on(other_org, now)
    their_redemption = theirs.redemption

    # then: the list, and every filter naming the other org's objects, show only ours
    assert ids(api.get(URL)) == line_ids(mine)
    assert ids(api.get(URL, {"customerId": their_redemption.customer_id})) == []
    assert ids(api.get(URL, {"promotionId": theirs.promotion_id})) == []
    assert ids(api.get(URL, {"transactionIdentifier": their_redemption.transaction_identifier})) == []
    assert ids(api.get(URL, {"transactionEntityIdentifier": f"REGULAR_l_{theirs.pk}"})) == []
    assert api.get(URL).json()["pagination"]["total"] == 1


def test_read_access_is_enough(read_api, org, now):
    line = line_on(org, now)

    assert ids(read_api.get(URL)) == line_ids(line)


def test_unauthenticated_is_401(db):
    response = APIClient().get(URL)

    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == 401


# --- Cost ----------------------------------------------------------------------------------------


def test_query_count_does_not_grow_with_the_page(api, org, now, django_assert_max_num_queries):
    # given: 60 lines, each with its own redemption, promotion, customer, earned promotion and till
    till = ApiClientFactory(org=org)
    for i in range(60):
        line = line_on(org, now + i * dt.timedelta(seconds=1), redemption__api_client=till)
        RedemptionLine.objects.filter(pk=line.pk).update(
            earned_promotion=EarnedPromotionFactory(org=org, promotion=line.promotion)
        )
    RedemptionReversalFactory(redemption=line.redemption)

    # when / then: a full page of 5 or 50 costs the same: the client, the page, and the total (the
    # daily summaries' closed days, then a COUNT of the lines after them)
    for limit in (5, 50):
        with django_assert_max_num_queries(4):
            body = api.get(URL, {"limit": limit, "includeReversed": "true"}).json()
        assert len(body["data"]) == limit and body["pagination"]["total"] == 60
        assert body["data"][0]["reversed"] is True and body["data"][0]["redemptionTill"] == till.username


def test_a_page_that_tells_the_total_needs_no_count(api, org, now, django_assert_num_queries):
    for i in range(7):
        line_on(org, now + i * dt.timedelta(seconds=1))
    with django_assert_num_queries(4) as full_page:
        assert api.get(URL, {"limit": 5}).json()["pagination"]["total"] == 7

    # when: the last, short page
    with django_assert_num_queries(2) as short_page:
        body = api.get(URL, {"limit": 5, "pageNumber": 1}).json()

    # then: its total is known without the COUNT
    assert body["pagination"]["total"] == 7 and len(body["data"]) == 2
    assert any("COUNT(" in q["sql"] for q in full_page.captured_queries)
    assert not any("COUNT(" in q["sql"] for q in short_page.captured_queries)
