"""`POST /api_gateway/v1/promotions/{promotionId}/issueBulk`: issue a cart promotion to many customers."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.audit import Actor
from promotions.selectors import promotion_get
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode, PromotionError
from wallets import schema
from wallets.identifiers import parse_long_id
from wallets.serializers import issue_bulk_body
from wallets.services import earned_promotions_issue


def parse_customer_ids(body) -> list[int]:
    """The issueBulk body: a non-empty JSON array of customer ids (integers, or strings of digits).

    Errors: 400 when the body is not an array or is longer than the cap; 1006 when it is empty or
    holds a null or anything that is not a positive integer id.
    """
    if not isinstance(body, list):
        raise PromotionError(ErrorCode.BAD_REQUEST, "The body must be a JSON array of customer ids.")
    if not body:
        raise PromotionError(ErrorCode.INVALID_CUSTOMER_IDENTIFIER, "The customer IDs array is empty.")
    if len(body) > settings.ISSUE_BULK_MAX_CUSTOMERS:
        raise PromotionError(
            ErrorCode.BAD_REQUEST, f"At most {settings.ISSUE_BULK_MAX_CUSTOMERS} customer ids per request."
        )
    ids = []
    for item in body:
        item = parse_long_id(item)
        if item is None:
            raise PromotionError(
                ErrorCode.INVALID_CUSTOMER_IDENTIFIER,
                "Invalid customer identifier. The customer IDs array contains null values or invalid identifiers.",
            )
        ids.append(item)
    return list(dict.fromkeys(ids))


class IssueBulkApi(APIView):
    """`POST /api_gateway/v1/promotions/{promotionId}/issueBulk?contextId=`."""

    class QuerySerializer(serializers.Serializer):
        contextId = serializers.CharField(
            max_length=255,
            help_text=(
                "Identifies this issuance; echoed as earnedFromId. A retry with the same contextId "
                "returns the same instances and creates none."
            ),
        )

    @schema.issue_bulk(query=QuerySerializer)
    def post(self, request, promotion_id: str):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        promotion = promotion_get(org=request_org(request), promotion_id=promotion_id)
        customer_ids = parse_customer_ids(request.data)
        outcome = earned_promotions_issue(
            promotion=promotion,
            customer_ids=customer_ids,
            context_id=query.validated_data["contextId"],
            actor=Actor.for_api_client(request.user),
        )
        return Response(issue_bulk_body(promotion=promotion, customer_ids=customer_ids, outcome=outcome))
