"""The engine's data types: `Line.made`, the constructor an evaluation uses for its cart lines, makes
the line the dataclass's own constructor makes, and a line stays frozen."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promotions.engine.types import EMPTY, Line

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
