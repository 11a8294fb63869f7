"""The engine's data types: `Line.made`, the constructor an evaluation uses for its cart lines, makes
the line the dataclass's own constructor makes, and a line stays frozen; `in_line_order` puts lines in
the order `Line.order_key` gives."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promotions.engine.types import EMPTY, Line
from promotions.engine.view import in_line_order

texts = st.text(max_size=12)
amounts = st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False)


@given(
    key=texts,
    sku=texts,
    amount=amounts,
    qty=amounts,
    categories=st.frozensets(texts, max_size=3),
    brands=st.frozensets(texts, max_size=3),
    attributes=st.dictionaries(texts, texts, max_size=3) | st.just(EMPTY),
)
def test_made_makes_the_line_the_constructor_makes(key, sku, amount, qty, categories, brands, attributes):
    # when a line is made both ways from the same fields
    made = Line.made(key, sku, amount, qty, categories, brands, attributes)
    built = Line(key, sku, amount, qty, categories, brands, attributes)
    # then they are equal field by field, and so is everything derived from them
    assert made == built
    assert repr(made) == repr(built)
    assert made.order_key() == built.order_key()
    assert vars(made) == vars(built)


def test_made_sets_every_field_of_a_line_and_the_line_stays_frozen():
    # given a line made the fast way
    line = Line.made("k", "SKU", 1, 1, frozenset(), frozenset(), EMPTY)
    # then it holds exactly the dataclass's fields (a field added to Line must be added to made too)
    assert list(vars(line)) == [field.name for field in dataclasses.fields(Line)]
    # and, like any Line, it cannot be changed
    with pytest.raises(dataclasses.FrozenInstanceError):
        line.sku = "OTHER"


small = st.sampled_from(["A", "B"])
tying_lines = st.lists(
    st.builds(
        Line,
        key=st.text(alphabet="xyz", max_size=3),
        sku=small,
        amount=st.sampled_from([Decimal("1"), Decimal("1.000000"), Decimal("2")]),
        qty=st.sampled_from([Decimal("1"), Decimal("2")]),
        categories=st.frozensets(small, max_size=2),
        brands=st.frozensets(small, max_size=2),
        attributes=st.dictionaries(small, small, max_size=2) | st.just(EMPTY),
    ),
    max_size=12,
)


@given(lines=tying_lines)
def test_lines_are_put_in_the_line_order(lines):
    # given lines that often tie on (sku, amount, qty) and differ only further down the line order
    # when they are put in order the quick way
    ordered = in_line_order(lines)
    # then it is the order the full key gives, line for line
    assert [id(line) for line in ordered] == [id(line) for line in sorted(lines, key=Line.order_key)]
