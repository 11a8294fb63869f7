"""The bodies of the redemption APIs: the redeem answer, built from what was recorded (so a replay
renders the same), the reversal, and one record of the redemption list (also a row of the CSV exports).

Each body is declared once, as a `Shape` (`promotions_site/shapes.py`): the view renders it and the
schema documents it. A body built from several objects has a `<body>_body` function that hands them
over as one named tuple.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, NamedTuple

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from promotions.serializers import _Strict as StrictSerializer
from promotions_site.shapes import Shape, Shaped, always, envelope, item, itself, no_errors, or_none, via
from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import ANONYMOUS_CUSTOMER_ID, Redemption, RedemptionLine, RedemptionReversal

# The list's page size, which its query validates and its description states.
REDEMPTION_LIST_DEFAULT_LIMIT = 10
REDEMPTION_LIST_MAX_LIMIT = 100


def decimal_text(value: Decimal) -> str:
    """Capillary's decimal strings: six decimals (`"500.000000"`). A Decimal is formatted as it is (an
    evaluation of 50 lines formats several hundred); anything else (an int, a float, a string) through
    Decimal, so a float gives its exact value's digits, not its repr's."""
    if type(value) is Decimal:
        return f"{value:.6f}"
    return f"{Decimal(value):.6f}"


def api_customer_id(customer_id: int | None) -> int:
    """A redemption's customerId as the APIs answer it: -1 for an anonymous sale, as tills send it."""
    return ANONYMOUS_CUSTOMER_ID if customer_id is None else customer_id


def _decimal(path: str):
    return via(decimal_text, path)


def always_empty_list(_source) -> list:
    return []


# --- POST /redemptions -----------------------------------------------------------------------------


class RecordedRedemption(NamedTuple):
    """What the redeem answer is rendered from: the redemption as recorded and its lines, for an org."""

    org_id: int
    redemption: Redemption
    lines: list[RedemptionLine]


def _lines_at(level: str):
    return lambda recorded: [line for line in recorded.lines if line.level == level]


def _line_counts(*, discount_example: str) -> dict:
    """What a redeemed line answers at either level: its count, discount and quantities (the discount's
    help text shows an example of its level)."""
    return {
        "redemptionCount": (serializers.IntegerField(), "redemption_count"),
        "discount": (
            serializers.CharField(help_text=f'A decimal string with 6 decimals ("{discount_example}").'),
            _decimal("discount"),
        ),
        "discountAppliedOnQuantity": (
            serializers.CharField(help_text="6 decimals."),
            _decimal("discount_applied_on_quantity"),
        ),
        "promotionAppliedOnQuantity": (
            serializers.CharField(help_text="6 decimals."),
            _decimal("promotion_applied_on_quantity"),
        ),
    }


REDEMPTION_CART_LINE = Shape(
    "RedeemedCartLine",
    {
        "promotionId": (serializers.CharField(), "promotion_id"),
        **_line_counts(discount_example="50.000000"),
    },
)
REDEMPTION_LINE_ITEM = Shape(
    "RedeemedLineItem",
    {
        "sku": (serializers.CharField(), "sku"),
        "promotionId": (serializers.CharField(), "promotion_id"),
        "earnedPromotionId": (
            serializers.CharField(
                allow_null=True,
                help_text="The instance redeemed (chosen by the service when none was named).",
            ),
            "earned_promotion_id",
        ),
        **_line_counts(discount_example="100.000000"),
    },
)
# `data` of `POST /redemptions`, from a RecordedRedemption: the request echoed with `orgId`, the resolved
# `customerId` and `transactionDateISO`; the amount as a number (`1000.0`), discounts and quantities as
# six-decimal strings.
REDEMPTION = Shape(
    "RedemptionData",
    {
        "orgId": (serializers.IntegerField(), "org_id"),
        "customerIdentifierValue": (
            serializers.CharField(allow_null=True),
            or_none("redemption.customer_identifier_value"),
        ),
        "customerIdentifierType": (
            serializers.CharField(allow_null=True),
            or_none("redemption.customer_identifier_type"),
        ),
        "customerId": (
            serializers.IntegerField(
                help_text="The customer the redemption was recorded for; -1 for an anonymous sale."
            ),
            via(api_customer_id, "redemption.customer_id"),
        ),
        "transactionIdentifier": (serializers.CharField(), "redemption.transaction_identifier"),
        "transactionNumber": (serializers.CharField(), "redemption.transaction_number"),
        "transactionDate": (
            serializers.IntegerField(help_text="Epoch ms."),
            via(to_epoch_ms, "redemption.transaction_date"),
        ),
        "transactionDateISO": (serializers.CharField(), via(to_iso, "redemption.transaction_date")),
        "amount": (serializers.FloatField(), via(float, "redemption.amount")),
        "redemptions": (REDEMPTION_CART_LINE.many(), _lines_at(RedemptionLine.Level.CART)),
        "lineItems": (REDEMPTION_LINE_ITEM.many(), _lines_at(RedemptionLine.Level.LINE_ITEM)),
    },
)
REDEMPTION_RESPONSE = envelope("RedemptionResponse", REDEMPTION)


