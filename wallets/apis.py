"""Wallet endpoints: issuing cart promotions to customers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.selectors import promotion_get
from promotions.services import Actor
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.schema import error_responses
from promotions_site.timefmt import to_epoch_ms
from wallets.services import earned_promotions_issue

ISSUE_BULK_MAX_CUSTOMERS = 10_000


def parse_customer_ids(body) -> list[int]:
    """The issueBulk body: a non-empty JSON array of customer ids (integers, or strings of digits).

    Errors: 400 when the body is not an array or is longer than the cap; 1006 when it is empty or
    holds a null or anything that is not a positive integer id.
    """
    if not isinstance(body, list):
        raise PromotionError(ErrorCode.BAD_REQUEST, "The body must be a JSON array of customer ids.")
    if not body:
        raise PromotionError(ErrorCode.INVALID_CUSTOMER_IDENTIFIER, "The customer IDs array is empty.")
    if len(body) > ISSUE_BULK_MAX_CUSTOMERS:
        raise PromotionError(
            ErrorCode.BAD_REQUEST, f"At most {ISSUE_BULK_MAX_CUSTOMERS} customer ids per request."
        )
    ids = []
    for item in body:
        if isinstance(item, str) and item.isascii() and item.isdigit() and len(item) <= 18:
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**63:
            raise PromotionError(
                ErrorCode.INVALID_CUSTOMER_IDENTIFIER,
                "Invalid customer identifier. The customer IDs array contains null values or invalid identifiers.",
            )
        ids.append(item)
    return list(dict.fromkeys(ids))


class IssueBulkApi(APIView):
    """`POST /api_gateway/v1/promotions/{promotionId}/issueBulk?contextId=`."""

    class QuerySerializer(serializers.Serializer):
        contextId = serializers.CharField(max_length=255)

    IssuedSerializer = inline_serializer(
        "IssuedPromotion",
        {
            "id": serializers.CharField(),
            "customerId": serializers.IntegerField(),
            "promotionId": serializers.CharField(),
            "earnedFromId": serializers.CharField(),
            "eventTime": serializers.IntegerField(),
            "validTill": serializers.IntegerField(),
        },
    )
    OutputSerializer = inline_serializer(
        "IssueBulkResponse",
        {
            "data": serializers.DictField(child=IssuedSerializer),
            "errors": inline_serializer(
                "IssueBulkError",
                {
                    "customerId": serializers.IntegerField(),
                    "code": serializers.IntegerField(),
                    "message": serializers.CharField(),
                },
                many=True,
                required=False,
            ),
        },
    )

    @extend_schema(
        operation_id="promotion_issue_bulk",
        tags=["Issuing and earning"],
        parameters=[
            OpenApiParameter(
                "contextId",
                str,
                required=True,
                description="Identifies this issuance; echoed as earnedFromId. A retry with the same contextId returns the same instances and creates none.",
            )
        ],
        request={
            "application/json": {
                "type": "array",
                "items": {"type": "integer", "format": "int64"},
                "minItems": 1,
                "maxItems": ISSUE_BULK_MAX_CUSTOMERS,
            }
        },
        responses={
            200: OutputSerializer,
            **error_responses(
                ErrorCode.BAD_REQUEST,
                ErrorCode.INVALID_CUSTOMER_IDENTIFIER,
                ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
                ErrorCode.PROMOTION_EXPIRED,
                ErrorCode.UNSUPPORTED_PROMOTION_TYPE,
                ErrorCode.PROMOTION_NOT_RUNNING,
                ErrorCode.FORBIDDEN,
                ErrorCode.NOT_FOUND,
            ),
        },
        examples=[
            OpenApiExample("Request", value=[564332013], request_only=True),
            OpenApiExample(
                "Response",
                value={
                    "data": {
                        "564332013": {
                            "id": "68230a3af1ebc84977d9ea2c",
                            "customerId": 564332013,
                            "promotionId": "67f3832ab206f929966adf81",
                            "earnedFromId": "2 items in cart",
                            "eventTime": 1747126842954,
                            "validTill": 1748716199999,
                        }
                    }
                },
                response_only=True,
            ),
            OpenApiExample(
                "Partial success",
                value={
                    "data": {},
                    "errors": [{"customerId": 1, "code": 1007, "message": "Customer not found."}],
                },
                response_only=True,
            ),
        ],
        description=(
            "Issues a CUSTOMER or EARNING cart promotion to each customer (other types: 707). Duplicate "
            "ids in one request are issued once. Customers that cannot be issued are listed in a top-level "
            "`errors` array, present only when not empty, next to the successes: 1007 unknown customer, "
            "713 the contextId was used by an earn of another earnedFromType, 708 the customer already "
            "holds `maxIssuancePerCustomer` issued instances. Request-level faults write nothing: 1006 "
            "(empty array, nulls, non-integer ids), 400 (not an array, more than 10,000 ids, no contextId), "
            "404, 706 ended, 709 inactive or not started, 705 org over its active-promotion cap. "
            "`validTill` is the promotion's end."
        ),
    )
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
        data = {}
        for customer_id in customer_ids:
            instance = outcome.issued.get(customer_id)
            if instance is not None:
                data[str(customer_id)] = {
                    "id": instance.id,
                    "customerId": customer_id,
                    "promotionId": promotion.pk,
                    "earnedFromId": instance.earned_from_id,
                    "eventTime": to_epoch_ms(instance.event_time),
                    "validTill": to_epoch_ms(instance.valid_till),
                }
        body = {"data": data}
        if outcome.errors:
            body["errors"] = outcome.errors
        return Response(body)
