"""Redemption endpoints: record (redeem), reverse, and list. Each view validates, calls one service or
selector and renders; its OpenAPI text lives in `redemptions/schema.py`, its bodies in
`redemptions/serializers.py`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.code_guard import code_guess_check, code_guess_record
from promotions.models import RedemptionStrategy
from promotions.selectors import TILL_CODE_HEADER, store_scope_for_till, till_for_request
from promotions_site.auth import (
    CachedClient,
    ClientStale,
    HasApiReadAccess,
    client_verify_afresh,
    request_org,
)
from promotions_site.errors import PromotionError
from promotions_site.idempotency import idempotent
from promotions_site.timefmt import EpochMillisField, IsoDateTimeField
from redemptions import schema
from redemptions.cart_locks import cart_cancel
from redemptions.evaluation import CODE_UNKNOWN, EvaluationInput, evaluation_create, evaluation_lines
from redemptions.models import ANONYMOUS_CUSTOMER_ID
from redemptions.redeem_input import redemption_request_fast
from redemptions.selectors import pending_carts, redemption_line_list
from redemptions.serializers import (
    EVALUATE_LINES_MAX,
    EVALUATE_LIST_MAX,
    REDEMPTION_LIST_DEFAULT_LIMIT,
    REDEMPTION_LIST_MAX_LIMIT,
    EvaluationCartItemSerializer,
    EvaluationCustomerIdField,
    EvaluationDecimalField,
    EvaluationTenderSerializer,
    StrictSerializer,
    cart_cancel_body,
    evaluation_body,
    evaluation_request_fast,
    pending_carts_body,
    redemption_body,
    redemption_list_body,
    redemption_reversal_body,
)
from redemptions.services import (
    LineInput,
    RedemptionInput,
    redemption_record,
    redemption_reverse,
)
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

    class InputSerializer(serializers.Serializer):
        class CartRedemptionSerializer(serializers.Serializer):
            sku = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
            promotionId = serializers.CharField(max_length=24)
            redemptionCount = serializers.IntegerField(min_value=1, max_value=1_000_000)
            discount = serializers.DecimalField(**MONEY)
            discountAppliedOnQuantity = serializers.DecimalField(**QUANTITY)
            promotionAppliedOnQuantity = serializers.DecimalField(**QUANTITY)
            promoCode = serializers.CharField(
                max_length=50,
                required=False,
                allow_null=True,
                allow_blank=True,
                help_text="Ours: the promo code a CODE promotion is redeemed through (case-insensitive); "
                "required for a CODE promotion unless the org redeems with cart evaluation, where it comes "
                "from the evaluation (docs/code-redemption.md).",
            )

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

        customerId = serializers.CharField(max_length=20, required=False, allow_null=True, allow_blank=True)
        customerIdentifierType = serializers.ChoiceField(
            choices=IDENTIFIER_NAMES, required=False, allow_null=True, allow_blank=True
        )
        customerIdentifierValue = serializers.CharField(
            max_length=254, required=False, allow_null=True, allow_blank=True
        )
        transactionIdentifier = serializers.CharField(
            max_length=250,
            help_text=(
                "Unique in the org: the same body again replays the first answer; another body is 409 "
                "with code 800."
            ),
        )
        transactionNumber = serializers.CharField(max_length=250)
        transactionDate = EpochMillisField(
            required=False, help_text="Epoch ms; this or transactionDateISO, at most 24 h ahead."
        )
        transactionDateISO = IsoDateTimeField(
            required=False, help_text="ISO 8601 with offset; wins over transactionDate."
        )
        amount = serializers.DecimalField(**MONEY)
        lineItems = LineItemSerializer(
            many=True,
            required=False,
            allow_null=True,
            max_length=LINES_MAX,
            help_text="Item-level redemptions; this list, `redemptions` or both, not neither.",
        )
        redemptions = CartRedemptionSerializer(
            many=True,
            required=False,
            allow_null=True,
            max_length=LINES_MAX,
            help_text="Cart-level redemptions.",
        )
        cartItems = serializers.ListField(
            child=EvaluationCartItemSerializer(),
            required=False,
            allow_null=True,
            max_length=EVALUATE_LINES_MAX,
            help_text="The cart the discounts were computed on, as the evaluate API takes it. Required "
            "when the org redeems on the capped strategy (each discount is checked against it: 804); "
            "otherwise not read.",
        )

        promotionEvaluationId = serializers.RegexField(
            r"^[0-9a-f]{24}$",
            required=False,
            allow_null=True,
            help_text="REDEMPTION_WITH_CART_EVALUATION: the evaluationId of the cart redeemed (required "
            "there, 803 without); not read on the other strategies.",
        )
        appliedPromotionIdentifiers = serializers.ListField(
            child=serializers.CharField(max_length=2000),
            required=False,
            allow_null=True,
            max_length=LINES_MAX,
            help_text="REDEMPTION_WITH_CART_EVALUATION: the `identifier` of each promotion the evaluation "
            "applied (its top-level appliedPromotions), in any order; 802 when they differ.",
        )

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

        def validate_lineItems(self, entries):
            # `many` passes allow_null on to each entry too: a null entry would reach _lines.
            if entries and None in entries:
                raise serializers.ValidationError("An entry cannot be null.")
            return entries

        validate_redemptions = validate_lineItems

        def _lines(self, attrs) -> list[LineInput]:
            return [
                LineInput(
                    level=level,
                    position=position,
                    promotion_id=item["promotionId"],
                    sku=item.get("sku") or "",
                    earned_promotion_id=item.get("earnedPromotionId") or None,
                    promo_code=item.get("promoCode") or None,
                    redemption_count=item["redemptionCount"],
                    discount=item["discount"],
                    discount_applied_on_quantity=item["discountAppliedOnQuantity"],
                    promotion_applied_on_quantity=item["promotionAppliedOnQuantity"],
                )
                for key, level in (("lineItems", "LINEITEM"), ("redemptions", "CART"))
                for position, item in enumerate(attrs.get(key) or [])
            ]

    # The write verifies the client the authentication served from its cache (promotions_site/auth.py).
    client_verified_by_view = ("POST",)

    @schema.redemption_create(request=InputSerializer)
    def post(self, request):
        data = redemption_request_fast(request.data)
        if data is None:  # not plainly valid: the serializer decides, and answers each problem
            payload = self.InputSerializer(data=request.data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
        fingerprint = request_fingerprint(request.data)
        cached = request.auth if isinstance(request.auth, CachedClient) else None
        try:
            outcome = self._record(request, data, fingerprint, cached.check if cached else None)
        except ClientStale:
            # The cached client changed: verify it afresh (401 or 403 now if it may no longer write).
            client_verify_afresh(self, request)
            outcome = self._record(request, data, fingerprint, None)
        return Response(
            redemption_body(org_id=request.user.org_id, redemption=outcome.redemption, lines=outcome.lines)
        )

    @staticmethod
    def _record(request, data, fingerprint: str, client_check: str | None):
        org = request_org(request)
        capped = org.redemption_strategy == RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED
        return redemption_record(
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
                cart_lines=evaluation_lines(data["cartItems"]) if data.get("cartItems") is not None else None,
                # Only the capped strategy reads the till (its store scopes the promotions checked).
                store=store_scope_for_till(till_for_request(request)) if capped else None,
                evaluation_id=data.get("promotionEvaluationId"),
                till_code=request.headers.get(TILL_CODE_HEADER),
                applied_identifiers=(
                    tuple(data["appliedPromotionIdentifiers"])
                    if data.get("appliedPromotionIdentifiers") is not None
                    else None
                ),
            ),
            fingerprint=fingerprint,
            actor=Actor.for_api_client(request.user),
            api_client=request.user,
            client_check=client_check,
        )


def _customer_lookup(data) -> tuple[str, str] | None:
    """How the request names its customer: `customerId` when sent, else the identifier (the service
    finds and locks the customer in one query; an unknown one is 404); None for an anonymous sale
    (`customerId` -1, which wins over an identifier like any customerId)."""
    customer_id = (data.get("customerId") or "").strip()
    if customer_id:
        if customer_id == str(ANONYMOUS_CUSTOMER_ID):
            return None
        return "id", customer_id
    return data["customerIdentifierType"], data["customerIdentifierValue"]


class RedemptionReverseApi(APIView):
    """`POST /api_gateway/v1/promotions/redemptions/reverse`: undo a recorded transaction (return, cancelled sale)."""

    class InputSerializer(serializers.Serializer):
        transactionIdentifier = serializers.CharField(max_length=250)
        reason = serializers.CharField(max_length=250, required=False, allow_blank=True, default="")

    @schema.redemption_reverse(request=InputSerializer)
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
            redemption_reversal_body(
                org_id=org.pk, redemption=redemption, reversal=outcome.reversal, lines=lines
            )
        )


# --- GET /redemptions: the list -------------------------------------------------------------------

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
        cursor = serializers.CharField(
            required=False,
            max_length=100,
            help_text="The `X-Next-Cursor` header of the page before: the next page by keyset, as fast "
            "deep in the list as at its start (pageNumber is then not used).",
        )

    @schema.redemption_list(query=ListQuerySerializer)
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
            cursor=params.get("cursor"),
        )
        headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
        return Response(
            redemption_list_body(page=page, limit=params["limit"], page_number=params["pageNumber"]),
            headers=headers,
        )


class RedemptionsApi(RedemptionListApi, RedemptionCreateApi):
    """`/redemptions`: Django routes one view per path, so the list (GET) and the record (POST) meet here."""


# --- POST /evaluate ---------------------------------------------------------------------------------


class EvaluationCreateApi(APIView):
    """`POST /api_gateway/v1/promotions/evaluate`: the promotions a cart gets, stored as an evaluation."""

    permission_classes = [HasApiReadAccess]

    class InputSerializer(StrictSerializer):
        amount = EvaluationDecimalField(help_text="The cart's amount, echoed.")
        customerId = EvaluationCustomerIdField(required=False, allow_null=True)
        cartItems = EvaluationCartItemSerializer(many=True, min_length=1, max_length=EVALUATE_LINES_MAX)
        promoCodes = serializers.ListField(
            child=serializers.CharField(max_length=50),
            required=False,
            allow_null=True,
            max_length=EVALUATE_LIST_MAX,
            help_text="Promo codes (case-insensitive): each valid code makes its CODE promotion eligible; each "
            "code that does not apply is answered in promoCodeEvaluationLogs (docs/code-redemption.md).",
        )
        paymentVouchers = serializers.ListField(
            child=serializers.CharField(max_length=50),
            required=False,
            allow_null=True,
            max_length=EVALUATE_LIST_MAX,
            help_text="Accepted; each voucher is answered in paymentVoucherEvaluationLogs (not enabled yet).",
        )
        # A ListField: a `many` serializer's allow_null would let each tender be null too.
        cartTenders = serializers.ListField(
            child=EvaluationTenderSerializer(), required=False, allow_null=True, max_length=EVALUATE_LIST_MAX
        )
        categoryHierarchySentInPayload = serializers.BooleanField(required=False, allow_null=True)
        cartEvaluationId = serializers.RegexField(
            r"^[0-9a-f]{24}$",
            required=False,
            allow_null=True,
            help_text="Ours (cart locking): the evaluationId of this customer's open cart that this request "
            "evaluates again; its reservation is reversed and the cart evaluated afresh.",
        )

    # The insert verifies the client the authentication served from its cache (promotions_site/auth.py).
    client_verified_by_view = ("POST",)

    @schema.evaluation_create(request=InputSerializer)
    def post(self, request):
        data = evaluation_request_fast(request.data)
        if data is None:  # not plainly valid: the serializer decides, and answers each problem
            payload = self.InputSerializer(data=request.data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
        # Typed codes are guesses until found: a client or customer over its budget of unknown codes
        # is refused (429) before the cart is evaluated, and each call with codes is counted
        # (promotions/code_guard.py; docs/code-redemption.md).
        guessing = bool(data.get("promoCodes"))
        if guessing:
            code_guess_check(request.user, data.get("customerId"))
        cached = request.auth if isinstance(request.auth, CachedClient) else None
        try:
            outcome = self._evaluate(request, data, cached.check if cached else None)
        except (ClientStale, PromotionError):
            if cached is None:
                raise
            # The cached client changed, or the answer is a refusal (which a client no longer allowed
            # must not learn): verify the client afresh (401 now if it was deactivated) and evaluate again.
            client_verify_afresh(self, request)
            outcome = self._evaluate(request, data, None)
        if guessing:
            unknown = [log.promo_code for log in outcome.promo_code_logs if log.error_code == CODE_UNKNOWN]
            code_guess_record(request.user, data.get("customerId"), outcome.unknown_code_count, codes=unknown)
        return Response(evaluation_body(outcome))

    @staticmethod
    def _evaluate(request, data, client_check: str | None):
        till = till_for_request(request)
        return evaluation_create(
            org=request_org(request),
            data=EvaluationInput(
                customer_id=data.get("customerId"),
                amount=data["amount"],
                lines=evaluation_lines(data["cartItems"]),
                tenders=[
                    (tender["identifier"], tender.get("amount")) for tender in data.get("cartTenders") or []
                ],
                promo_codes=list(data.get("promoCodes") or []),
                payment_vouchers=list(data.get("paymentVouchers") or []),
                category_hierarchy_sent=bool(data.get("categoryHierarchySentInPayload")),
                request=request.data,
                request_json=_json_text(request),
                cart_evaluation_id=data.get("cartEvaluationId"),
            ),
            api_client=request.user,
            till_code=till.code if till is not None else "",
            store=store_scope_for_till(till),
            client_check=client_check,
        )


def _json_text(request) -> str | None:
    """The body as the JSON text it was sent as (UTF-8), when the parser kept it; else None."""
    raw = getattr(request, "json_body", None)
    try:
        return raw.decode("utf-8") if raw is not None else None
    except UnicodeDecodeError:
        return None


# --- Pending carts: list and cancel (cart locks) ---------------------------------------------------


class PendingCartListApi(APIView):
    """`GET /api_gateway/v1/promotions/customer/{customerId}/evaluations/pending_carts`."""

    @schema.pending_cart_list()
    def get(self, request, customer_id: int):
        return Response(pending_carts_body(pending_carts(org=request_org(request), customer_id=customer_id)))


class CartCancelApi(APIView):
    """`PUT /api_gateway/v1/promotions/customer/{customerId}/evaluations/{evaluationId}/cancel` (also
    POST, Capillary's older label, and `/evaluation/` singular)."""

    @schema.cart_cancel()
    def put(self, request, customer_id: int, evaluation_id: str):
        lock = cart_cancel(
            org=request_org(request),
            customer_id=customer_id,
            evaluation_id=evaluation_id,
            actor=Actor.for_api_client(request.user),
            now=timezone.now(),
        )
        return Response(cart_cancel_body(lock))

    @schema.cart_cancel(deprecated=True)
    def post(self, request, customer_id: int, evaluation_id: str):
        return self.put(request, customer_id, evaluation_id)


class CartCancelSingularApi(CartCancelApi):
    """The cancel under `/evaluation/` (singular), as one Capillary index spells it."""

    @schema.cart_cancel(singular=True)
    def put(self, request, customer_id: int, evaluation_id: str):
        return super().put(request, customer_id, evaluation_id)

    @schema.cart_cancel(deprecated=True, singular=True)
    def post(self, request, customer_id: int, evaluation_id: str):
        return super().put(request, customer_id, evaluation_id)
