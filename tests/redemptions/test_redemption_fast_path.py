"""The redeem body's fast validation answers what the serializer would, or defers to it."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from promotions_site.timefmt import to_epoch_ms
from redemptions import redeem_input
from redemptions.apis import LINES_MAX, RedemptionCreateApi
from redemptions.models import Redemption
from redemptions.redeem_input import redemption_request_fast
from tests.redemptions.support import body, line, redeem
from tests.redemptions.test_evaluation_fast_path import ODD, VALID_TEXT, item
from wallets.identifiers import IDENTIFIER_NAMES

NOW = timezone.now()
# Far from the serializer's 24 h bound, so that the two calls' clocks cannot disagree.
PAST_MS = st.integers(to_epoch_ms(NOW - dt.timedelta(days=3000)), to_epoch_ms(NOW - dt.timedelta(minutes=1)))
FUTURE_MS = to_epoch_ms(NOW + dt.timedelta(hours=30))
OFFSETS = st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", "+14:00"])
ISO = st.builds(
    lambda when, fraction, offset: when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + offset,
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2025, 1, 1)),
    st.sampled_from(["", ".1", ".123", ".123456"]),
    OFFSETS,
)
ID = st.one_of(VALID_TEXT, st.integers(0, 10**12))
QUANTITY = st.one_of(st.integers(1, 3), st.sampled_from(["1", "2.5", "0.000001"]))
ODD_REDEEM = st.one_of(
    ODD,
    st.sampled_from([FUTURE_MS, str(FUTURE_MS), -5, 2**70, "1700000000000 ", 253402300800000, "x" * 25, 0, 1000001,
                     "2025-12-16T14:30:45", "2025-12-16 14:30:45+05:30", "2025-13-16T14:30:45Z", "2025-12-16T14:30:45z",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-12-16T14:30:45.1234567Z",
                     "mobile", "Mobile", "99999999999", "2.5", "1000000", 10**6]),
)  # fmt: skip
QUANTITY_EDGES = [0, "0", "0.0000001", "0.000001", 10**6, "999999999999.999999", -1]
ID_EDGES = ["x" * 24, "x" * 25, 10**17, 10**18, -(10**17), ""]
# Values at the edges of each key's rules, besides the odd values every key gets.
EDGES = {
    "redemptionCount": [0, 1, 10**6, 10**6 + 1, -1, "1", 1.0],
    "discountAppliedOnQuantity": QUANTITY_EDGES,
    "promotionAppliedOnQuantity": QUANTITY_EDGES,
    "discount": [0, "0", 10**6, "999999999999.999999", "1000000000000", 1001],
    "amount": [0, "0", 1, "999999999999.999999", "1000000000000"],
    "promotionId": ID_EDGES,
    "earnedPromotionId": ID_EDGES,
    "sku": ["x" * 100, "x" * 101, 10**17],
    "customerId": [-1, 10**17, -(10**17), "1" * 20, "1" * 21, "", " ", "0"],
    "customerIdentifierType": [*IDENTIFIER_NAMES, "Mobile", "phone", "", None, 1],
    "customerIdentifierValue": ["x" * 254, "x" * 255, "", 10**17],
    "transactionIdentifier": ["x" * 250, "x" * 251, 10**17, ""],
    "transactionNumber": ["x" * 250, "x" * 251, 10**17, ""],
    "transactionDate": [0, "0", -1, "-1", 253402300799999, 253402300800000, FUTURE_MS, "9" * 16],
    "transactionDateISO": ["2025-12-16T14:30:45+05:30", "2025-12-16T14:30:45+24:00", "2025-02-30T00:00:00Z",
                           "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2025-12-16T14:30:45.1234567Z"],
}  # fmt: skip
ENTRY_KEYS = ("redemptionCount", "discountAppliedOnQuantity", "promotionAppliedOnQuantity", "discount", "promotionId",
              "earnedPromotionId", "sku")  # fmt: skip
KEYS = ["x", "sku", "amount", "promotionId", "earnedPromotionId", "redemptionCount", "discount", "customerId",
        "transactionDate", "transactionDateISO", "customerIdentifierType", "lineItems", "redemptions", "cartItems"]  # fmt: skip


@st.composite
def entry(draw, earned: bool) -> dict:
    quantities = sorted(draw(st.lists(QUANTITY, min_size=2, max_size=2)), key=Decimal)
    data = {
        "promotionId": draw(ID),
        "redemptionCount": draw(st.integers(1, 5)),
        "discount": draw(st.one_of(st.integers(0, 100), st.sampled_from(["0.50", "99.999999"]))),
        "discountAppliedOnQuantity": quantities[0],
        "promotionAppliedOnQuantity": quantities[1],
    }
    if draw(st.booleans()):
        data["sku"] = draw(st.one_of(VALID_TEXT, st.just("")))
    if earned and draw(st.booleans()):
        data["earnedPromotionId"] = draw(st.one_of(st.none(), st.just(""), ID))
    return data


@st.composite
def redeem_body(draw) -> dict:
    """A valid body, then none, one or two of its values (or keys) made odd."""
    data = {
        "transactionIdentifier": draw(VALID_TEXT),
        "transactionNumber": draw(st.one_of(VALID_TEXT, st.integers(0, 10**9))),
        "amount": draw(st.one_of(st.integers(1000, 10**6), st.just("100000.25"))),
    }
    customer = draw(st.sampled_from(["id", "identifier", "both"]))
    if customer != "identifier":
        data["customerId"] = draw(
            st.one_of(st.just("-1"), st.integers(1, 10**9), st.integers(1, 10**9).map(str))
        )
    if customer != "id":
        data["customerIdentifierType"] = draw(st.sampled_from(IDENTIFIER_NAMES))
        data["customerIdentifierValue"] = draw(VALID_TEXT)
    elif draw(st.booleans()):
        data["customerIdentifierType"] = draw(st.sampled_from(["", None]))
    when = draw(st.sampled_from(["ms", "ms text", "iso", "both"]))
    if when != "iso":
        millis = draw(PAST_MS)
        data["transactionDate"] = str(millis) if when == "ms text" else millis
    if when in ("iso", "both"):
        data["transactionDateISO"] = draw(ISO)
    cart_level = draw(st.sampled_from(["lineItems", "redemptions", "both"]))
    if cart_level != "redemptions":
        data["lineItems"] = draw(st.lists(entry(earned=True), min_size=1, max_size=3))
    elif draw(st.booleans()):
        data["lineItems"] = draw(st.sampled_from([None, []]))
    if cart_level != "lineItems":
        data["redemptions"] = draw(st.lists(entry(earned=False), min_size=1, max_size=3))
    if draw(st.integers(0, 3)) == 0:
        data["cartItems"] = draw(st.one_of(st.none(), st.lists(item(), max_size=3)))
    for _ in range(draw(st.integers(0, 2))):
        # the containers of the body (the body itself, its entries and lists), one picked at random
        containers = [data]
        for value in data.values():
            if isinstance(value, list) and value:
                containers.append(value)
                containers.extend(entry for entry in value if isinstance(entry, dict) and entry)
        target = draw(st.sampled_from(containers))
        if isinstance(target, list):
            position = draw(st.integers(0, len(target) - 1))
            if draw(st.integers(0, 9)) == 0:  # a list at its size limit, or one past it
                target.extend(
                    [copy.deepcopy(target[position])] * (draw(st.sampled_from([500, 501])) - len(target))
                )
            else:
                target[position] = draw(ODD_REDEEM)
            continue
        key = draw(st.sampled_from(KEYS if draw(st.integers(0, 4)) == 0 else sorted(target)))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(
                st.sampled_from(EDGES[key]) if key in EDGES and draw(st.booleans()) else ODD_REDEEM
            )
    return data


def plain(value):
    """validated_data as plain values: Decimals with their exponent, datetimes with their time zone."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, plain(dataclasses.asdict(value)))
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    if isinstance(value, dt.datetime):
        return ("datetime", value.isoformat(), repr(value.tzinfo))
    return value


