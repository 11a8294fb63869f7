"""`POST /bare/evaluate`: the evaluate endpoint's JSON work and nothing else, outside the app's stack.

It parses the same cart, validates it with a plain DRF serializer of the same fields, and renders an
answer of the evaluate answer's size and keys (each line echoed with a referenceId and no promotions):
no middleware, no authentication, no database, no engine. What evaluate costs beyond this is the app's
stack (authentication, request logs, the error envelope), its reads and write, and the engine.
"""

import uuid

from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

MONEY = {"max_digits": 18, "decimal_places": 6, "coerce_to_string": False}


class BareCartItem(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    amount = serializers.DecimalField(**MONEY)
    qty = serializers.DecimalField(**MONEY)
    discount = serializers.DecimalField(required=False, allow_null=True, **MONEY)
    categoryList = serializers.ListField(child=serializers.CharField(), required=False)
    brandList = serializers.ListField(child=serializers.CharField(), required=False)


class BareCart(serializers.Serializer):
    amount = serializers.DecimalField(**MONEY)
    customerId = serializers.IntegerField(required=False, allow_null=True)
    cartItems = BareCartItem(many=True)
    cartTenders = serializers.ListField(child=serializers.DictField(), required=False)


class BareEvaluateApi(APIView):
    authentication_classes = []
    permission_classes = []

    def post(self, request):
        cart = BareCart(data=request.data)
        cart.is_valid(raise_exception=True)
        data = cart.validated_data
        items = [
            {
                "referenceId": str(uuid.uuid4()),
                "sku": line["sku"],
                "amount": f"{line['amount']:.6f}",
                "qty": f"{line['qty']:.6f}",
                "discount": f"{line.get('discount') or 0:.6f}",
                "appliedPromotions": [],
            }
            for line in data["cartItems"]
        ]
        return Response(
            {
                "data": {
                    "amount": f"{data['amount']:.6f}",
                    "customerId": data.get("customerId") or -1,
                    "cartItems": items,
                    "evaluationId": uuid.uuid4().hex[:24],
                    "appliedPromotions": [],
                    "appliedPaymentVouchers": [],
                    "promoCodeEvaluationLogs": [],
                    "paymentVoucherEvaluationLogs": [],
                    "cartTenders": [],
                    "categoryHierarchySentInPayload": False,
                },
                "errors": [],
            }
        )


urlpatterns = [path("bare/evaluate", BareEvaluateApi.as_view())]
