"""The bodies of the redemption APIs: the redeem answer, built from what was recorded (so a replay
renders the same), the reversal, and one record of the redemption list (also a row of the CSV exports).

Where a body is documented by a serializer, the serializer stands right above the function that renders
it: the function builds plain dicts (the hot path never runs a serializer's `.data`), and
`tests/promotions_site/test_response_shapes.py` checks every rendered body against the schema.
"""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import ANONYMOUS_CUSTOMER_ID, RedemptionLine

# The list's page size, which its query validates and its description states.
REDEMPTION_LIST_DEFAULT_LIMIT = 10
REDEMPTION_LIST_MAX_LIMIT = 100


def decimal_text(value: Decimal) -> str:
    """Capillary's decimal strings: six decimals (`"500.000000"`)."""
    return f"{Decimal(value):.6f}"


def api_customer_id(customer_id: int | None) -> int:
    """A redemption's customerId as the APIs answer it: -1 for an anonymous sale, as tills send it."""
    return ANONYMOUS_CUSTOMER_ID if customer_id is None else customer_id


# `data` of `POST /redemptions`, as `redemption_data` renders it (a docstring would land in the schema).
class RedeemedCartLineSerializer(serializers.Serializer):
    promotionId = serializers.CharField()
    redemptionCount = serializers.IntegerField()
    discount = serializers.CharField(help_text='A decimal string with 6 decimals ("50.000000").')
    discountAppliedOnQuantity = serializers.CharField(help_text="6 decimals.")
    promotionAppliedOnQuantity = serializers.CharField(help_text="6 decimals.")


class RedeemedLineItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    promotionId = serializers.CharField()
    earnedPromotionId = serializers.CharField(
        allow_null=True, help_text="The instance redeemed (chosen by the service when none was named)."
    )
    redemptionCount = serializers.IntegerField()
    discount = serializers.CharField(help_text='A decimal string with 6 decimals ("100.000000").')
    discountAppliedOnQuantity = serializers.CharField(help_text="6 decimals.")
    promotionAppliedOnQuantity = serializers.CharField(help_text="6 decimals.")


class RedemptionDataSerializer(serializers.Serializer):
    orgId = serializers.IntegerField()
    customerIdentifierValue = serializers.CharField(allow_null=True)
    customerIdentifierType = serializers.CharField(allow_null=True)
    customerId = serializers.IntegerField(
        help_text="The customer the redemption was recorded for; -1 for an anonymous sale."
    )
    transactionIdentifier = serializers.CharField()
    transactionNumber = serializers.CharField()
    transactionDate = serializers.IntegerField(help_text="Epoch ms.")
    transactionDateISO = serializers.CharField()
    amount = serializers.FloatField()
    redemptions = RedeemedCartLineSerializer(many=True)
    lineItems = RedeemedLineItemSerializer(many=True)


def redemption_data(*, org_id: int, redemption, lines) -> dict:
    """`data` of `POST /redemptions`, in the documented field order: the request echoed with `orgId`,
    the resolved `customerId` (-1 for an anonymous sale) and `transactionDateISO`; the amount as a
    number (`1000.0`), discounts and quantities as six-decimal strings. `lineItems[].earnedPromotionId` is the instance redeemed
    (chosen by the service when the till did not name one)."""
    cart = [line for line in lines if line.level == "CART"]
    items = [line for line in lines if line.level == "LINEITEM"]
    return {
        "orgId": org_id,
        "customerIdentifierValue": redemption.customer_identifier_value or None,
        "customerIdentifierType": redemption.customer_identifier_type or None,
        "customerId": api_customer_id(redemption.customer_id),
        "transactionIdentifier": redemption.transaction_identifier,
        "transactionNumber": redemption.transaction_number,
        "transactionDate": to_epoch_ms(redemption.transaction_date),
        "transactionDateISO": to_iso(redemption.transaction_date),
        "amount": float(redemption.amount),
        "redemptions": [
            {
                "promotionId": line.promotion_id,
                "redemptionCount": line.redemption_count,
                "discount": decimal_text(line.discount),
                "discountAppliedOnQuantity": decimal_text(line.discount_applied_on_quantity),
                "promotionAppliedOnQuantity": decimal_text(line.promotion_applied_on_quantity),
            }
            for line in cart
        ],
        "lineItems": [
            {
                "sku": line.sku,
                "promotionId": line.promotion_id,
                "earnedPromotionId": line.earned_promotion_id,
                "redemptionCount": line.redemption_count,
                "discount": decimal_text(line.discount),
                "discountAppliedOnQuantity": decimal_text(line.discount_applied_on_quantity),
                "promotionAppliedOnQuantity": decimal_text(line.promotion_applied_on_quantity),
            }
            for line in items
        ],
    }


