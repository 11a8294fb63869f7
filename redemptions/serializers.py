"""The body of the redeem API's answer, built from what was recorded (so a replay renders the same),
and one record of the redemption list (also a row of the CSV exports)."""

from __future__ import annotations

from decimal import Decimal

from promotions_site.timefmt import to_epoch_ms, to_iso


def decimal_text(value: Decimal) -> str:
    """Capillary's decimal strings: six decimals (`"500.000000"`)."""
    return f"{Decimal(value):.6f}"


def redemption_data(*, org_id: int, redemption, lines) -> dict:
    """`data` of `POST /redemptions`, in the documented field order: the request echoed with `orgId`,
    the resolved `customerId` and `transactionDateISO`; the amount as a number (`1000.0`), discounts
    and quantities as six-decimal strings. `lineItems[].earnedPromotionId` is the instance redeemed
    (chosen by the service when the till did not name one)."""
    cart = [line for line in lines if line.level == "CART"]
    items = [line for line in lines if line.level == "LINEITEM"]
    return {
        "orgId": org_id,
        "customerIdentifierValue": redemption.customer_identifier_value or None,
        "customerIdentifierType": redemption.customer_identifier_type or None,
        "customerId": redemption.customer_id,
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


# The keys of one record of the redemption list (`GET /redemptions`, `data[]`), in their order: also
# the header of `export_redemptions`, which writes the same records as CSV.
REDEMPTION_RECORD_KEYS = (
    "id", "orgId", "promotionId", "promoCode", "earnedPromotionId", "customerId", "redemptionDate",
    "redemptionDateISO", "transactionIdentifier", "transactionNumber", "promotionName",
    "promotionMessageLabel", "transactionEntityIdentifier", "cartEvaluationId", "redemptionTill", "discount",
    "redemptionCount", "amount", "redemptionType", "discountAppliedQuantity", "promotionAppliedQuantity",
    "sku", "productId", "reversed",
)  # fmt: skip


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
        "customerId": redemption.customer_id,
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
