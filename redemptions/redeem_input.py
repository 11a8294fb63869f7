"""The redeem body (`POST /redemptions`) validated without DRF, for the common well-formed body.

DRF's nested serializers (a deep copy of every field per line, a validation per field) are a large part
of a redemption's CPU. `redemption_request_fast` accepts only plainly valid values and answers exactly
what `RedemptionCreateApi.InputSerializer`'s validated_data would be, `transaction_date` and `lines`
included; anything else (every error, and every check of the serializer's `validate` that would fail)
returns None and goes through the serializer, which answers it. Like the serializer, it ignores keys it
does not know. The evaluate body has the same pair (`evaluation_request_fast`);
tests/redemptions/test_redemption_fast_path.py holds this one to the serializer's answers.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from django.utils import timezone

from promotions_site.timefmt import from_epoch_ms
from redemptions.serializers import (
    EVALUATE_LINES_MAX,
    _NotPlain,
    _plain_decimal,
    _plain_item,
    _plain_text,
)
from redemptions.services import LineInput
from wallets.identifiers import IDENTIFIER_NAMES

LINES_MAX = 500  # lineItems and redemptions each, as the serializer's max_length
REDEMPTION_COUNT_MAX = 1_000_000
EPOCH_MS_END = 253402300800000  # year 10000, the EpochMillisField's bound
FUTURE_LIMIT = dt.timedelta(hours=24)
_SIX_PLACES = Decimal("0.000001")
_EPOCH_MS_TEXT = re.compile(r"[0-9]{1,15}")
# The ISO form clients send (`2025-12-16T14:30:45+05:30`, `...45.123Z`); other forms DRF parses take the
# serializer.
_ISO = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_IDENTIFIER_NAMES = frozenset(IDENTIFIER_NAMES)


def redemption_request_fast(data) -> dict | None:
    """The redeem body's validated data when it is plainly valid, else None (see above)."""
    try:
        return _validated(data)
    except (_NotPlain, KeyError):
        return None


# A redemption bound to its evaluation (REDEMPTION_WITH_CART_EVALUATION) goes through the serializer.
_BOUND_KEYS = ("promotionEvaluationId", "appliedPromotionIdentifiers")


def _validated(data) -> dict:
    if type(data) is not dict or any(key in data for key in _BOUND_KEYS):
        raise _NotPlain
    validated = {}
    if "customerId" in data:
        validated["customerId"] = _plain_char(data["customerId"], 20, null=True, blank=True)
    if "customerIdentifierType" in data:
        kind = data["customerIdentifierType"]
        if kind is not None and kind != "" and (type(kind) is not str or kind not in _IDENTIFIER_NAMES):
            raise _NotPlain
        validated["customerIdentifierType"] = kind
    if "customerIdentifierValue" in data:
        validated["customerIdentifierValue"] = _plain_char(
            data["customerIdentifierValue"], 254, null=True, blank=True
        )
    validated["transactionIdentifier"] = _plain_char(data["transactionIdentifier"], 250)
    validated["transactionNumber"] = _plain_char(data["transactionNumber"], 250)
    if "transactionDate" in data:
        validated["transactionDate"] = _epoch_ms(data["transactionDate"])
    if "transactionDateISO" in data:
        validated["transactionDateISO"] = _iso_datetime(data["transactionDateISO"])
    validated["amount"] = amount = _plain_decimal(data["amount"])
    lines = []
    for key, level in (("lineItems", "LINEITEM"), ("redemptions", "CART")):
        if key in data:
            entries = data[key]
            if entries is not None:
                if type(entries) is not list or len(entries) > LINES_MAX:
                    raise _NotPlain
                entries = [
                    _plain_entry(entry, level, position, lines) for position, entry in enumerate(entries)
                ]
            validated[key] = entries
    if "cartItems" in data:
        items = data["cartItems"]
        if items is not None:
            if type(items) is not list or len(items) > EVALUATE_LINES_MAX:
                raise _NotPlain
            items = [_plain_item(item) for item in items]
        validated["cartItems"] = items

    # The serializer's validate(): each failing check is its to answer.
    if not validated.get("customerId") and not (
        validated.get("customerIdentifierType") and validated.get("customerIdentifierValue")
    ):
        raise _NotPlain
    if not lines:  # neither lineItems nor redemptions has an entry
        raise _NotPlain
    when = validated.get("transactionDateISO") or validated.get("transactionDate")
    if when is None or when > timezone.now() + FUTURE_LIMIT:
        raise _NotPlain
    if sum(line.discount for line in lines) > amount:
        raise _NotPlain
    validated["transaction_date"] = when
    validated["lines"] = lines
    return validated


