"""Promotion and authentication endpoints. Each view validates, calls one service or selector and
renders; its OpenAPI text lives in `promotions/schema.py`."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions import schema
from promotions.audit import Actor
from promotions.selectors import (
    promotion_config_list,
    promotion_get,
    promotion_list,
    promotions_for_till,
    till_get,
)
from promotions.serializers import (
    BOOLEAN_RESPONSE,
    OAUTH_TOKEN_RESPONSE,
    PROMOTION_CONFIG_RESPONSE,
    PROMOTION_LIST_RESPONSE,
    PROMOTION_RESPONSE,
    PromotionInputSerializer,
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
from promotions_site.idempotency import idempotent


class OAuthTokenGenerateApi(APIView):
    """`POST /v3/oauth/token/generate`: exchange an API client's key and secret for an access token."""

    authentication_classes = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        key = serializers.CharField(max_length=150)
        secret = serializers.CharField(max_length=256, trim_whitespace=False)

    @schema.oauth_token_generate(request=InputSerializer)
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        client = api_client_sign_in(
            request, username=payload.validated_data["key"], secret=payload.validated_data["secret"]
        )
        if client is None:
            raise PromotionError(ErrorCode.UNAUTHORIZED, "Invalid key or secret.")
        token, ttl = oauth_token_issue(client=client)
        return Response(OAUTH_TOKEN_RESPONSE.render((token, ttl)))


PROMOTION_LIST_DEFAULT_LIMIT = 100
PROMOTION_LIST_MAX_LIMIT = 1000


class PromotionCollectionApi(APIView):
    """`GET /api_gateway/v1/promotions?promotionIds=` (list) and `POST /api_gateway/v1/promotions` (create)."""

    class ListQuerySerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1, max_value=PROMOTION_LIST_MAX_LIMIT, default=PROMOTION_LIST_DEFAULT_LIMIT
        )

    @schema.promotion_list(query=ListQuerySerializer)
    def get(self, request):
        query = self.ListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        promotions = promotion_list(
            org=request_org(request), params=request.query_params, limit=query.validated_data["limit"]
        )
        return Response(PROMOTION_LIST_RESPONSE.render(promotions))

    @schema.promotion_create
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
        return Response(PROMOTION_RESPONSE.render(promotion))


@schema.promotion_collection_with_slash
class PromotionCollectionWithSlashApi(PromotionCollectionApi):
    """`/api_gateway/v1/promotions/` as Capillary documents the list: the same API with the trailing slash."""


@schema.promotion_collection_without_slash
class PromotionCollectionWithoutSlashApi(PromotionCollectionApi):
    """`/api_gateway/v1/promotions` as Capillary documents create: the same API without the trailing slash."""


class PromotionConfigApi(APIView):
    """`GET /api_gateway/v1/promotions/config`: the org's promotion summaries."""

    QuerySerializer = PromotionCollectionApi.ListQuerySerializer  # `limit`, as the list's

    @schema.promotion_config(query=QuerySerializer)
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        promotions = promotion_config_list(
            org=request_org(request), params=request.query_params, limit=query.validated_data["limit"]
        )
        return Response(PROMOTION_CONFIG_RESPONSE.render(promotions))


class PromotionTillApi(APIView):
    """`GET /api_gateway/v1/promotions/till/{tillId}`: the promotions evaluable at a till."""

    @schema.promotion_till
    def get(self, request, till_id: str):
        org = request_org(request)
        promotions = promotions_for_till(org=org, till=till_get(org=org, till_id=till_id))
        return Response(PROMOTION_LIST_RESPONSE.render(promotions))


class PromotionDetailApi(APIView):
    """`GET` and `PUT /api_gateway/v1/promotions/{promotionId}`."""

    @schema.promotion_get
    def get(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        return Response(PROMOTION_RESPONSE.render(promotion))

    @schema.promotion_update
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
        return Response(PROMOTION_RESPONSE.render(promotion))


class PromotionActivateApi(APIView):
    """`PUT /api_gateway/v1/promotions/{promotionId}/activate` (org level)."""

    @schema.promotion_activate
    def put(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        promotion_activate(promotion=promotion, actor=Actor.for_api_client(request.user))
        return Response(BOOLEAN_RESPONSE.render(True))


class PromotionDeactivateApi(APIView):
    """`PUT /api_gateway/v1/promotions/{promotionId}/deactivate` (org level)."""

    @schema.promotion_deactivate
    def put(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        promotion_deactivate(promotion=promotion, actor=Actor.for_api_client(request.user))
        return Response(BOOLEAN_RESPONSE.render(True))