def redemption_body(*, org_id: int, redemption: Redemption, lines: list[RedemptionLine]) -> dict:
    return REDEMPTION_RESPONSE.render(RecordedRedemption(org_id, redemption, lines))


# --- GET /redemptions ------------------------------------------------------------------------------

# One record of the redemption list (`data[]`), and one row of the CSV exports, from a line of
# `redemptions.selectors` (its redemption, api client and promotion joined, `is_reversed` annotated).
REDEMPTION_LIST_RECORD = Shape(
    "RedemptionListRecord",
    {
        "id": (serializers.CharField(help_text="The redemption line's id."), via(str, "pk")),
        "orgId": (serializers.IntegerField(), "redemption.org_id"),
        "promotionId": (serializers.CharField(), "promotion_id"),
        "promoCode": (
            serializers.CharField(
                allow_null=True,
                help_text="The promo code the line's CODE promotion was redeemed through; else null.",
            ),
            lambda line: line.promo_code.code if line.promo_code_id is not None else None,
        ),
        "earnedPromotionId": (serializers.CharField(allow_null=True), "earned_promotion_id"),
        "customerId": (
            serializers.IntegerField(help_text="-1 for an anonymous sale."),
            via(api_customer_id, "redemption.customer_id"),
        ),
        "redemptionDate": (
            serializers.IntegerField(help_text="The transaction date, epoch ms."),
            via(to_epoch_ms, "redemption.transaction_date"),
        ),
        "redemptionDateISO": (serializers.CharField(), via(to_iso, "redemption.transaction_date")),
        "transactionIdentifier": (serializers.CharField(), "redemption.transaction_identifier"),
        "transactionNumber": (serializers.CharField(), "redemption.transaction_number"),
        "promotionName": (serializers.CharField(), "promotion.name"),
        "promotionMessageLabel": (
            serializers.CharField(allow_null=True),
            or_none("promotion.message_label"),
        ),
        "transactionEntityIdentifier": (
            serializers.CharField(
                help_text="REGULAR_b_<redemption id> for cart-level lines, REGULAR_l_<line id> for line items."
            ),
            lambda line: (
                f"REGULAR_b_{line.redemption_id}" if line.level == "CART" else f"REGULAR_l_{line.pk}"
            ),
        ),
        "cartEvaluationId": (
            serializers.CharField(allow_null=True, help_text="Always null."),
            always(None),
        ),
        "redemptionTill": (
            serializers.CharField(
                allow_null=True, help_text="Username of the API client that recorded the redemption."
            ),
            lambda line: line.redemption.api_client.username if line.redemption.api_client else None,
        ),
        "discount": (
            serializers.CharField(help_text='A decimal string with 6 decimals ("500.000000").'),
            _decimal("discount"),
        ),
        "redemptionCount": (serializers.IntegerField(), "redemption_count"),
        "amount": (
            serializers.CharField(help_text="The transaction amount, 6 decimals."),
            _decimal("redemption.amount"),
        ),
        "redemptionType": (serializers.ChoiceField(choices=RedemptionLine.Level.values), "level"),
        "discountAppliedQuantity": (serializers.CharField(), _decimal("discount_applied_on_quantity")),
        "promotionAppliedQuantity": (serializers.CharField(), _decimal("promotion_applied_on_quantity")),
        "sku": (serializers.CharField(allow_null=True), or_none("sku")),
        "productId": (serializers.CharField(allow_null=True, help_text="Always null."), always(None)),
        "reversed": (
            serializers.BooleanField(help_text="The redemption has been reversed."),
            "is_reversed",
        ),
    },
)
# The keys of one record, in their order: also the header of the CSV exports, which write the same records.
REDEMPTION_RECORD_KEYS = REDEMPTION_LIST_RECORD.keys
# The columns of a redemption export (the admin's job, `export_redemptions`): the record's keys, in order.
EXPORT_COLUMNS = list(REDEMPTION_RECORD_KEYS)


