"""`/api_gateway/v1/promotions/customers`: create a customer (POST) and look one up (GET)."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.http import Http404
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions_site.auth import request_org
from promotions_site.idempotency import idempotent
from wallets import schema
from wallets.identifiers import (
    IDENTIFIER_NAMES,
    MOBILE_PATTERN,
    SOURCES,
    email_normalize,
    mobile_normalize,
)
from wallets.selectors import customer_get_by_identifier
from wallets.serializers import CUSTOMER_RESPONSE, StrictCharField
from wallets.services import customer_create

MOBILE_INVALID = "Must be 8 to 15 digits, optionally after a leading +."


class CustomerCreateApi(APIView):
    """`POST /api_gateway/v1/promotions/customers`: create a customer of the caller's org."""

    @extend_schema_serializer(component_name="CustomerCreate")
    class InputSerializer(serializers.Serializer):
        mobile = StrictCharField(
            required=False,
            allow_null=True,
            max_length=20,
            validators=[RegexValidator(MOBILE_PATTERN, message=MOBILE_INVALID)],
            help_text="8 to 15 digits with the country code, an optional leading +. Unique in the org.",
        )
        email = serializers.EmailField(
            required=False, allow_null=True, max_length=254, help_text="Unique in the org, in any case."
        )
        externalId = StrictCharField(
            required=False, allow_null=True, max_length=100, help_text="Unique in the org."
        )
        firstName = StrictCharField(required=False, allow_blank=True, max_length=100, default="")
        lastName = StrictCharField(required=False, allow_blank=True, max_length=100, default="")
        source = serializers.ChoiceField(choices=SOURCES, default="INSTORE")

        def validate_mobile(self, value):
            if value is None:
                return None
            mobile = mobile_normalize(value)
            if mobile is None:
                raise serializers.ValidationError(MOBILE_INVALID)
            return mobile

        def validate_email(self, value):
            return None if value is None else email_normalize(value)

    @schema.customer_create(request=InputSerializer)
    @idempotent
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        customer = customer_create(
            org=request_org(request),
            mobile=data.get("mobile"),
            email=data.get("email"),
            external_id=data.get("externalId"),
            first_name=data["firstName"],
            last_name=data["lastName"],
            source=data["source"],
            actor=Actor.for_api_client(request.user),
        )
        return Response(CUSTOMER_RESPONSE.render(customer), status=status.HTTP_201_CREATED)


class CustomerGetApi(APIView):
    """`GET /api_gateway/v1/promotions/customers?identifierName=&identifierValue=`."""

    class QuerySerializer(serializers.Serializer):
        identifierName = serializers.ChoiceField(choices=IDENTIFIER_NAMES)
        identifierValue = serializers.CharField(max_length=254)

    @schema.customer_get(query=QuerySerializer)
    def get(self, request):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        customer = customer_get_by_identifier(
            org=request_org(request),
            identifier_name=query.validated_data["identifierName"],
            identifier_value=query.validated_data["identifierValue"],
        )
        if customer is None:
            raise Http404("Customer not found")
        return Response(CUSTOMER_RESPONSE.render(customer))


class CustomersApi(CustomerGetApi, CustomerCreateApi):
    """`/customers`: Django routes one view per path, so the lookup (GET) and the create (POST) meet here."""