def serializer_answer(data):
    serializer = RedemptionCreateApi.InputSerializer(data=copy.deepcopy(data))
    return serializer.validated_data if serializer.is_valid() else None


@settings(max_examples=200, deadline=None)
@given(redeem_body())
def test_the_fast_path_accepts_only_what_the_serializer_accepts_with_the_same_data(data):
    fast = redemption_request_fast(copy.deepcopy(data))
    validated = serializer_answer(data)

    if validated is None:
        assert fast is None
    elif fast is not None:
        assert plain(fast) == plain(validated)


def bench_body() -> dict:
    """The body bench/redeem.py sends."""
    return {
        "customerId": "1234",
        "transactionIdentifier": "BENCH-7",
        "transactionNumber": "BILL-7",
        "transactionDate": to_epoch_ms(timezone.now() - dt.timedelta(minutes=1)),
        "amount": 1000,
        "lineItems": [
            {"sku": "SKU-1", "promotionId": "65a1b2c3d4e5f6a7b8c9d0e1", "earnedPromotionId": "65a1b2c3d4e5f6a7b8c9d0e2",
             "redemptionCount": 1, "discount": 100, "discountAppliedOnQuantity": 1, "promotionAppliedOnQuantity": 1},
        ],
    }  # fmt: skip


def test_the_bench_body_takes_the_fast_path():
    data = bench_body()

    fast = redemption_request_fast(data)

    assert fast is not None
    assert plain(fast) == plain(serializer_answer(data))
    assert fast["lines"][0].discount == Decimal("100.000000")


