"""The promo-code batch endpoints: generate a CODE promotion's codes, follow a batch, cancel it.
Each view validates, calls one service or selector and renders; the OpenAPI text lives in
`promotions/codegen/schema.py`."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.codegen import schema
from promotions.codegen.selectors import promo_code_batch_get
from promotions.codegen.serializers import PROMO_CODE_BATCH_RESPONSE
from promotions.codegen.services import generation_params, promo_code_batch_cancel, promo_code_batch_generate
from promotions.codegen.spec import CODE_MAX_LENGTH, COUNT_MAX
from promotions.selectors import promotion_get
from promotions_site.auth import request_org


class PromoCodeGenerateApi(APIView):
    """`POST /api_gateway/v1/promotions/{promotionId}/codes/generate`."""

    class InputSerializer(serializers.Serializer):
        count = serializers.IntegerField(min_value=1, max_value=COUNT_MAX)
        # 5 to 40 is the service's rule (903 / 904, Capillary's codes), not a generic 400.
        length = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=1000)
        charset = serializers.ChoiceField(["ALPHANUMERIC", "NUMERIC", "CUSTOM"], default="ALPHANUMERIC")
        alphabet = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
        prefix = serializers.CharField(
            max_length=CODE_MAX_LENGTH, required=False, allow_blank=True, default=""
        )
        suffix = serializers.CharField(
            max_length=CODE_MAX_LENGTH, required=False, allow_blank=True, default=""
        )
        pattern = serializers.CharField(
            max_length=CODE_MAX_LENGTH, required=False, allow_blank=True, default=""
        )
        requestId = serializers.CharField(max_length=100, required=False)

    @schema.promo_code_generate(request=InputSerializer)
    def post(self, request, promotion_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        batch = promo_code_batch_generate(
            promotion=promotion,
            params=generation_params(
                count=data["count"],
                length=data.get("length"),
                charset=data["charset"],
                alphabet=data["alphabet"],
                prefix=data["prefix"],
                suffix=data["suffix"],
                pattern=data["pattern"],
            ),
            request_id=data.get("requestId"),
            actor=Actor.for_api_client(request.user),
        )
        return Response(PROMO_CODE_BATCH_RESPONSE.render(batch))


class PromoCodeBatchApi(APIView):
    """`GET /api_gateway/v1/promotions/{promotionId}/codes/batches/{batchId}`: a batch's progress."""

    @schema.promo_code_batch_get
    def get(self, request, promotion_id: str, batch_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        return Response(
            PROMO_CODE_BATCH_RESPONSE.render(promo_code_batch_get(promotion=promotion, batch_id=batch_id))
        )


class PromoCodeBatchCancelApi(APIView):
    """`POST /api_gateway/v1/promotions/{promotionId}/codes/batches/{batchId}/cancel`."""

    @schema.promo_code_batch_cancel
    def post(self, request, promotion_id: str, batch_id: str):
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        batch = promo_code_batch_get(promotion=promotion, batch_id=batch_id)
        batch = promo_code_batch_cancel(batch=batch, actor=Actor.for_api_client(request.user))
        return Response(PROMO_CODE_BATCH_RESPONSE.render(batch))
