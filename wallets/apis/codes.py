"""`GET /api_gateway/v1/promotions/code` (look codes up) and `POST /api_gateway/v1/promotions/code/link`
(link a code to a customer); docs/code-link.md."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.code_guard import code_guess_check, code_guess_record
from promotions.models import PromotionMode
from promotions_site.auth import request_org
from promotions_site.idempotency import idempotent
from wallets import schema
from wallets.selectors import (
    CODE_LOOKUP_MAX,
    CodeRecord,
    code_restrictions,
    codes_normalize,
    promo_codes_look_up,
)
from wallets.serializers import PROMO_CODE_LINK_RESPONSE, promo_code_lookup_body
from wallets.services import PromoCodeUnknown, promo_code_link

# What a code field may hold as sent; a code is at most 40 characters, so a longer one is unknown.
CODE_TEXT_MAX = 255


class PromoCodeLookupApi(APIView):
    """`GET /api_gateway/v1/promotions/code?codes=&mode=[&includeRedemptions=]`: the org's promo codes."""

    class QuerySerializer(serializers.Serializer):
        codes = serializers.CharField(
            max_length=CODE_LOOKUP_MAX * (CODE_TEXT_MAX + 1),
            help_text=f"Comma-separated promo codes, case-insensitive, at most {CODE_LOOKUP_MAX}.",
        )
        mode = serializers.ChoiceField(choices=PromotionMode.values)
        includeRedemptions = serializers.BooleanField(
            default=False, help_text="Accepted; `restrictions` are always shown (docs/code-link.md)."
        )

        def validate_codes(self, value):
            codes = codes_normalize(value.split(","))
            if not codes:
                raise serializers.ValidationError("Send at least one code.")
            if len(codes) > CODE_LOOKUP_MAX:
                raise serializers.ValidationError(f"At most {CODE_LOOKUP_MAX} codes per request.")
            if any(len(code) > CODE_TEXT_MAX for code in codes):
                raise serializers.ValidationError(f"A code has at most {CODE_TEXT_MAX} characters.")
            return codes

    @schema.promo_code_lookup(query=QuerySerializer)
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        code_guess_check(request.user)
        records, unknown = promo_codes_look_up(
            org=request_org(request), codes=query.validated_data["codes"], mode=query.validated_data["mode"]
        )
        code_guess_record(request.user, None, len(unknown), codes=unknown)
        return Response(promo_code_lookup_body(records, unknown))


class PromoCodeLinkApi(APIView):
    """`POST /api_gateway/v1/promotions/code/link`: link a promo code to one customer."""

    class InputSerializer(serializers.Serializer):
        customerId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        code = serializers.CharField(max_length=CODE_TEXT_MAX, help_text="The code, case-insensitive.")
        mode = serializers.ChoiceField(choices=PromotionMode.values)

    @schema.promo_code_link(request=InputSerializer)
    @idempotent
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        customer_id = data["customerId"]
        code_guess_check(request.user, customer_id)
        org, now = request_org(request), timezone.now()
        code = codes_normalize([data["code"]])[0]
        try:
            linked = promo_code_link(
                org=org,
                customer_id=customer_id,
                code=code,
                mode=data["mode"],
                actor=Actor.for_api_client(request.user),
                now=now,
            )
        except PromoCodeUnknown:
            code_guess_record(request.user, customer_id, 1, codes=[code])
            raise
        code_guess_record(request.user, customer_id, 0)
        record = CodeRecord(linked, code_restrictions(org=org, codes=[linked], now=now).get(linked.pk, {}))
        return Response(PROMO_CODE_LINK_RESPONSE.render(record))