class ListedPage(NamedTuple):
    """One page of the list (`redemption_line_list`'s answer) and the query that asked for it."""

    page: Any
    limit: int
    page_number: int


REDEMPTION_LIST_PAGINATION = Shape(
    "RedemptionListPagination",
    {
        "limit": (serializers.IntegerField(), "limit"),
        "pageNumber": (serializers.IntegerField(), "page_number"),
        "total": (
            serializers.IntegerField(help_text="Records matching the filters, on all pages."),
            "page.total",
        ),
    },
)
REDEMPTION_LIST_RESPONSE = Shape(
    "RedemptionListResponse",
    {
        "data": (REDEMPTION_LIST_RECORD.many(), "page.lines"),
        "errors": (serializers.ListField(), no_errors),
        "pagination": (REDEMPTION_LIST_PAGINATION, itself),
    },
)


def redemption_list_body(*, page, limit: int, page_number: int) -> dict:
    """`GET /redemptions`: one page of records (`page` from `redemption_line_list`)."""
    return REDEMPTION_LIST_RESPONSE.render(ListedPage(page, limit, page_number))


# --- POST /redemptions/reverse ---------------------------------------------------------------------


class ReversedRedemption(NamedTuple):
    """What the reversal answer is rendered from: the reversal and the redemption it reverses."""

    reversal: RedemptionReversal
    recorded: RecordedRedemption


REDEMPTION_REVERSAL = Shape(
    "RedemptionReversal",
    {
        "transactionIdentifier": (serializers.CharField(), "recorded.redemption.transaction_identifier"),
        "reversed": (serializers.BooleanField(), always(True)),
        "reversalDate": (serializers.IntegerField(), via(to_epoch_ms, "reversal.created_at")),
        "reversalDateISO": (serializers.CharField(), via(to_iso, "reversal.created_at")),
        "reason": (serializers.CharField(), "reversal.reason"),
        "redemption": (REDEMPTION.field(help_text="The reversed redemption, as recorded."), "recorded"),
    },
)
REDEMPTION_REVERSE_RESPONSE = envelope("RedemptionReverseResponse", REDEMPTION_REVERSAL)


def redemption_reversal_body(
    *, org_id: int, redemption: Redemption, reversal: RedemptionReversal, lines
) -> dict:
    recorded = RecordedRedemption(org_id, redemption, lines)
    return REDEMPTION_REVERSE_RESPONSE.render(ReversedRedemption(reversal, recorded))


# --- POST /evaluate: the cart (also the reported cart of a redemption under the capped strategy) ----

EVALUATE_LINES_MAX = 500
EVALUATE_LIST_MAX = 50  # categories, brands, attributes per line; tenders, codes and vouchers per cart
DECIMAL_TEXT = r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"