# One record of the redemption list (`GET /redemptions`, `data[]`), as `redemption_line_record` renders it
# (a docstring would land in the schema).
class RedemptionListRecordSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The redemption line's id.")
    orgId = serializers.IntegerField()
    promotionId = serializers.CharField()
    promoCode = serializers.CharField(allow_null=True, help_text="Always null: no promo codes.")
    earnedPromotionId = serializers.CharField(allow_null=True)
    customerId = serializers.IntegerField(help_text="-1 for an anonymous sale.")
    redemptionDate = serializers.IntegerField(help_text="The transaction date, epoch ms.")
    redemptionDateISO = serializers.CharField()
    transactionIdentifier = serializers.CharField()
    transactionNumber = serializers.CharField()
    promotionName = serializers.CharField()
    promotionMessageLabel = serializers.CharField(allow_null=True)
    transactionEntityIdentifier = serializers.CharField(
        help_text="REGULAR_b_<redemption id> for cart-level lines, REGULAR_l_<line id> for line items."
    )
    cartEvaluationId = serializers.CharField(allow_null=True, help_text="Always null.")
    redemptionTill = serializers.CharField(
        allow_null=True, help_text="Username of the API client that recorded the redemption."
    )
    discount = serializers.CharField(help_text='A decimal string with 6 decimals ("500.000000").')
    redemptionCount = serializers.IntegerField()
    amount = serializers.CharField(help_text="The transaction amount, 6 decimals.")
    redemptionType = serializers.ChoiceField(choices=RedemptionLine.Level.values)
    discountAppliedQuantity = serializers.CharField()
    promotionAppliedQuantity = serializers.CharField()
    sku = serializers.CharField(allow_null=True)
    productId = serializers.CharField(allow_null=True, help_text="Always null.")
    reversed = serializers.BooleanField(help_text="The redemption has been reversed.")


# The keys of one record, in their order: also the header of the CSV exports, which write the same records.
REDEMPTION_RECORD_KEYS = tuple(RedemptionListRecordSerializer().fields)


def redemption_line_record(line) -> dict:
    """One redemption line as the list returns it (`data[]`), and as the export command and the admin's
    CSV export write it (one row).

    `line` comes from `redemptions.selectors` (its redemption, api client and promotion joined, and
    `is_reversed` annotated).
    """
    redemption, promotion = line.redemption, line.promotion
    cart_level = line.level == "CART"
    return {
        "id": str(line.pk),
        "orgId": redemption.org_id,
        "promotionId": line.promotion_id,
        "promoCode": None,
        "earnedPromotionId": line.earned_promotion_id,
        "customerId": api_customer_id(redemption.customer_id),
        "redemptionDate": to_epoch_ms(redemption.transaction_date),
        "redemptionDateISO": to_iso(redemption.transaction_date),
        "transactionIdentifier": redemption.transaction_identifier,
        "transactionNumber": redemption.transaction_number,
        "promotionName": promotion.name,
        "promotionMessageLabel": promotion.message_label or None,
        "transactionEntityIdentifier": f"REGULAR_b_{redemption.pk}" if cart_level else f"REGULAR_l_{line.pk}",
        "cartEvaluationId": None,
        "redemptionTill": redemption.api_client.username if redemption.api_client else None,
        "discount": decimal_text(line.discount),
        "redemptionCount": line.redemption_count,
        "amount": decimal_text(redemption.amount),
        "redemptionType": line.level,
        "discountAppliedQuantity": decimal_text(line.discount_applied_on_quantity),
        "promotionAppliedQuantity": decimal_text(line.promotion_applied_on_quantity),
        "sku": line.sku or None,
        "productId": None,
        "reversed": line.is_reversed,
    }


class RedemptionListPaginationSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    pageNumber = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Records matching the filters, on all pages.")


# The list's body, as `redemption_list_body` renders it.
class RedemptionListResponseSerializer(serializers.Serializer):
    data = RedemptionListRecordSerializer(many=True)
    errors = serializers.ListField()
    pagination = RedemptionListPaginationSerializer()


def redemption_list_body(*, page, limit: int, page_number: int) -> dict:
    """`GET /redemptions`: one page of records (`page` from `redemption_line_list`)."""
    return {
        "data": [redemption_line_record(line) for line in page.lines],
        "errors": [],
        "pagination": {"limit": limit, "pageNumber": page_number, "total": page.total},
    }


# `data` of `POST /redemptions/reverse`, as `redemption_reversal_data` renders it.
class RedemptionReversalSerializer(serializers.Serializer):
    transactionIdentifier = serializers.CharField()
    reversed = serializers.BooleanField()
    reversalDate = serializers.IntegerField()
    reversalDateISO = serializers.CharField()
    reason = serializers.CharField()
    redemption = RedemptionDataSerializer(help_text="The reversed redemption, as recorded.")


def redemption_reversal_data(*, org_id: int, redemption, reversal, lines) -> dict:
    """A reversal and the redemption it reverses (rendered as `redemption_data`)."""
    return {
        "transactionIdentifier": redemption.transaction_identifier,
        "reversed": True,
        "reversalDate": to_epoch_ms(reversal.created_at),
        "reversalDateISO": to_iso(reversal.created_at),
        "reason": reversal.reason,
        "redemption": redemption_data(org_id=org_id, redemption=redemption, lines=lines),
    }