def _plain_char(value, max_length: int, *, null: bool = False, blank: bool = False) -> str | None:
    """A CharField's value: plain text, or an integer (DRF's CharField takes one as its digits)."""
    if type(value) is int and -(10**18) < value < 10**18:
        text = str(value)
        if len(text) > max_length:
            raise _NotPlain
        return text
    if value is None and null:
        return None
    return _plain_text(value, max_length, blank=blank)


def _plain_entry(entry, level: str, position: int, lines: list[LineInput]) -> dict:
    """One lineItems[] or redemptions[] entry as the nested serializer validates it; its LineInput is
    appended to `lines`, in the order the serializer's `_lines` builds them."""
    if type(entry) is not dict:
        raise _NotPlain
    count = entry["redemptionCount"]
    if type(count) is not int or not 1 <= count <= REDEMPTION_COUNT_MAX:
        raise _NotPlain
    plain = {
        "sku": _plain_char(entry["sku"], 100, blank=True) if "sku" in entry else "",
        "promotionId": _plain_char(entry["promotionId"], 24),
        "redemptionCount": count,
        "discount": _plain_decimal(entry["discount"]),
        "discountAppliedOnQuantity": _plain_decimal(entry["discountAppliedOnQuantity"]),
        "promotionAppliedOnQuantity": _plain_decimal(entry["promotionAppliedOnQuantity"]),
    }
    applied, promoted = plain["discountAppliedOnQuantity"], plain["promotionAppliedOnQuantity"]
    if applied < _SIX_PLACES or promoted < _SIX_PLACES or applied > promoted:
        raise _NotPlain
    earned = None
    if level == "LINEITEM" and "earnedPromotionId" in entry:
        plain["earnedPromotionId"] = earned = _plain_char(
            entry["earnedPromotionId"], 24, null=True, blank=True
        )
    code = None
    if "promoCode" in entry:
        plain["promoCode"] = code = _plain_char(entry["promoCode"], 50, null=True, blank=True)
    lines.append(
        LineInput(
            level=level,
            position=position,
            promotion_id=plain["promotionId"],
            sku=plain["sku"],
            earned_promotion_id=earned or None,
            promo_code=code or None,
            redemption_count=count,
            discount=plain["discount"],
            discount_applied_on_quantity=applied,
            promotion_applied_on_quantity=promoted,
        )
    )
    return plain


def _epoch_ms(value) -> dt.datetime:
    if type(value) is str and _EPOCH_MS_TEXT.fullmatch(value):
        value = int(value)
    if type(value) is not int or not 0 <= value < EPOCH_MS_END:
        raise _NotPlain
    return from_epoch_ms(value)


def _iso_datetime(value) -> dt.datetime:
    """What IsoDateTimeField answers (DRF's DateTimeField: Django's parse_datetime, then the current
    time zone) for the one ISO form matched here."""
    if type(value) is not str or not _ISO.fullmatch(value):
        raise _NotPlain
    try:
        return dt.datetime.fromisoformat(value).astimezone(timezone.get_current_timezone())
    except (ValueError, OverflowError):
        raise _NotPlain from None
