"""The bodies of the redemption APIs: the redeem answer, built from what was recorded (so a replay
renders the same), the reversal, and one record of the redemption list (also a row of the CSV exports).

Each body is declared once, as a `Shape` (`promotions_site/shapes.py`): the view renders it and the
schema documents it. A body built from several objects has a `<body>_body` function that hands them
over as one named tuple.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

from rest_framework import serializers

from promotions_site.shapes import Shape, always, envelope, itself, no_errors, or_none, via
from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import ANONYMOUS_CUSTOMER_ID, Redemption, RedemptionLine, RedemptionReversal

# The list's page size, which its query validates and its description states.
REDEMPTION_LIST_DEFAULT_LIMIT = 10
REDEMPTION_LIST_MAX_LIMIT = 100


def decimal_text(value: Decimal) -> str:
    """Capillary's decimal strings: six decimals (`"500.000000"`)."""
    return f"{Decimal(value):.6f}"


def api_customer_id(customer_id: int | None) -> int:
    """A redemption's customerId as the APIs answer it: -1 for an anonymous sale, as tills send it."""
    return ANONYMOUS_CUSTOMER_ID if customer_id is None else customer_id


def _decimal(path: str):
    return via(decimal_text, path)


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
            serializers.CharField(allow_null=True, help_text="Always null: no promo codes."),
            always(None),
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
