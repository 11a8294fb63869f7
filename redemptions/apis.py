"""Redemption endpoints: listing recorded redemptions."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.models import PromotionMode
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode
from promotions_site.schema import error_responses
from promotions_site.timefmt import to_epoch_ms, to_iso
from redemptions.models import RedemptionLine
from redemptions.selectors import redemption_line_list

# --- GET /redemptions: the list -------------------------------------------------------------------

REDEMPTION_LIST_DEFAULT_LIMIT = 10
REDEMPTION_LIST_MAX_LIMIT = 100
REDEMPTION_LIST_MAX_PAGE_NUMBER = 1_000_000

REDEMPTION_RECORD_EXAMPLE = {
    "id": "81",
    "orgId": 100737,
    "promotionId": "6912ced9d39e256f754a83f8",
    "promoCode": None,
    "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
    "customerId": 564332013,
    "redemptionDate": 1765875645000,
    "redemptionDateISO": "2025-12-16T09:00:45Z",
    "transactionIdentifier": "TXN-2025-12-16-0042",
    "transactionNumber": "BILL-0042",
    "promotionName": "Flat 500 off",
    "promotionMessageLabel": "Flat 500 off on 2000",
    "transactionEntityIdentifier": "REGULAR_l_81",
    "cartEvaluationId": None,
    "redemptionTill": "store.server",
    "discount": "500.000000",
    "redemptionCount": 1,
    "amount": "2000.000000",
    "redemptionType": "LINEITEM",
    "discountAppliedQuantity": "1.000000",
    "promotionAppliedQuantity": "1.000000",
    "sku": "SKU-1001",
    "productId": None,
    "reversed": False,
}


def _decimal(value) -> str:
    return f"{value:.6f}"


def _redemption_record(line: RedemptionLine) -> dict:
    """One line of a recorded redemption as the list returns it (`data[]`)."""
    redemption, promotion = line.redemption, line.promotion
    cart_level = line.level == RedemptionLine.Level.CART
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
        "discount": _decimal(line.discount),
        "redemptionCount": line.redemption_count,
        "amount": _decimal(redemption.amount),
        "redemptionType": line.level,
        "discountAppliedQuantity": _decimal(line.discount_applied_on_quantity),
        "promotionAppliedQuantity": _decimal(line.promotion_applied_on_quantity),
        "sku": line.sku or None,
        "productId": None,
        "reversed": line.is_reversed,
    }


class RedemptionListApi(APIView):
    """`GET /api_gateway/v1/promotions/redemptions`: the org's recorded redemptions, one record per line."""

    # Named apart from the record API's serializers: both APIs meet in one view class on this path.
    class ListQuerySerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1,
            max_value=REDEMPTION_LIST_MAX_LIMIT,
            default=REDEMPTION_LIST_DEFAULT_LIMIT,
            help_text=f"Records per page (default {REDEMPTION_LIST_DEFAULT_LIMIT}, at most {REDEMPTION_LIST_MAX_LIMIT}).",
        )
        pageNumber = serializers.IntegerField(
            min_value=0,
            max_value=REDEMPTION_LIST_MAX_PAGE_NUMBER,
            default=0,
            help_text="The page, from 0.",
        )
        sortOn = serializers.ChoiceField(
            choices=["REDEMPTION_DATE"], default="REDEMPTION_DATE", help_text="The transaction date."
        )
        order = serializers.ChoiceField(choices=["ASC", "DESC"], default="DESC")

    ListRecordSerializer = inline_serializer(
        "RedemptionListRecord",
        {
            "id": serializers.CharField(help_text="The redemption line's id."),
            "orgId": serializers.IntegerField(),
            "promotionId": serializers.CharField(),
            "promoCode": serializers.CharField(allow_null=True, help_text="Always null: no promo codes."),
            "earnedPromotionId": serializers.CharField(allow_null=True),
            "customerId": serializers.IntegerField(),
            "redemptionDate": serializers.IntegerField(help_text="The transaction date, epoch ms."),
            "redemptionDateISO": serializers.CharField(),
            "transactionIdentifier": serializers.CharField(),
            "transactionNumber": serializers.CharField(),
            "promotionName": serializers.CharField(),
            "promotionMessageLabel": serializers.CharField(allow_null=True),
            "transactionEntityIdentifier": serializers.CharField(
                help_text="REGULAR_b_<redemption id> for cart-level lines, REGULAR_l_<line id> for line items."
            ),
            "cartEvaluationId": serializers.CharField(allow_null=True, help_text="Always null."),
            "redemptionTill": serializers.CharField(
                allow_null=True, help_text="Username of the API client that recorded the redemption."
            ),
            "discount": serializers.CharField(help_text='A decimal string with 6 decimals ("500.000000").'),
            "redemptionCount": serializers.IntegerField(),
            "amount": serializers.CharField(help_text="The transaction amount, 6 decimals."),
            "redemptionType": serializers.ChoiceField(choices=RedemptionLine.Level.values),
            "discountAppliedQuantity": serializers.CharField(),
            "promotionAppliedQuantity": serializers.CharField(),
            "sku": serializers.CharField(allow_null=True),
            "productId": serializers.CharField(allow_null=True, help_text="Always null."),
            "reversed": serializers.BooleanField(help_text="The redemption has been reversed."),
        },
        many=True,
    )
    ListOutputSerializer = inline_serializer(
        "RedemptionListResponse",
        {
            "data": ListRecordSerializer,
            "errors": serializers.ListField(),
            "pagination": inline_serializer(
                "RedemptionListPagination",
                {
                    "limit": serializers.IntegerField(),
                    "pageNumber": serializers.IntegerField(),
                    "total": serializers.IntegerField(
                        help_text="Records matching the filters, on all pages."
                    ),
                },
            ),
        },
    )

    @extend_schema(
        operation_id="redemption_list",
        tags=["Redemptions"],
        parameters=[
            ListQuerySerializer,
            OpenApiParameter("customerId", OpenApiTypes.INT64, description="The redeeming customer."),
            OpenApiParameter("promotionId", str, description="The redeemed promotion."),
            OpenApiParameter("transactionIdentifier", str),
            OpenApiParameter(
                "transactionEntityIdentifier",
                str,
                description="REGULAR_b_<redemption id> (its cart-level lines) or REGULAR_l_<line id>.",
            ),
            OpenApiParameter("mode", str, enum=PromotionMode.values, description="The promotion's mode."),
            OpenApiParameter(
                "startDate", OpenApiTypes.INT64, description="Transaction date from (inclusive), epoch ms."
            ),
            OpenApiParameter(
                "endDate", OpenApiTypes.INT64, description="Transaction date to (inclusive), epoch ms."
            ),
            OpenApiParameter(
                "startDateISO", OpenApiTypes.DATETIME, description="Instead of startDate; with offset."
            ),
            OpenApiParameter(
                "endDateISO", OpenApiTypes.DATETIME, description="Instead of endDate; with offset."
            ),
            OpenApiParameter(
                "includeReversed", bool, description="Include reversed redemptions (default false)."
            ),
            OpenApiParameter(
                "codes", str, description="Promo codes are not implemented: any value matches nothing."
            ),
        ],
        responses={200: ListOutputSerializer, **error_responses(ErrorCode.BAD_REQUEST)},
        examples=[
            OpenApiExample(
                "Response",
                value={
                    "data": [REDEMPTION_RECORD_EXAMPLE],
                    "errors": [],
                    "pagination": {"limit": 10, "pageNumber": 0, "total": 1},
                },
                response_only=True,
            )
        ],
        description=(
            "The org's recorded redemptions, one record per redeemed line (a `lineItems` entry is "
            "LINEITEM, a cart-level `redemptions` entry is CART), with the transaction's fields repeated "
            "on each. Sorted on the transaction date (`sortOn=REDEMPTION_DATE`, the only value), "
            "`order` DESC by default, ties broken by the line `id` in the same direction, so pages "
            f"never overlap. `limit` default {REDEMPTION_LIST_DEFAULT_LIMIT}, at most "
            f"{REDEMPTION_LIST_MAX_LIMIT}; `pageNumber` from 0. `pagination.total` counts the records "
            "matching the filters on all pages. Filters combine with AND: `customerId`, `promotionId`, "
            "`transactionIdentifier`, `transactionEntityIdentifier`, `mode` (the promotion's), and the "
            "transaction date between `startDate` and `endDate` (epoch ms) or `startDateISO` and "
            "`endDateISO` (ISO 8601 with offset; an unencoded `+` is accepted), both bounds inclusive. "
            "Reversed redemptions are left out unless `includeReversed=true`; every record says "
            "`reversed`. An id of another org, or unknown, matches nothing: the list is empty, never "
            "404. `promoCode`, `cartEvaluationId` and `productId` are always null (no promo codes, "
            "evaluations or product catalogue here); `codes` therefore matches nothing. "
            "`redemptionTill` is the username of the API client that recorded the redemption. "
            "Decimals are strings with 6 decimals. 400 for a malformed or out-of-range parameter, "
            "both forms of one date bound, or startDate after endDate. Read access suffices."
        ),
    )
    def get(self, request):
        query = self.ListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        page = redemption_line_list(
            org=request_org(request),
            params=request.query_params,
            limit=params["limit"],
            page_number=params["pageNumber"],
            descending=params["order"] == "DESC",
        )
        return Response(
            {
                "data": [_redemption_record(line) for line in page.lines],
                "errors": [],
                "pagination": {
                    "limit": params["limit"],
                    "pageNumber": params["pageNumber"],
                    "total": page.total,
                },
            }
        )
