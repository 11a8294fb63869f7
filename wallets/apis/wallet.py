"""`GET /api_gateway/v1/promotions/customer/{customerId}`: a customer's wallet."""

from __future__ import annotations

from django.db import connection
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions_site.auth import CachedClient, ClientStale, client_verify_afresh, request_org
from wallets import schema
from wallets.selectors import customer_get, wallet_get, wallet_read
from wallets.serializers import WALLET_LIMIT_DEFAULT, WALLET_LIMIT_MAX, WALLET_RESPONSE


class CustomerWalletApi(APIView):
    """`GET /api_gateway/v1/promotions/customer/{customerId}`: the cart promotions in a customer's wallet."""

    class QuerySerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1, max_value=WALLET_LIMIT_MAX, default=WALLET_LIMIT_DEFAULT
        )
        isIncludeActivePromotionsOnly = serializers.BooleanField(default=False)
        includeRedemptions = serializers.BooleanField(default=False)

    # The customer's query verifies the client the authentication served from its cache.
    client_verified_by_view = ("GET",)

    @schema.customer_wallet_get(query=QuerySerializer)
    def get(self, request, customer_id: int):
        if request.query_params:
            query = self.QuerySerializer(data=request.query_params)
            query.is_valid(raise_exception=True)
            params = query.validated_data
        else:
            params = _DEFAULT_QUERY
        options = {
            "limit": params["limit"],
            "active_only": params["isIncludeActivePromotionsOnly"],
            "include_redemptions": params["includeRedemptions"],
        }
        if connection.vendor == "postgresql":
            return Response(WALLET_RESPONSE.render(self._read(request, customer_id, options)))
        customer = customer_get(org=request_org(request), customer_id=customer_id)
        return Response(WALLET_RESPONSE.render(wallet_get(customer=customer, **options)))

    def _read(self, request, customer_id: int, options: dict):
        """PostgreSQL: the customer and its wallet in one statement, which also verifies a client the
        authentication served from its cache."""
        cached = request.auth if isinstance(request.auth, CachedClient) else None
        try:
            return wallet_read(
                org=request_org(request),
                customer_id=customer_id,
                client_id=request.user.pk,
                client_check=cached.check if cached else None,
                **options,
            )
        except ClientStale:
            # The cached client changed, or there is no such customer (404 only to a client verified
            # afresh): authenticate afresh (401, 403 now) and read again.
            client_verify_afresh(self, request)
            return wallet_read(org=request_org(request), customer_id=customer_id, **options)


# The query of a request without parameters, without running the serializer.
_DEFAULT_QUERY = {
    "limit": WALLET_LIMIT_DEFAULT,
    "isIncludeActivePromotionsOnly": False,
    "includeRedemptions": False,
}
