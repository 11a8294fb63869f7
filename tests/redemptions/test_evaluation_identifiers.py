"""The evaluate answer's `identifier`s (docs/api.md, "Evaluate") and the `applied` record an evaluation
stores are formatted directly, not through json.dumps: for any promotion id, amounts and SKU (quotes,
backslashes, control characters, non-ASCII text) they are the same bytes as json.dumps of the
documented payload (Base64 of it, for an identifier)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from redemptions.evaluation import _applied_text, cart_identifier, line_identifier
from redemptions.models import JSONText, JSONTextField
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


def applied_payload(outcome, keys: list[str], lines) -> list[dict]:
    """The `applied` record as documented on the model: per applied promotion and per line share."""
    sku_of = dict(zip(keys, (line.sku for line in lines), strict=True))
    found = {promotion.promotion_id: promotion for promotion in outcome.result.applied}
    return [
        {
            "promotionId": promotion.promotion_id,
            "identifier": promotion.identifier,
            "discount": decimal_text(promotion.discount),
            "redemptionCount": promotion.redemption_count,
            "earnedPromotionId": promotion.earned_promotion_id,
            **(
                {"promoCode": promotion.promo_code, "promoCodeId": outcome.code_ids[promotion.promotion_id]}
                if promotion.promo_code is not None
                else {}
            ),
            "level": found[promotion.promotion_id].level,
            "lines": [
                {
                    "referenceId": share.line_key,
                    "sku": sku_of[share.line_key],
                    "discount": decimal_text(share.discount),
                    "discountAppliedOnQuantity": decimal_text(share.discount_qty),
                    "promotionAppliedOnQuantity": decimal_text(share.promotion_qty),
                }
                for share in found[promotion.promotion_id].lines
            ],
        }
        for promotion in outcome.applied
    ]


@st.composite
def outcomes(draw):
    skus = draw(st.lists(texts, min_size=1, max_size=6))
    keys = [
        f"{texts_key}-{n}"
        for n, texts_key in enumerate(draw(st.lists(texts, min_size=len(skus), max_size=len(skus))))
    ]
    applied, found, code_ids = [], [], {}
    for number in range(draw(st.integers(0, 4))):
        promotion_id = f"{draw(texts)}#{number}"  # distinct, as an evaluation's promotions are
        code = draw(st.none() | texts)
        if code is not None:
            code_ids[promotion_id] = draw(st.integers(1, 10**12))
        shares = [
            SimpleNamespace(
                line_key=key, discount=draw(money), discount_qty=draw(money), promotion_qty=draw(money)
            )
            for key in draw(st.lists(st.sampled_from(keys), max_size=len(keys), unique=True))
        ]
        applied.append(
            SimpleNamespace(
                promotion_id=promotion_id,
                identifier=draw(texts),
                discount=draw(money),
                redemption_count=draw(st.integers(0, 10**6)),
                earned_promotion_id=draw(st.none() | texts),
                promo_code=code,
            )
        )
        found.append(
            SimpleNamespace(
                promotion_id=promotion_id,
                level=draw(st.sampled_from(["LINE", "CART", "TENDER"])),
                lines=shares,
            )
        )
    outcome = SimpleNamespace(applied=applied, result=SimpleNamespace(applied=found), code_ids=code_ids)
    return outcome, keys, [SimpleNamespace(sku=sku) for sku in skus]


@given(case=outcomes())
def test_the_applied_record_is_the_json_of_the_documented_payload(case):
    # given an evaluation's outcome, its lines' keys and its lines
    outcome, keys, lines = case
    # when the record is formatted
    text = _applied_text(outcome, keys, SimpleNamespace(lines=lines))
    # then it is what json.dumps writes of the payload, and the field stores it as it is
    assert text == json.dumps(applied_payload(outcome, keys, lines), separators=(",", ":"))
    assert isinstance(text, JSONText)
    assert JSONTextField().get_prep_value(text) == str(text)
