"""Wallet endpoints: issuing and earning cart promotions."""

from __future__ import annotations

import functools

from django.http import Http404
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
from wallets.examples import (
    EARN_BULK_REQUEST_EXAMPLE,
    EARN_BULK_RESPONSE_EXAMPLE,
    EARN_REQUEST_EXAMPLE,
    EARN_RESPONSE_EXAMPLE,
)
from wallets.models import Customer, EarnedPromotion
from wallets.serializers import EarnedPromotionSerializer, EventTimeInputSerializer, earned_promotion_data
from wallets.services import EarnRequest, earned_promotions_earn, earned_promotions_issue

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
        # The instances one call creates share their two times: convert each distinct time once.
        epoch_ms = functools.cache(to_epoch_ms)
        data = {}
        for customer_id in customer_ids:
            instance = outcome.issued.get(customer_id)
            if instance is not None:
                data[str(customer_id)] = {
                    "id": instance.id,
                    "customerId": customer_id,
                    "promotionId": promotion.pk,
                    "earnedFromId": instance.earned_from_id,
                    "eventTime": epoch_ms(instance.event_time),
                    "validTill": epoch_ms(instance.valid_till),
                }
        body = {"data": data}
        if outcome.errors:
            body["errors"] = outcome.errors
        return Response(body)


EARN_BULK_MAX_ENTRIES = 100
EARN_COUNT_MAX = 100
EARN_ERRORS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.NOT_FOUND,
    ErrorCode.FORBIDDEN,
    ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
    ErrorCode.PROMOTION_EXPIRED,
    ErrorCode.PROMOTION_NOT_RUNNING,
    ErrorCode.EARN_NOT_SUPPORTED,
)


def _customer_get(org, customer_id: int) -> Customer:
    customer = Customer.objects.for_org(org).select_related("org").filter(pk=customer_id).first()
    if customer is None:
        raise Http404("Customer not found")
    return customer


class EarnBulkApi(APIView):
    """`POST /api_gateway/v1/promotions/earn/bulk`: one customer earns several promotions."""

    class InputSerializer(EventTimeInputSerializer):
        class EventDetailsSerializer(serializers.Serializer):
            id = serializers.CharField(max_length=255)
            type = serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values)
            eventPayload = serializers.JSONField(required=False)

        class EntrySerializer(serializers.Serializer):
            promotionId = serializers.CharField(max_length=24)
            earnCount = serializers.IntegerField(min_value=1, max_value=EARN_COUNT_MAX)
            earnedFromId = serializers.CharField(max_length=255)

        orgId = serializers.IntegerField(required=False)
        customerId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        earnedFromType = serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values)
        eventDetails = EventDetailsSerializer()
        earnedPromotions = EntrySerializer(many=True, allow_empty=False, max_length=EARN_BULK_MAX_ENTRIES)

        def validate_earnedPromotions(self, entries):
            keys = [(e["promotionId"], e["earnedFromId"]) for e in entries]
            if len(keys) != len(set(keys)):
                raise serializers.ValidationError("Each (promotionId, earnedFromId) may appear once.")
            return entries

    EntryResultSerializer = inline_serializer(
        "EarnBulkResult",
        many=True,
        fields={
            "earnedFromId": serializers.CharField(),
            "promotionId": serializers.CharField(),
            "successfulEarnCount": serializers.IntegerField(),
            "failedEarnCount": serializers.IntegerField(),
            "errorDetails": inline_serializer(
                "EarnErrorDetails",
                {"errorCode": serializers.IntegerField(), "errorMessages": serializers.CharField()},
                required=False,
            ),
            "customerEarnedPromotions": EarnedPromotionSerializer(many=True),
        },
    )
    OutputSerializer = inline_serializer(
        "EarnBulkResponse", {"data": EntryResultSerializer, "errors": serializers.ListField()}
    )

    @extend_schema(
        operation_id="promotion_earn_bulk",
        tags=["Issuing and earning"],
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(*EARN_ERRORS)},
        examples=[
            OpenApiExample("Request", value=EARN_BULK_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Response", value=EARN_BULK_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "Creates `earnCount` instances of each promotion for the customer. EARNING and REWARD "
            "promotions can be earned; other types answer 714 for the whole request. One entry of `data` "
            "per entry of `earnedPromotions`, in request order. Idempotent per (customer, promotion, "
            "earnedFromId): a replay returns the instances created the first time and creates none. "
            "Per entry, `failedEarnCount` counts instances refused and `errorDetails` says why: 708 "
            "beyond `maxEarningPerCustomer`, 713 the earnedFromId was used with another earnedFromType. "
            "`eventTimeISO` (with offset) or `eventTime` (epoch ms) is required, at most 24 h ahead and "
            "inside the promotion's period. ISO fields in responses are in the server time zone. "
            "`validTill` = min(endDate, end of day in the org's zone of eventTime + the promotion's "
            "earned-validity days), or endDate when it has none. At most 100 entries, earnCount 1 to 100."
        ),
    )
    def post(self, request):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        org = request_org(request)
        if data.get("orgId") not in (None, org.pk):
            raise PromotionError(ErrorCode.BAD_REQUEST, "orgId does not match the org of the credentials.")
        customer = _customer_get(org, data["customerId"])
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
        results = []
        for outcome in outcomes:
            result = {
                "earnedFromId": outcome.request.earned_from_id,
                "promotionId": outcome.request.promotion.pk,
                "successfulEarnCount": len(outcome.instances),
                "failedEarnCount": outcome.failed,
            }
            if outcome.error is not None:
                result["errorDetails"] = {
                    "errorCode": int(outcome.error),
                    "errorMessages": outcome.error.message,
                }
            result["customerEarnedPromotions"] = [earned_promotion_data(i) for i in outcome.instances]
            results.append(result)
        return Response({"data": results, "errors": []})


