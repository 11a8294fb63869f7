"""`POST /api_gateway/v1/promotions/{promotionId}/activate?customerId=` and `/deactivate`: a customer's
opt-in to a promotion that requires it. The same addresses answer `PUT` (the org-level activation of
`promotions.apis`): these views extend those with the customer-level `POST`."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.response import Response

from promotions.apis import PromotionActivateApi, PromotionDeactivateApi
from promotions.audit import Actor
from promotions.selectors import promotion_get
from promotions.serializers import BOOLEAN_RESPONSE
from promotions_site.auth import request_org
from wallets import schema
from wallets.selectors import customer_get
from wallets.services import promotion_activation_set


class ActivationQuerySerializer(serializers.Serializer):
    customerId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    earnId = serializers.CharField(
        max_length=255,
        required=False,
        help_text="The earned instance (earnedPromotionId): required for PAYMENT_VOUCHER promotions, "
        "refused for DISCOUNT ones.",
    )


def _activation_set(request, promotion_id: str, *, activate: bool) -> Response:
    query = ActivationQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    org = request_org(request)
    promotion = promotion_get(org=org, promotion_id=promotion_id)
    customer = customer_get(org=org, customer_id=query.validated_data["customerId"])
    promotion_activation_set(
        customer=customer,
        promotion=promotion,
        earn_id=query.validated_data.get("earnId"),
        activate=activate,
        actor=Actor.for_api_client(request.user),
    )
    return Response(BOOLEAN_RESPONSE.render(True))


class PromotionActivationApi(PromotionActivateApi):
    """`PUT .../{promotionId}/activate` (org level, inherited) and `POST ...?customerId=` (customer)."""

    @schema.promotion_customer_activate(query=ActivationQuerySerializer)
    def post(self, request, promotion_id: str):
        return _activation_set(request, promotion_id, activate=True)


class PromotionDeactivationApi(PromotionDeactivateApi):
    """`PUT .../{promotionId}/deactivate` (org level, inherited) and `POST ...?customerId=` (customer)."""

    @schema.promotion_customer_deactivate(query=ActivationQuerySerializer)
    def post(self, request, promotion_id: str):
        return _activation_set(request, promotion_id, activate=False)
