"""Earning: `POST /api_gateway/v1/promotions/earn/bulk` (several promotions for one customer) and
`POST /api_gateway/v1/promotions/{promotionId}/earn` (one)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.selectors import promotion_get
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.limits import StoredAsSentMixin
from wallets import schema
from wallets.selectors import customer_get
from wallets.serializers import EARN_BULK_RESPONSE, EARN_RESPONSE, EarnInputSerializer
from wallets.services import EarnRequest, earned_promotions_earn

EARN_BULK_MAX_ENTRIES = 100
EARN_COUNT_MAX = 100


class EarnBulkApi(APIView):
    """`POST /api_gateway/v1/promotions/earn/bulk`: one customer earns several promotions."""

    class InputSerializer(EarnInputSerializer):
        class EntrySerializer(serializers.Serializer):
            promotionId = serializers.CharField(max_length=24)
            earnCount = serializers.IntegerField(min_value=1, max_value=EARN_COUNT_MAX)
            earnedFromId = serializers.CharField(max_length=255)

        orgId = serializers.IntegerField(required=False)
        earnedPromotions = EntrySerializer(
            many=True,
            allow_empty=False,
            max_length=EARN_BULK_MAX_ENTRIES,
            help_text="Each (promotionId, earnedFromId) pair at most once.",
        )

        def validate_earnedPromotions(self, entries):
            keys = [(e["promotionId"], e["earnedFromId"]) for e in entries]
            if len(keys) != len(set(keys)):
                raise serializers.ValidationError("Each (promotionId, earnedFromId) may appear once.")
            return entries

    @schema.earn_bulk(request=InputSerializer)
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        org = request_org(request)
        if data.get("orgId") not in (None, org.pk):
            raise PromotionError(ErrorCode.BAD_REQUEST, "orgId does not match the org of the credentials.")
        customer = customer_get(org=org, customer_id=data["customerId"])
        requests = [
            EarnRequest(
                promotion=promotion_get(org=org, promotion_id=entry["promotionId"]),
                earn_count=entry["earnCount"],
                earned_from_id=entry["earnedFromId"],
            )
            for entry in data["earnedPromotions"]
        ]
        outcomes = earned_promotions_earn(
            customer=customer,
            requests=requests,
            earned_from_type=data["earnedFromType"],
            event_time=data["event_time"],
            event_details=request.data["eventDetails"],
            actor=Actor.for_api_client(request.user),
        )
        return Response(EARN_BULK_RESPONSE.render(outcomes))


class EarnApi(APIView):
    """`POST /api_gateway/v1/promotions/{promotionId}/earn`: one earn for one customer."""

    class InputSerializer(EarnInputSerializer):
        class SupplementaryCriteriaSerializer(StoredAsSentMixin, serializers.Serializer):
            loyaltyProgramId = serializers.IntegerField()
            programType = serializers.ChoiceField(choices=["TIER", "SUBSCRIPTION"])
            partnerProgramId = serializers.IntegerField()

        earnedFromId = serializers.CharField(max_length=255)
        supplementaryCriteria = SupplementaryCriteriaSerializer(required=False)

    @schema.earn(request=InputSerializer)
    def post(self, request, promotion_id: str):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        org = request_org(request)
        promotion = promotion_get(org=org, promotion_id=promotion_id)
        customer = customer_get(org=org, customer_id=data["customerId"])
        details = dict(request.data["eventDetails"])
        if "supplementaryCriteria" in request.data:
            details["supplementaryCriteria"] = request.data["supplementaryCriteria"]
        [outcome] = earned_promotions_earn(
            customer=customer,
            requests=[EarnRequest(promotion=promotion, earn_count=1, earned_from_id=data["earnedFromId"])],
            earned_from_type=data["earnedFromType"],
            event_time=data["event_time"],
            event_details=details,
            actor=Actor.for_api_client(request.user),
            all_or_nothing=True,
        )
        return Response(EARN_RESPONSE.render(outcome.instances[0]))
