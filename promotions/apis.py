"""Promotion and authentication endpoints."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.examples import PROMOTION_CREATE_EXAMPLE, PROMOTION_RESPONSE_EXAMPLE
from promotions.models import PromotionType
from promotions.selectors import promotion_get, promotion_list
from promotions.serializers import (
    PromotionInputSerializer,
    PromotionOutputSerializer,
    PromotionUpdateSerializer,
)
from promotions.services import (
    RestrictionSpec,
    oauth_token_issue,
    promotion_activate,
    promotion_create,
    promotion_deactivate,
    promotion_update,
)
from promotions_site.auth import api_client_sign_in, request_org
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETERS, idempotent
from promotions_site.schema import error_responses


class OAuthTokenGenerateApi(APIView):
    """`POST /v3/oauth/token/generate`: exchange an API client's key and secret for an access token."""

    authentication_classes = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        key = serializers.CharField(max_length=150)
        secret = serializers.CharField(max_length=256, trim_whitespace=False)

    OutputSerializer = inline_serializer(
        "OAuthTokenResponse",
        {
            "data": inline_serializer(
                "OAuthToken",
                {"accessToken": serializers.CharField(), "ttlSeconds": serializers.IntegerField()},
            ),
            "errors": serializers.JSONField(allow_null=True),
        },
    )

    @extend_schema(
        operation_id="oauth_token_generate",
        tags=["Authentication"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(ErrorCode.BAD_REQUEST, ErrorCode.UNAUTHORIZED, auth=False),
        },
        examples=[
            OpenApiExample(
                "Request", value={"key": "store.server", "secret": "server123"}, request_only=True
            ),
            OpenApiExample(
                "Response",
                value={"data": {"accessToken": "eyJjaWQiOjF9:1tX...", "ttlSeconds": 300}, "errors": None},
                response_only=True,
            ),
        ],
        description=(
            "Returns a signed access token for the API client whose key (username) and secret are given. "
            "Send it as `X-CAP-API-OAUTH-TOKEN` (or `Authorization: Bearer`). It expires after "
            "`ttlSeconds` (the client's setting, 300 s by default, at most 3600 s) and stops working "
            "at once when the client is deactivated or its secret is rotated. The secret may also be "
            "sent as its MD5 hex digest."
        ),
    )
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client = api_client_sign_in(
            request, username=payload.validated_data["key"], secret=payload.validated_data["secret"]
        )
        if client is None:
            raise PromotionError(ErrorCode.UNAUTHORIZED, "Invalid key or secret.")
        token, ttl = oauth_token_issue(client=client)
        return Response({"data": {"accessToken": token, "ttlSeconds": ttl}, "errors": None})


PromotionEnvelope = inline_serializer(
    "PromotionEnvelope", {"data": PromotionOutputSerializer(), "errors": serializers.ListField()}
)
BooleanEnvelope = inline_serializer(
    "BooleanEnvelope", {"data": serializers.BooleanField(), "errors": serializers.ListField()}
)


PROMOTION_WRITE_ERRORS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.FORBIDDEN,
    ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
    ErrorCode.PROMOTION_EXPIRED,
    ErrorCode.PROMOTION_NAME_NOT_UNIQUE,
)
PROMOTION_LIST_DEFAULT_LIMIT = 100
PROMOTION_LIST_MAX_LIMIT = 1000