class EarnApi(APIView):
    """`POST /api_gateway/v1/promotions/{promotionId}/earn`: one earn for one customer."""

    class InputSerializer(EventTimeInputSerializer):
        class EventDetailsSerializer(serializers.Serializer):
            id = serializers.CharField(max_length=255)
            type = serializers.ChoiceField(
                choices=["TransactionAdd", "CustomerRegistration", "CustomerUpdate"]
            )
            eventPayload = serializers.JSONField(required=False)

        class SupplementaryCriteriaSerializer(serializers.Serializer):
            loyaltyProgramId = serializers.IntegerField()
            programType = serializers.ChoiceField(choices=["TIER", "SUBSCRIPTION"])
            partnerProgramId = serializers.IntegerField()

        customerId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        earnedFromType = serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values)
        earnedFromId = serializers.CharField(max_length=255)
        eventDetails = EventDetailsSerializer()
        supplementaryCriteria = SupplementaryCriteriaSerializer(required=False)

    OutputSerializer = inline_serializer(
        "EarnResponse", {"data": EarnedPromotionSerializer(), "errors": serializers.ListField()}
    )

    @extend_schema(
        operation_id="promotion_earn",
        tags=["Issuing and earning"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                *EARN_ERRORS, ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED, ErrorCode.EARNED_FROM_TYPE_CHANGED
            ),
        },
        examples=[
            OpenApiExample("Request", value=EARN_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Response", value=EARN_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "One instance of an EARNING or REWARD promotion for the customer (other types: 714). "
            "Idempotent per (customer, promotion, earnedFromId): a replay returns the same instance; a "
            "replay with another earnedFromType is 409 with code 713. 409 with code 708 when the customer "
            "already holds `maxEarningPerCustomer` instances. eventTime may be up to 24 h in the future."
        ),
    )
    def post(self, request, promotion_id: str):
        payload = self.InputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        org = request_org(request)
        promotion = promotion_get(org=org, promotion_id=promotion_id)
        customer = _customer_get(org, data["customerId"])
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
        )
        if outcome.error is not None:
            raise PromotionError(outcome.error)
        return Response({"data": earned_promotion_data(outcome.instances[0]), "errors": []})
