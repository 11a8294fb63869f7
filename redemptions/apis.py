"""Redemption endpoints: record (redeem), reverse, and list."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.models import PromotionMode
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode
from promotions_site.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETERS, idempotent
from promotions_site.schema import error_responses
from promotions_site.timefmt import EpochMillisField, IsoDateTimeField, to_epoch_ms, to_iso
from redemptions.examples import (
    REDEEM_REQUEST_EXAMPLE,
    REDEEM_RESPONSE_EXAMPLE,
    REDEMPTION_RECORD_EXAMPLE,
    REVERSE_REQUEST_EXAMPLE,
)
from redemptions.models import RedemptionLine
from redemptions.selectors import redemption_line_list
from redemptions.serializers import redemption_data, redemption_line_record
from redemptions.services import LineInput, RedemptionInput, redemption_record, redemption_reverse
from wallets.identifiers import IDENTIFIER_NAMES

# --- POST /redemptions: record, and POST /redemptions/reverse ---------------------------------------

LINES_MAX = 500
QUANTITY = {
    "max_digits": 18,
    "decimal_places": 6,
    "min_value": Decimal("0.000001"),
    "coerce_to_string": False,
}
MONEY = {"max_digits": 18, "decimal_places": 6, "min_value": Decimal(0), "coerce_to_string": False}


def request_fingerprint(body) -> str:
    """SHA-256 of the body as canonical JSON: a replay with the same body has the same fingerprint."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class RedemptionCreateApi(APIView):
    """`POST /api_gateway/v1/promotions/redemptions`: record the promotions redeemed in a transaction."""

    class CartRedemptionSerializer(serializers.Serializer):
        sku = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
        promotionId = serializers.CharField(max_length=24)
        redemptionCount = serializers.IntegerField(min_value=1, max_value=1_000_000)
        discount = serializers.DecimalField(**MONEY)
        discountAppliedOnQuantity = serializers.DecimalField(**QUANTITY)
        promotionAppliedOnQuantity = serializers.DecimalField(**QUANTITY)

        def validate(self, attrs):
            if attrs["discountAppliedOnQuantity"] > attrs["promotionAppliedOnQuantity"]:
                raise serializers.ValidationError(
                    "discountAppliedOnQuantity cannot exceed promotionAppliedOnQuantity."
                )
            return attrs

    class LineItemSerializer(CartRedemptionSerializer):
        earnedPromotionId = serializers.CharField(
            max_length=24, required=False, allow_null=True, allow_blank=True
        )

    class InputSerializer(serializers.Serializer):
        customerId = serializers.CharField(max_length=20, required=False, allow_null=True, allow_blank=True)
        customerIdentifierType = serializers.ChoiceField(
            choices=IDENTIFIER_NAMES, required=False, allow_null=True, allow_blank=True
        )
        customerIdentifierValue = serializers.CharField(
            max_length=254, required=False, allow_null=True, allow_blank=True
        )
        transactionIdentifier = serializers.CharField(max_length=250)
        transactionNumber = serializers.CharField(max_length=250)
        transactionDate = EpochMillisField(required=False)
        transactionDateISO = IsoDateTimeField(required=False)
        amount = serializers.DecimalField(**MONEY)
        lineItems = serializers.ListField(required=False, allow_null=True, max_length=LINES_MAX)
        redemptions = serializers.ListField(required=False, allow_null=True, max_length=LINES_MAX)

        def validate(self, attrs):
            if not attrs.get("customerId") and not (
                attrs.get("customerIdentifierType") and attrs.get("customerIdentifierValue")
            ):
                raise serializers.ValidationError(
                    "CustomerIdentifierType and CustomerIdentifierValue is mandatory when customerId is not specified."
                )
            if not attrs.get("lineItems") and not attrs.get("redemptions"):
                raise serializers.ValidationError("At least lineItems or redemptions must be specified")
            when = attrs.get("transactionDateISO") or attrs.get("transactionDate")
            if when is None:
                raise serializers.ValidationError("One of transactionDate or transactionDateISO is required.")
            if when > timezone.now() + dt.timedelta(hours=24):
                raise serializers.ValidationError(
                    "transactionDate cannot be more than 24 hours in the future."
                )
            attrs["transaction_date"] = when
            attrs["lines"] = self._lines(attrs)
            if sum(line.discount for line in attrs["lines"]) > attrs["amount"]:
                raise serializers.ValidationError("The discounts add up to more than the transaction amount.")
            return attrs

        def _lines(self, attrs) -> list[LineInput]:
            lines, errors = [], {}
            for key, serializer_class, level in (
                ("lineItems", RedemptionCreateApi.LineItemSerializer, "LINEITEM"),
                ("redemptions", RedemptionCreateApi.CartRedemptionSerializer, "CART"),
            ):
                if not attrs.get(key):
                    continue  # nothing to validate (most tills send one of the two lists)
                items = serializer_class(data=attrs[key], many=True)
                if not items.is_valid():
                    errors[key] = items.errors
                    continue
                for position, item in enumerate(items.validated_data):
                    lines.append(
                        LineInput(
                            level=level,
                            position=position,
                            promotion_id=item["promotionId"],
                            sku=item.get("sku") or "",
                            earned_promotion_id=item.get("earnedPromotionId") or None,
                            redemption_count=item["redemptionCount"],
                            discount=item["discount"],
                            discount_applied_on_quantity=item["discountAppliedOnQuantity"],
                            promotion_applied_on_quantity=item["promotionAppliedOnQuantity"],
                        )
                    )
            if errors:
                raise serializers.ValidationError(errors)
            return lines

    OutputSerializer = inline_serializer(
        "RedemptionResponse",
        {"data": serializers.JSONField(), "errors": serializers.ListField()},
    )

    @extend_schema(
        operation_id="redemption_create",
        tags=["Redemptions"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                ErrorCode.BAD_REQUEST,
                ErrorCode.FORBIDDEN,
                ErrorCode.NOT_FOUND,
                ErrorCode.PROMOTION_EXPIRED,
                ErrorCode.PROMOTION_NOT_RUNNING,
                ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
                ErrorCode.EARN_ALREADY_REDEEMED,
                ErrorCode.EARN_ID_INVALID,
                ErrorCode.CONFLICT,
                ErrorCode.REDEMPTION_ALREADY_PRESENT,
            ),
        },
        examples=[
            OpenApiExample("Request", value=REDEEM_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Response", value=REDEEM_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "Records the promotions redeemed in one transaction: `lineItems` (per item, with the "
            "`earnedPromotionId` redeemed) and/or cart-level `redemptions`. The customer is `customerId`, "
            "or `customerIdentifierType` (mobile, email, externalId, id) + `customerIdentifierValue`; "
            "`customerId` wins when both are sent. The answer echoes the request with `orgId`, the "
            "customer id and `transactionDateISO`; discounts and quantities as six-decimal strings.\n\n"
            "**Retry-safe**: idempotent per `transactionIdentifier` in the org. The same body again "
            "returns the same answer and writes nothing; another body is 409 with code 800.\n\n"
            "**Checks** (any failure writes nothing): every promotion is the org's (400), active and "
            "started (709) and not ended (706) at `transactionDate`; CUSTOMER, EARNING and REWARD "
            "promotions are redeemed through an earned instance of this customer: the one named by "
            "`earnedPromotionId`, which must be this customer's instance of this promotion (715), not "
            "revoked (731), not expired (706) and not used up (409, code 729); or, when none is named "
            "(always for cart-level `redemptions`), the customer's usable instance that expires first "
            "(715 when there is none). An instance is single-use unless the promotion has an Earn "
            "REDEMPTION limit. Limits of `promotionRestrictions` are taken in the same transaction, so "
            "they hold under any concurrency: Cart (this transaction), Customer, Promotion (everyone) "
            "and Earn (the instance), kpi REDEMPTION (sum of redemptionCount), TRANSACTION (1 per "
            "transaction) and DISCOUNT (sum of discount); a limit that would be exceeded is 409 with "
            "code 409, the message naming it. Windows are counted over the whole history. Discounts "
            "may not exceed the amount; quantities are positive; at most 500 lines of each kind; "
            "`transactionDate` at most 24 h ahead. Code-level limits are not enforced (promotion codes "
            "are not implemented)."
        ),
    )
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        org = request_org(request)
        outcome = redemption_record(
            org=org,
            data=RedemptionInput(
                customer_lookup=_customer_lookup(data),
                customer_identifier_type=data.get("customerIdentifierType") or "",
                customer_identifier_value=data.get("customerIdentifierValue") or "",
                transaction_identifier=data["transactionIdentifier"],
                transaction_number=data["transactionNumber"],
                transaction_date=data["transaction_date"],
                amount=data["amount"],
                lines=data["lines"],
            ),
            fingerprint=request_fingerprint(request.data),
            actor=Actor.for_api_client(request.user),
            api_client=request.user,
        )
        body = redemption_data(org_id=org.pk, redemption=outcome.redemption, lines=outcome.lines)
        return Response({"data": body, "errors": []})


def _customer_lookup(data) -> tuple[str, str]:
    """How the request names its customer: `customerId` when sent, else the identifier (the service
    finds and locks the customer in one query; an unknown one is 404)."""
    customer_id = (data.get("customerId") or "").strip()
    if customer_id:
        if customer_id == "-1":
            raise Http404("Customer not found: anonymous (-1) redemptions are not supported.")
        return "id", customer_id
    return data["customerIdentifierType"], data["customerIdentifierValue"]


class RedemptionReverseApi(APIView):
    """`POST /api_gateway/v1/promotions/redemptions/reverse`: undo a recorded transaction (return, cancelled sale)."""

    class InputSerializer(serializers.Serializer):
        transactionIdentifier = serializers.CharField(max_length=250)
        reason = serializers.CharField(max_length=250, required=False, allow_blank=True, default="")

    OutputSerializer = inline_serializer(
        "RedemptionReverseResponse",
        {
            "data": inline_serializer(
                "RedemptionReversal",
                {
                    "transactionIdentifier": serializers.CharField(),
                    "reversed": serializers.BooleanField(),
                    "reversalDate": serializers.IntegerField(),
                    "reversalDateISO": serializers.CharField(),
                    "reason": serializers.CharField(),
                    "redemption": serializers.JSONField(help_text="The reversed redemption, as recorded."),
                },
            ),
            "errors": serializers.ListField(),
        },
    )

    @extend_schema(
        operation_id="redemption_reverse",
        tags=["Redemptions"],
        request=InputSerializer,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            200: OutputSerializer,
            **error_responses(
                ErrorCode.BAD_REQUEST, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, *IDEMPOTENCY_ERRORS
            ),
        },
        examples=[OpenApiExample("Request", value=REVERSE_REQUEST_EXAMPLE, request_only=True)],
        description=(
            "Capillary documents no reversal endpoint; this is ours. Reverses the whole transaction "
            "recorded under `transactionIdentifier`: the Customer and Promotion limit counters and each "
            "earned instance's counters get back exactly what the redemption took, and a used-up "
            "instance is ACTIVE again unless another redemption still uses up one of its Earn limits "
            "(it still reads expired past its validTill). The redemption and "
            "its lines stay as recorded; the reversal is a new fact pointing at them, and reversed "
            "redemptions no longer count in the wallet's remaining limits. Reversing twice is a no-op "
            "that answers the first reversal. 404 when the org has no such transaction. Accepts an "
            "`Idempotency-Key` header."
        ),
    )
    @idempotent
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        org = request_org(request)
        outcome = redemption_reverse(
            org=org,
            transaction_identifier=payload.validated_data["transactionIdentifier"],
            reason=payload.validated_data["reason"],
            actor=Actor.for_api_client(request.user),
            api_client=request.user,
        )
        redemption = outcome.redemption
        lines = list(redemption.lines.order_by("level", "position"))
        return Response(
            {
                "data": {
                    "transactionIdentifier": redemption.transaction_identifier,
                    "reversed": True,
                    "reversalDate": to_epoch_ms(outcome.reversal.created_at),
                    "reversalDateISO": to_iso(outcome.reversal.created_at),
                    "reason": outcome.reversal.reason,
                    "redemption": redemption_data(org_id=org.pk, redemption=redemption, lines=lines),
                },
                "errors": [],
            }
        )


# --- GET /redemptions: the list -------------------------------------------------------------------

REDEMPTION_LIST_DEFAULT_LIMIT = 10
REDEMPTION_LIST_MAX_LIMIT = 100
REDEMPTION_LIST_MAX_PAGE_NUMBER = 1_000_000


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
                "data": [redemption_line_record(line) for line in page.lines],
                "errors": [],
                "pagination": {
                    "limit": params["limit"],
                    "pageNumber": params["pageNumber"],
                    "total": page.total,
                },
            }
        )


class RedemptionsApi(RedemptionListApi, RedemptionCreateApi):
    """`/redemptions`: Django routes one view per path, so the list (GET) and the record (POST) meet here."""
