"""The app's URLs plus `POST /api_gateway/v1/bench/bare`: bench/redeem.py's "app stack" endpoint, a write
like the reference's (bench/_app/reference_urls.py: one conditional UPDATE of a counter, one INSERT,
here an audit event) behind the app's whole stack."""

from django.db import transaction
from django.db.models import F
from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor, audit_event_record
from promotions_site.urls import urlpatterns as app_urlpatterns
from redemptions.models import RedemptionCounter


class BareWriteApi(APIView):
    """One conditional UPDATE of a limit counter and one INSERT, in one transaction.

    The same authentication and permission classes as every app view (DRF's defaults from the
    app's settings), the same parser and renderer, the same middleware: what a redemption costs
    beyond this is the redemption's own work. 409 when the counter is full (the bench treats it
    as an error: its limit is set out of reach).
    """

    class InputSerializer(serializers.Serializer):
        counterId = serializers.IntegerField()

    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        counter_id = payload.validated_data["counterId"]
        with transaction.atomic():
            taken = RedemptionCounter.objects.filter(
                pk=counter_id, org_id=request.user.org_id, used__lt=F("limit")
            ).update(used=F("used") + 1)
            if taken:
                audit_event_record(
                    org=request.user.org_id,
                    actor=Actor.for_api_client(request.user),
                    action="bench.bare",
                    object_type="RedemptionCounter",
                    object_id=counter_id,
                )
        if not taken:
            return Response({"data": None, "errors": [{"code": 409, "message": "full"}]}, status=409)
        return Response({"data": {"counterId": counter_id, "taken": 1}, "errors": []})


urlpatterns = [
    *app_urlpatterns,
    path("api_gateway/v1/bench/bare", BareWriteApi.as_view(), name="bench-bare"),
]