@extend_schema_field(
    {
        "oneOf": [
            {"type": "number", "minimum": 0, "maximum": 10**12, "exclusiveMaximum": True},
            {"type": "string", "pattern": DECIMAL_TEXT},
        ],
        "description": 'A JSON number or a decimal string ("2000.00"); at most 6 decimals.',
    }
)
class EvaluationDecimalField(serializers.DecimalField):
    """Money and quantities of the evaluate body: Capillary sends decimal strings ("2000.00"), many
    clients numbers; both are taken, up to 6 decimals."""

    json_type = ("number or decimal string", (int, float, str))
    default_error_messages = {"invalid_type": 'Must be a JSON number or a decimal string ("2000.00").'}

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", Decimal(0))
        super().__init__(max_digits=18, decimal_places=6, coerce_to_string=False, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid_type")
        if isinstance(data, str) and not re.fullmatch(DECIMAL_TEXT, data):
            self.fail("invalid_type")
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": -1, "maximum": 2**63 - 1},
            {"type": "string", "pattern": "^(-1|[0-9]{1,18})$"},
        ],
        "description": "The customer's id (a number, or its digits as a string); -1 or null: not identified.",
    }
)
class EvaluationCustomerIdField(serializers.Field):
    json_type = ("integer or string", (int, str))
    default_error_messages = {"invalid": "Must be a customer id: a positive integer, or -1."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        text = str(data)
        if not re.fullmatch(r"-1|[0-9]{1,18}", text):
            self.fail("invalid")
        value = int(text)
        return None if value == ANONYMOUS_CUSTOMER_ID else value

    def to_representation(self, value):
        return value


class AttributesField(serializers.DictField):
    """`{name: value}` with string values (DRF's CharField would also take a number)."""

    def to_internal_value(self, data):
        if isinstance(data, dict) and any(not isinstance(value, str) for value in data.values()):
            raise serializers.ValidationError("Each attribute value must be a JSON string.")
        return super().to_internal_value(data)


class EvaluationCartItemSerializer(StrictSerializer):
    sku = serializers.CharField(max_length=100)
    amount = EvaluationDecimalField(help_text="The line's value: all its units together.")
    qty = EvaluationDecimalField(min_value=Decimal("0.000001"))
    discount = EvaluationDecimalField(
        required=False,
        allow_null=True,
        help_text="The till's own markdown on the line; the engine works on amount - discount.",
    )
    categoryList = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        allow_null=True,
        max_length=EVALUATE_LIST_MAX,
    )
    brandList = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        allow_null=True,
        max_length=EVALUATE_LIST_MAX,
    )
    attributes = AttributesField(
        child=serializers.CharField(max_length=250, allow_blank=True),
        required=False,
        allow_null=True,
        help_text="Attribute name to value, matched by ATTRIBUTE (and PRODUCT_ID, STYLE, COLOR, SIZE) criteria.",
    )

    def validate_attributes(self, value):
        if value and len(value) > EVALUATE_LIST_MAX:
            raise serializers.ValidationError(f"At most {EVALUATE_LIST_MAX} attributes.")
        if value and any(len(name) > 100 or not name for name in value):
            raise serializers.ValidationError("An attribute name has 1 to 100 characters.")
        return value

    def validate(self, attrs):
        if (attrs.get("discount") or 0) > attrs["amount"]:
            raise serializers.ValidationError({"discount": "Cannot exceed the line's amount."})
        return attrs


class EvaluationTenderSerializer(StrictSerializer):
    identifier = serializers.CharField(max_length=100)
    amount = EvaluationDecimalField(required=False, allow_null=True)


# The evaluate body validated without DRF, for the common well-formed body: DRF's nested serializers
# take about 7 ms for a cart of 50 lines, half the rest of the request. `evaluation_request_fast`
# accepts only plainly valid values (ASCII text without surrounding blanks, decimal strings or
# integers, the documented keys and sizes) and answers exactly what the serializer's validated_data
# would be; anything else (every error included) returns None and goes through the serializer, which
# answers it. tests/redemptions/test_evaluation_fast_path.py holds the two to the same answers.
_PLAIN_DECIMAL = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
_SIX_PLACES = Decimal("0.000001")
_CUSTOMER_ID = re.compile(r"-1|[0-9]{1,18}")
_ITEM_KEYS = frozenset(("sku", "amount", "qty", "discount", "categoryList", "brandList", "attributes"))
_CART_KEYS = frozenset(
    (
        "amount",
        "customerId",
        "cartItems",
        "promoCodes",
        "paymentVouchers",
        "cartTenders",
        "categoryHierarchySentInPayload",
    )
)


class _NotPlain(Exception):
    pass


def _plain_text(value, max_length: int, *, blank: bool = False) -> str:
    if (
        type(value) is not str
        or len(value) > max_length
        or (not value and not blank)
        or not value.isascii()
        or not value.isprintable()
        or value != value.strip()
    ):
        raise _NotPlain
    return value