def cart_level_body() -> dict:
    data = bench_body() | {
        "customerIdentifierType": "mobile",
        "customerIdentifierValue": "+919800000001",
        "transactionDateISO": "2025-12-16T14:30:45.250+05:30",
        "amount": "2000.50",
        "lineItems": None,
        "redemptions": [
            {"promotionId": 42, "redemptionCount": 2, "discount": "150.25", "discountAppliedOnQuantity": "1.5",
             "promotionAppliedOnQuantity": 2, "earnedPromotionId": "ignored at cart level", "note": "unknown"},
        ],
        "cartItems": [{"sku": "SKU-1", "amount": "2000.50", "qty": 2}],
    }  # fmt: skip
    del data["customerId"]
    return data


def test_a_customer_identifier_and_cart_level_redemptions_take_the_fast_path():
    data = cart_level_body()

    fast = redemption_request_fast(data)

    assert fast is not None
    assert plain(fast) == plain(serializer_answer(data))
    assert fast["transaction_date"] == dt.datetime(2025, 12, 16, 9, 0, 45, 250000, tzinfo=dt.UTC)
    assert [(line.level, line.promotion_id, line.earned_promotion_id) for line in fast["lines"]] == [
        ("CART", "42", None)
    ]


@pytest.mark.parametrize("key", sorted(EDGES))
def test_each_edge_of_a_rule_is_answered_as_the_serializer_does(key):
    # given the body of the test above with both kinds of entries, and one value at the edge of a rule
    valid = cart_level_body() | {"lineItems": bench_body()["lineItems"], "customerId": "1234"}
    for value in EDGES[key]:
        bodies = []
        if key in ENTRY_KEYS:
            for level in ("lineItems", "redemptions"):
                bodies.append(copy.deepcopy(valid))
                bodies[-1][level][0][key] = value
        else:
            bodies.append(valid | {key: value})
        for data in bodies:
            # when
            fast = redemption_request_fast(copy.deepcopy(data))
            validated = serializer_answer(data)

            # then
            if validated is None or fast is not None:
                assert plain(fast) == plain(validated), (key, value)


def test_what_the_serializer_refuses_is_left_to_it():
    refused = [
        bench_body() | {"transactionDate": FUTURE_MS},
        bench_body() | {"amount": 50},
        bench_body() | {"customerId": ""},
        bench_body() | {"lineItems": []},
        bench_body() | {"lineItems": [None]},
    ]
    for data in refused:
        assert serializer_answer(data) is None
        assert redemption_request_fast(data) is None


def test_a_null_entry_is_a_validation_error(api, customer, pos_promotion):
    # given a body whose redemptions hold a null entry next to a valid one
    data = body(customer, redemptions=[None, line(pos_promotion)])

    # when
    response = redeem(api, data)

    # then: refused as a bad body, not a server error, and nothing written
    assert response.status_code == 400, response.content
    assert "An entry cannot be null." in " ".join(error["message"] for error in response.json()["errors"])
    assert not Redemption.objects.exists()


def test_the_fast_path_bounds_are_the_serializers():
    fields = RedemptionCreateApi.InputSerializer().fields

    assert (
        redeem_input.LINES_MAX
        == LINES_MAX
        == fields["lineItems"].max_length
        == fields["redemptions"].max_length
    )
    assert fields["cartItems"].max_length == redeem_input.EVALUATE_LINES_MAX
    assert fields["lineItems"].child.fields["redemptionCount"].max_value == redeem_input.REDEMPTION_COUNT_MAX
