"""The evaluate body's fast validation answers what the serializer would, or defers to it."""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from redemptions.apis import EvaluationCreateApi
from redemptions.serializers import evaluation_request_fast

VALID_TEXT = st.text(alphabet="ABCxyz-_#0123 ", min_size=1, max_size=12).map(str.strip).filter(bool)
VALID_NUMBER = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.sampled_from(["0.000001", "999999999999.999999", "1.0", "0"]),
)
ODD = st.one_of(
    st.sampled_from(["", " A", "A ", "é", "\t", "x" * 101, "Fuel\u200b", "\ud800", "1e3", " 1", "-1", "1.", ".5",
                     "0.0000001", "1000000000000", 1.5, -1, 10**13, True, False, None, [], {}, [1], {"a": 1}]),
    st.text(max_size=5),
)  # fmt: skip


@st.composite
def item(draw) -> dict:
    line = {"sku": draw(VALID_TEXT), "amount": draw(VALID_NUMBER), "qty": draw(st.integers(1, 5))}
    if draw(st.booleans()):
        line["discount"] = draw(st.one_of(st.none(), st.just(0), st.just("0.50")))
    if draw(st.booleans()):
        line["categoryList"] = draw(st.one_of(st.none(), st.lists(VALID_TEXT, max_size=3)))
    if draw(st.booleans()):
        line["brandList"] = draw(st.lists(VALID_TEXT, max_size=2))
    if draw(st.booleans()):
        line["attributes"] = draw(
            st.one_of(st.none(), st.dictionaries(VALID_TEXT, st.one_of(VALID_TEXT, st.just("")), max_size=3))
        )
    return line


@st.composite
def body(draw) -> dict:
    """A valid body, then none, one or two of its values (or keys) made odd."""
    data = {"amount": draw(VALID_NUMBER), "cartItems": draw(st.lists(item(), min_size=1, max_size=4))}
    optional = {
        "customerId": st.one_of(st.none(), st.integers(0, 10**9), st.just(-1), st.just("42"), st.just("-1")),
        "promoCodes": st.one_of(st.none(), st.lists(VALID_TEXT, max_size=3)),
        "paymentVouchers": st.one_of(st.none(), st.lists(VALID_TEXT, max_size=2)),
        "cartTenders": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries({"identifier": VALID_TEXT}, optional={"amount": VALID_NUMBER}),
                max_size=2,
            ),
        ),
        "categoryHierarchySentInPayload": st.one_of(st.none(), st.booleans()),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            data[key] = draw(values)
    for _ in range(draw(st.integers(0, 2))):
        # the containers of the body (the body itself, its items, tenders and lists), one picked at random
        containers = [data, *data["cartItems"]] if isinstance(data.get("cartItems"), list) else [data]
        containers = [c for c in containers if isinstance(c, dict)]
        for value in list(data.values()) + [v for c in containers for v in c.values()]:
            if isinstance(value, list | dict) and value:
                containers.append(value)
        target = draw(st.sampled_from(containers))
        if isinstance(target, list):
            target[draw(st.integers(0, len(target) - 1))] = draw(ODD)
        elif draw(st.integers(0, 4)) == 0:
            target[draw(st.sampled_from(["x", "price", "sku", "amount", "qty", "identifier"]))] = draw(ODD)
        elif draw(st.integers(0, 4)) == 0 and target:
            target.pop(draw(st.sampled_from(sorted(target))))
        elif target:
            target[draw(st.sampled_from(sorted(target)))] = draw(ODD)
    return data


def plain(value):
    """validated_data as plain values, Decimals with their exponent, for an exact comparison."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, Decimal):
        return ("decimal", str(value))
    return value


@settings(max_examples=150, deadline=None)
@given(body())
def test_the_fast_path_accepts_only_what_the_serializer_accepts_with_the_same_data(data):
    fast = evaluation_request_fast(copy.deepcopy(data))
    serializer = EvaluationCreateApi.InputSerializer(data=copy.deepcopy(data))

    valid = serializer.is_valid()

    if fast is not None:
        assert valid, serializer.errors
        assert plain(fast) == plain(serializer.validated_data)


def test_a_plain_cart_takes_the_fast_path():
    data = {
        "amount": "2000.00",
        "customerId": 98662653,
        "cartItems": [
            {"sku": "Sku#Fuel", "amount": "1000.00", "qty": "1.000000", "discount": None,
             "categoryList": ["Fuel", "Premium"], "brandList": ["MaxFuel"], "attributes": {"color": "red"}},
            {"sku": "Sku#food", "amount": 1000, "qty": 1},
        ],
        "promoCodes": None, "paymentVouchers": [], "cartTenders": [{"identifier": "CreditCard", "amount": "500.00"}],
        "categoryHierarchySentInPayload": True,
    }  # fmt: skip
    serializer = EvaluationCreateApi.InputSerializer(data=data)
    assert serializer.is_valid(), serializer.errors

    assert plain(evaluation_request_fast(data)) == plain(serializer.validated_data)


def test_reference_ids_are_distinct_random_uuids():
    from redemptions.evaluation import _reference_ids

    ids = _reference_ids(500)
    assert len(set(ids)) == 500
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_decimal_texts_read_again_give_the_same_values_and_the_memory_of_them_is_bounded():
    from redemptions import serializers

    # given a text read once, and as many other texts as the memory holds
    first = serializers._plain_decimal("12.5")
    for number in range(serializers._DECIMALS_READ_MAX + 10):
        serializers._plain_decimal(f"{number}.25")
    # then the memory never grew past its bound, and a text read again is the same value
    assert len(serializers._DECIMALS_READ) <= serializers._DECIMALS_READ_MAX
    again = serializers._plain_decimal("12.5")
    assert again == first == Decimal("12.500000")
    assert str(again) == "12.500000"
    assert serializers._plain_decimal("12.5") is again  # the second read is remembered