# The decimal texts read lately and their values: a cart's quantities and prices repeat, within a cart
# and from one cart to the next. A Decimal is immutable, and a plain text of at most 12 + 6 digits
# quantizes exactly whatever the decimal context, so a value is the same whenever it is read.
_DECIMALS_READ: dict[str, Decimal] = {}
_DECIMALS_READ_MAX = 4096


def _plain_decimal(value) -> Decimal:
    if type(value) is str:
        found = _DECIMALS_READ.get(value)
        if found is not None:
            return found
        if _PLAIN_DECIMAL.fullmatch(value):
            if len(_DECIMALS_READ) >= _DECIMALS_READ_MAX:
                _DECIMALS_READ.clear()
            found = _DECIMALS_READ[value] = Decimal(value).quantize(_SIX_PLACES)
            return found
        raise _NotPlain
    if type(value) is int and 0 <= value < 10**12:
        return Decimal(value).quantize(_SIX_PLACES)
    raise _NotPlain


def _plain_texts(value, max_length: int) -> list[str]:
    if type(value) is not list or len(value) > EVALUATE_LIST_MAX:
        raise _NotPlain
    for text in value:
        _plain_text(text, max_length)
    return value[:]


def _plain_item(item) -> dict:
    if type(item) is not dict or not item.keys() <= _ITEM_KEYS:
        raise _NotPlain
    line = {"sku": _plain_text(item["sku"], 100), "amount": _plain_decimal(item["amount"])}
    line["qty"] = _plain_decimal(item["qty"])
    if line["qty"] < _SIX_PLACES:
        raise _NotPlain
    if "discount" in item:
        line["discount"] = None if item["discount"] is None else _plain_decimal(item["discount"])
        if line["discount"] is not None and line["discount"] > line["amount"]:
            raise _NotPlain
    for key in ("categoryList", "brandList"):
        if key in item:
            line[key] = None if item[key] is None else _plain_texts(item[key], 100)
    if "attributes" in item:
        attributes = item["attributes"]
        if attributes is not None:
            if type(attributes) is not dict or len(attributes) > EVALUATE_LIST_MAX:
                raise _NotPlain
            attributes = {
                _plain_text(name, 100): _plain_text(value, 250, blank=True)
                for name, value in attributes.items()
            }
        line["attributes"] = attributes
    return line


def evaluation_request_fast(data) -> dict | None:
    """The evaluate body's validated data when it is plainly valid, else None (see above)."""
    try:
        if type(data) is not dict or not data.keys() <= _CART_KEYS:
            raise _NotPlain
        items = data["cartItems"]
        if type(items) is not list or not 1 <= len(items) <= EVALUATE_LINES_MAX:
            raise _NotPlain
        validated = {
            "amount": _plain_decimal(data["amount"]),
            "cartItems": [_plain_item(item) for item in items],
        }
        if "customerId" in data:
            customer_id = data["customerId"]
            if customer_id is not None:
                if type(customer_id) not in (int, str) or not _CUSTOMER_ID.fullmatch(str(customer_id)):
                    raise _NotPlain
                customer_id = None if int(customer_id) == ANONYMOUS_CUSTOMER_ID else int(customer_id)
            validated["customerId"] = customer_id
        for key in ("promoCodes", "paymentVouchers"):
            if key in data:
                validated[key] = None if data[key] is None else _plain_texts(data[key], 50)
        if "cartTenders" in data:
            tenders = data["cartTenders"]
            if tenders is not None:
                if type(tenders) is not list or len(tenders) > EVALUATE_LIST_MAX:
                    raise _NotPlain
                tenders = [_plain_tender(tender) for tender in tenders]
            validated["cartTenders"] = tenders
        if "categoryHierarchySentInPayload" in data:
            flag = data["categoryHierarchySentInPayload"]
            if flag is not None and type(flag) is not bool:
                raise _NotPlain
            validated["categoryHierarchySentInPayload"] = flag
    except (_NotPlain, KeyError):
        return None
    return validated


