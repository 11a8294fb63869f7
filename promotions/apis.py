"""Promotion and authentication endpoints."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.selectors import promotion_get
from promotions.serializers import PromotionOutputSerializer
from promotions.services import Actor, oauth_token_generate, promotion_activate, promotion_deactivate
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode
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
        token, ttl = oauth_token_generate(**payload.validated_data)
        return Response({"data": {"accessToken": token, "ttlSeconds": ttl}, "errors": None})


PromotionEnvelope = inline_serializer(
    "PromotionEnvelope", {"data": PromotionOutputSerializer(), "errors": serializers.ListField()}
)
BooleanEnvelope = inline_serializer(
    "BooleanEnvelope", {"data": serializers.BooleanField(), "errors": serializers.ListField()}
)


class PromotionDetailApi(APIView):
    """`GET /api_gateway/v1/promotions/{promotionId}`."""

    @extend_schema(
        operation_id="promotion_get",
        tags=["Promotions"],
        responses={200: PromotionEnvelope, **error_responses(ErrorCode.NOT_FOUND)},
        description="One cart promotion of the caller's org. Another org's promotion answers 404.",
    )
    def get(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
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
