"""The evaluate answer's `identifier`s (docs/api.md, "Evaluate") are formatted directly, not through
json.dumps: for any promotion id, amounts and SKU (quotes, backslashes, control characters, non-ASCII
text) they are the same bytes as Base64 of json.dumps of the documented payload."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from redemptions.evaluation import cart_identifier, line_identifier
from redemptions.serializers import decimal_text

money = st.decimals(min_value=0, max_value=10**12, places=6, allow_nan=False, allow_infinity=False)
texts = st.text(max_size=40)


def reference(payload: dict) -> str:
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


@given(promotion_id=texts, discount=money, amount=money, count=st.integers(0, 10**6))
def test_cart_identifier_is_base64_of_the_documented_json(promotion_id, discount, amount, count):
    expected = reference(
        {
            "promotionId": promotion_id,
            "discount": decimal_text(discount),
            "amount": decimal_text(amount),
            "redemptionCount": count,
            "version": "v1",
        }
    )

    assert cart_identifier(promotion_id, discount, amount, count) == expected


@given(
    promotion_id=texts,
    discount=money,
    amount=money,
    count=st.integers(0, 10**6),
    discount_qty=money,
    promotion_qty=money,
    sku=texts,
)
def test_line_identifier_is_base64_of_the_documented_json(
    promotion_id, discount, amount, count, discount_qty, promotion_qty, sku
):
    expected = reference(
        {
            "promotionId": promotion_id,
            "discount": decimal_text(discount),
            "amount": decimal_text(amount),
            "redemptionCount": count,
            "discountAppliedQty": decimal_text(discount_qty),
            "promotionAppliedQty": decimal_text(promotion_qty),
            "sku": sku,
            "version": "v1",
        }
    )

    assert (
        line_identifier(promotion_id, discount, amount, count, discount_qty, promotion_qty, sku) == expected
    )


def test_a_sku_with_quotes_and_non_ascii_text_is_escaped_as_json_dumps_does():
    sku = 'a"b\\c\u00e9\n\u2603'

    decoded = json.loads(
        base64.b64decode(line_identifier("p1", Decimal(1), Decimal(2), 1, Decimal(1), Decimal(1), sku))
    )

    assert decoded["sku"] == sku