def _plain_tender(tender) -> dict:
    if type(tender) is not dict or not tender.keys() <= {"identifier", "amount"}:
        raise _NotPlain
    plain = {"identifier": _plain_text(tender["identifier"], 100)}
    if "amount" in tender:
        plain["amount"] = None if tender["amount"] is None else _plain_decimal(tender["amount"])
    return plain


# --- POST /evaluate --------------------------------------------------------------------------------
# From an `EvaluationOutcome` (redemptions/evaluation.py). Money and quantities are six-decimal strings
# everywhere (Capillary's example mixes "0", "500.00" and "2000.000000"; one format here), counts and
# the customer id are numbers.


def _text(help_text: str = "A decimal string with 6 decimals.") -> serializers.CharField:
    return serializers.CharField(help_text=help_text)


EVALUATED_LINE_PROMOTION = Shape(
    "EvaluatedLinePromotion",
    {
        "promotionId": (serializers.CharField(), "promotion_id"),
        "name": (serializers.CharField(), "name"),
        "messageLabel": (serializers.CharField(allow_blank=True), "message_label"),
        "promotionMode": (serializers.ChoiceField(choices=["DISCOUNT", "PAYMENT_VOUCHER"]), "mode"),
        "redemptionCount": (
            serializers.IntegerField(help_text="The promotion's applications in this cart."),
            "redemption_count",
        ),
        "discount": (_text("This promotion's discount on this line, 6 decimals."), _decimal("discount")),
        "discountAppliedOnQuantity": (_text("Units of this line discounted."), _decimal("discount_qty")),
        "promotionAppliedOnQuantity": (
            _text("Units of this line the promotion used, as trigger or target."),
            _decimal("promotion_qty"),
        ),
        "earnedPromotionId": (
            serializers.CharField(
                required=False,
                help_text="The wallet instance it applies through (CUSTOMER, EARNING, REWARD).",
            ),
            "earned_promotion_id",
        ),
        "identifier": (
            serializers.CharField(
                help_text="Base64 of JSON {promotionId, discount, amount (the line's), redemptionCount, "
                "discountAppliedQty, promotionAppliedQty, sku, version: v1}."
            ),
            "identifier",
        ),
    },
)
EVALUATED_LINE = Shape(
    "EvaluatedCartItem",
    {
        "referenceId": (
            serializers.CharField(help_text="A UUID naming this line in this evaluation."),
            "reference_id",
        ),
        "sku": (serializers.CharField(), "sku"),
        "amount": (_text("The line's amount as sent, 6 decimals."), _decimal("amount")),
        "qty": (_text(), _decimal("qty")),
        "discount": (
            _text("The till's own discount on the line as sent (0 when none), 6 decimals."),
            _decimal("discount"),
        ),
        "appliedPromotions": (
            EVALUATED_LINE_PROMOTION.many(help_text="Line-level promotions only."),
            "promotions",
        ),
    },
)
EVALUATED_PROMOTION = Shape(
    "EvaluatedPromotion",
    {
        "promotionId": (serializers.CharField(), "promotion_id"),
        "name": (serializers.CharField(), "name"),
        "messageLabel": (serializers.CharField(allow_blank=True), "message_label"),
        "promotionMode": (serializers.ChoiceField(choices=["DISCOUNT", "PAYMENT_VOUCHER"]), "mode"),
        "redemptionCount": (serializers.IntegerField(), "redemption_count"),
        "discount": (_text("The promotion's whole discount in this cart, 6 decimals."), _decimal("discount")),
        "promoCode": (
            serializers.CharField(
                required=False,
                help_text="The promo code a CODE promotion applied through (sent in promoCodes or linked to "
                "the customer), upper-case; absent for other promotions.",
            ),
            "promo_code",
        ),
        "identifier": (
            serializers.CharField(
                help_text="Base64 of JSON {promotionId, discount, amount (the cart's), redemptionCount, "
                "version: v1}: pass it back when redeeming."
            ),
            "identifier",
        ),
    },
)
EVALUATED_TENDER = Shape(
    "EvaluatedCartTender",
    {
        "identifier": (serializers.CharField(), "identifier"),
        "amount": (_text(), _decimal("amount")),
        "referenceId": (serializers.CharField(), "reference_id"),
        "adjustedAmount": (
            _text("The amount less the tender promotions' discounts on this tender, 6 decimals."),
            _decimal("adjusted_amount"),
        ),
    },
)
EVALUATION_CODE_LOG = Shape(
    "EvaluationCodeLog",
    {
        "promoCode": (serializers.CharField(), "promo_code"),
        "codeType": (serializers.ChoiceField(choices=["DISCOUNT", "PAYMENT_VOUCHER"]), "code_type"),
        "message": (serializers.CharField(), "message"),
        "errorCode": (serializers.IntegerField(), "error_code"),
    },
)
EVALUATION = Shape(
    "EvaluationData",
    {
        "amount": (_text("The cart amount as sent, 6 decimals."), _decimal("amount")),
        "customerId": (
            serializers.IntegerField(help_text="-1 when the customer is not identified."),
            "customer_id",
        ),
        "cartItems": (EVALUATED_LINE.many(), "lines"),
        "evaluationId": (serializers.CharField(help_text="24 hex digits."), "evaluation.id"),
        "appliedPromotions": (EVALUATED_PROMOTION.many(), "applied"),
        "appliedPaymentVouchers": (
            serializers.ListField(help_text="Always empty: payment vouchers are not enabled."),
            always_empty_list,
        ),
        "promoCodeEvaluationLogs": (EVALUATION_CODE_LOG.many(), "promo_code_logs"),
        "paymentVoucherEvaluationLogs": (EVALUATION_CODE_LOG.many(), "payment_voucher_logs"),
        "cartTenders": (EVALUATED_TENDER.many(), "tenders"),
        "categoryHierarchySentInPayload": (serializers.BooleanField(), "category_hierarchy_sent"),
    },
)
EVALUATION_RESPONSE = envelope("EvaluationResponse", EVALUATION)