class PromotionCollectionApi(APIView):
    """`GET /api_gateway/v1/promotions?promotionIds=` (list) and `POST /api_gateway/v1/promotions` (create)."""

    class ListQuerySerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1, max_value=PROMOTION_LIST_MAX_LIMIT, default=PROMOTION_LIST_DEFAULT_LIMIT
        )

    ListEnvelope = inline_serializer(
        "PromotionListEnvelope",
        {"data": PromotionOutputSerializer(many=True), "errors": serializers.ListField()},
    )

    @extend_schema(
        operation_id="promotion_list",
        tags=["Promotions"],
        parameters=[
            OpenApiParameter("promotionIds", str, description="Comma-separated ids (at most 100)."),
            OpenApiParameter("type", str, enum=[t.value for t in PromotionType]),
            OpenApiParameter("active", bool),
            OpenApiParameter("includeExpired", bool, description="false leaves out ended promotions."),
            OpenApiParameter("limit", int, description="Default 100, at most 1000."),
        ],
        responses={200: ListEnvelope, **error_responses(ErrorCode.BAD_REQUEST)},
        description=(
            "The org's cart promotions, newest first, full objects as create returns them. Ids in "
            "`promotionIds` that do not exist in the org are left out (no error). No pagination "
            "metadata, as in Capillary; `limit` caps the list (default 100, at most 1000)."
        ),
    )
    def get(self, request):
        query = self.ListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        promotions = promotion_list(
            org=request_org(request), params=request.query_params, limit=query.validated_data["limit"]
        )
        return Response({"data": PromotionOutputSerializer(promotions, many=True).data, "errors": []})

    @extend_schema(
        operation_id="promotion_create",
        tags=["Promotions"],
        request=PromotionInputSerializer,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={200: PromotionEnvelope, **error_responses(*PROMOTION_WRITE_ERRORS, *IDEMPOTENCY_ERRORS)},
        examples=[
            OpenApiExample("Request", value=PROMOTION_CREATE_EXAMPLE, request_only=True),
            OpenApiExample("Response", value=PROMOTION_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "Creates a cart promotion. `condition` and `action` are validated against the shapes of "
            "Capillary's create-promotion docs (unknown keys and enum values are 400; percentages at "
            "most 100; at most 100 values per criteria: 400 `SKU values exceed 100`). 716 when the org "
            "already has a promotion of that name; 705 when it is created active and the org already "
            "has its maximum of active, unexpired promotions; 706 when endDate has passed. "
            "`promotionRestrictions`: Code is required for CODE and only for it, Earn only for EARNING "
            "and REWARD, Cart limits cannot repeat, fixed and rolling windows cannot be mixed. Limits "
            "are echoed as strings with six decimals. Fields of Capillary's create API that this "
            "service does not evaluate (accumulationConfig, storeCriteria, timeCriteria, "
            "supplementaryCriteria, isLoyaltyOnly) are accepted and ignored. Retry safely with an "
            "`Idempotency-Key` header."
        ),
    )
    @idempotent
    def post(self, request):
        payload = PromotionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        promotion = promotion_create(
            org=request_org(request),
            fields=payload.service_fields(),
            restrictions=payload.restrictions() or [],
            actor=Actor.for_api_client(request.user),
        )
        return Response({"data": PromotionOutputSerializer(promotion).data, "errors": []})


@extend_schema_view(
    get=extend_schema(operation_id="promotion_list_without_slash"),
    post=extend_schema(operation_id="promotion_create_without_slash"),
)
class PromotionCollectionWithoutSlashApi(PromotionCollectionApi):
    """`/api_gateway/v1/promotions` as Capillary documents create: the same API without the trailing slash."""


class PromotionDetailApi(APIView):
    """`GET` and `PUT /api_gateway/v1/promotions/{promotionId}`."""

    @extend_schema(
        operation_id="promotion_get",
        tags=["Promotions"],
        responses={200: PromotionEnvelope, **error_responses(ErrorCode.NOT_FOUND)},
        description="One cart promotion of the caller's org. Another org's promotion answers 404.",
    )
    def get(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        return Response({"data": PromotionOutputSerializer(promotion).data, "errors": []})

    @extend_schema(
        operation_id="promotion_update",
        tags=["Promotions"],
        request=PromotionUpdateSerializer,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            200: PromotionEnvelope,
            **error_responses(
                *PROMOTION_WRITE_ERRORS,
                ErrorCode.NOT_FOUND,
                ErrorCode.RESTRICTION_SCHEMA_CHANGE,
                *IDEMPOTENCY_ERRORS,
            ),
        },
        examples=[OpenApiExample("Request", value=PROMOTION_CREATE_EXAMPLE, request_only=True)],
        description=(
            "Replaces the promotion's configuration. Omitted fields keep their value (none is required: "
            "`{}` changes nothing; no body at all is 400); "
            "`promotionRestrictions`, when sent, replaces all limits. `type` and `active` cannot be "
            "changed (400; use activate/deactivate). Once the promotion has started, its limits "
            "(`promotionRestrictions`, `maxIssuancePerCustomer`, `maxEarningPerCustomer`) and "
            "`customerActivationRequired` are frozen (400). Switching a limit between CLASSIC and "
            "OVERALL/MOVING windows is 1011. Changing `endDate` or `earnedValidityDays` re-dates the "
            "validTill of the promotion's ACTIVE wallet instances in the same transaction. 716 on a "
            "name clash. Retry safely with an `Idempotency-Key` header."
        ),
    )
    @idempotent
    def put(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        if request.stream is None:  # no body at all (`{}` is a body: it changes nothing)
            raise PromotionError(ErrorCode.BAD_REQUEST, "Send the fields to change as a JSON object.")
        payload = PromotionUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        restrictions = payload.restrictions()
        if restrictions is None:
            restrictions = [RestrictionSpec.of(row) for row in promotion.restrictions.all()]
        promotion = promotion_update(
            promotion=promotion,
            fields=payload.service_fields(),
            restrictions=restrictions,
            actor=Actor.for_api_client(request.user),
        )
        return Response({"data": PromotionOutputSerializer(promotion).data, "errors": []})


class PromotionActivateApi(APIView):
    """`PUT /api_gateway/v1/promotions/{promotionId}/activate` (org level)."""

    @extend_schema(
        operation_id="promotion_activate",
        tags=["Promotions"],
        request=None,
        responses={
            200: BooleanEnvelope,
            **error_responses(
                ErrorCode.NOT_FOUND,
                ErrorCode.FORBIDDEN,
                ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
                ErrorCode.PROMOTION_EXPIRED,
            ),
        },
        examples=[OpenApiExample("Activated", value={"data": True, "errors": []}, response_only=True)],
        description=(
            "Activates the promotion for the whole org. 705 when the org already has its maximum of "
            "active, unexpired promotions (250 by default); 706 when the promotion has ended. "
            "Activating an active promotion is a no-op."
        ),
    )
    def put(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        promotion_activate(promotion=promotion, actor=Actor.for_api_client(request.user))
        return Response({"data": True, "errors": []})


class PromotionDeactivateApi(APIView):
    """`PUT /api_gateway/v1/promotions/{promotionId}/deactivate` (org level)."""

    @extend_schema(
        operation_id="promotion_deactivate",
        tags=["Promotions"],
        request=None,
        responses={200: BooleanEnvelope, **error_responses(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)},
        examples=[OpenApiExample("Deactivated", value={"data": True, "errors": []}, response_only=True)],
        description="Deactivates the promotion for the whole org; deactivating an inactive one is a no-op.",
    )
    def put(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        promotion_deactivate(promotion=promotion, actor=Actor.for_api_client(request.user))
        return Response({"data": True, "errors": []})
