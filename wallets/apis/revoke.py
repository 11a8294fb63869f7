"""`POST /api_gateway/v1/promotions/revokeEarn`: revoke a customer's unredeemed earned promotions."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions_site.auth import request_org
from promotions_site.idempotency import idempotent
from wallets import schema
from wallets.selectors import customer_get
from wallets.serializers import REVOKE_EARN_MAX_IDS, revoke_earn_body
from wallets.services import RevokeRequest, earned_promotions_revoke


class RevokeEarnApi(APIView):
    """`POST /api_gateway/v1/promotions/revokeEarn`: revoke a customer's unredeemed earned promotions."""

    class InputSerializer(serializers.Serializer):
        class EntrySerializer(serializers.Serializer):
            promotionId = serializers.CharField(max_length=255)
            earnIds = serializers.ListField(
                child=serializers.CharField(max_length=255, allow_blank=True),
                allow_empty=False,
                max_length=REVOKE_EARN_MAX_IDS,
            )

        customerId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        earnRevokeDetails = EntrySerializer(
            many=True,
            allow_empty=False,
            max_length=REVOKE_EARN_MAX_IDS,
            help_text=f"Each promotionId at most once; at most {REVOKE_EARN_MAX_IDS} earnIds in total.",
        )

        def validate_earnRevokeDetails(self, entries):
            if sum(len(entry["earnIds"]) for entry in entries) > REVOKE_EARN_MAX_IDS:
                raise serializers.ValidationError(f"At most {REVOKE_EARN_MAX_IDS} earnIds per request.")
            promotion_ids = [entry["promotionId"] for entry in entries]
            if len(promotion_ids) != len(set(promotion_ids)):
                raise serializers.ValidationError("Each promotionId may appear once.")
            return entries

    @schema.revoke_earn(request=InputSerializer)
    @idempotent
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        customer = customer_get(org=request_org(request), customer_id=data["customerId"])
        outcome = earned_promotions_revoke(
            customer=customer,
            details=[RevokeRequest(e["promotionId"], e["earnIds"]) for e in data["earnRevokeDetails"]],
            actor=Actor.for_api_client(request.user),
        )
        return Response(revoke_earn_body(customer=customer, outcome=outcome))