def evaluation_body(outcome) -> Shaped:
    # 50 lines' answer: its JSON text written directly, not built as dicts and walked again.
    return Shaped(EVALUATION_RESPONSE, outcome)


# --- Pending carts and cancel (cart locks) ---------------------------------------------------------

PENDING_CART_PROMOTION = Shape(
    "PendingCartPromotion",
    {
        "promotionId": (serializers.CharField(), item("promotionId")),
        "promoCode": (
            serializers.CharField(
                required=False,
                help_text="The promo code a CODE promotion applied through (absent for others).",
            ),
            lambda entry: entry.get("promoCode"),
        ),
        "earnedPromotionId": (
            serializers.CharField(allow_null=True, help_text="The wallet instance the cart holds, if any."),
            lambda entry: entry.get("earnedPromotionId"),
        ),
        "promotionName": (serializers.CharField(), item("name")),
        "redemptionCount": (serializers.IntegerField(), item("redemptionCount")),
        "discount": (serializers.CharField(), item("discount")),
    },
)
PENDING_CART = Shape(
    "PendingCart",
    {
        "cartEvaluationId": (serializers.CharField(), "evaluation_id"),
        "startTime": (serializers.IntegerField(help_text="Epoch ms."), via(to_epoch_ms, "start")),
        "validTillTime": (
            serializers.IntegerField(help_text="Epoch ms: the cart's reservation ends then."),
            via(to_epoch_ms, "valid_till"),
        ),
        "appliedPromotions": (PENDING_CART_PROMOTION.many(), "applied"),
    },
)
PENDING_CARTS_RESPONSE = envelope(
    "PendingCartsResponse",
    Shape("PendingCarts", {"tempRedemptionDetails": (PENDING_CART.many(), itself)}),
)


def pending_carts_body(carts) -> dict:
    return PENDING_CARTS_RESPONSE.render(carts)


CART_CANCEL_RESPONSE = envelope(
    "CartCancelResponse",
    Shape(
        "CartCancelled",
        {
            "status": (serializers.BooleanField(), always(True)),
            "code": (serializers.IntegerField(), always(201)),
            "message": (serializers.CharField(), always("Successfully closed pending cart.")),
        },
    ),
)


def cart_cancel_body(lock) -> dict:
    return CART_CANCEL_RESPONSE.render(lock)
