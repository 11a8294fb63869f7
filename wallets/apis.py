"""Wallet endpoints: issuing and earning cart promotions, customers, and the v2 loyalty issue."""

from __future__ import annotations

import functools

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from promotions.models import PromotionRestriction
from promotions.selectors import loyalty_program_get, loyalty_promotion_get, promotion_get
from promotions.services import Actor
from promotions_site.auth import request_org
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETERS, idempotent
from promotions_site.limits import StoredAsSentMixin
from promotions_site.schema import V2MessageSerializer, error_responses
from promotions_site.timefmt import to_epoch_ms, to_iso
from wallets.examples import (
    CUSTOMER_CREATE_REQUEST_EXAMPLE,
    CUSTOMER_RESPONSE_EXAMPLE,
    EARN_BULK_REQUEST_EXAMPLE,
    EARN_BULK_RESPONSE_EXAMPLE,
    EARN_REQUEST_EXAMPLE,
    EARN_RESPONSE_EXAMPLE,
    LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE,
    LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE,
    LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE,
    LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE,
    LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE,
    LOYALTY_ISSUE_REQUEST_EXAMPLE,
    LOYALTY_ISSUE_RESPONSE_EXAMPLE,
    REVOKE_EARN_REQUEST_EXAMPLE,
    REVOKE_EARN_RESPONSE_EXAMPLE,
    WALLET_RESPONSE_EXAMPLE,
)
from wallets.identifiers import IDENTIFIER_NAMES, SOURCES, email_normalize, mobile_normalize, parse_long_id
from wallets.models import EarnedPromotion
from wallets.selectors import (
    WALLET_LEVELS,
    RestrictionUsage,
    WalletEntry,
    customer_get,
    customer_get_by_identifier,
    wallet_get,
)
from wallets.serializers import (
    CustomerSerializer,
    EarnedPromotionSerializer,
    EventTimeInputSerializer,
    StrictCharField,
    customer_data,
    earned_promotion_data,
)
from wallets.services import (
    EarnRequest,
    RevokeRequest,
    customer_create,
    earned_promotions_earn,
    earned_promotions_issue,
    earned_promotions_revoke,
    loyalty_promotion_issue,
)

# A setting (env ISSUE_BULK_MAX_CUSTOMERS); the schema shows the value the process started with.
ISSUE_BULK_MAX_CUSTOMERS = settings.ISSUE_BULK_MAX_CUSTOMERS


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
            "(empty array, nulls, non-integer ids), 400 (not an array, more than 10,000 ids by default "
            "(setting `ISSUE_BULK_MAX_CUSTOMERS`), no contextId), "
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


class EarnBulkApi(APIView):
    """`POST /api_gateway/v1/promotions/earn/bulk`: one customer earns several promotions."""

    class InputSerializer(EventTimeInputSerializer):
        class EventDetailsSerializer(StoredAsSentMixin, serializers.Serializer):
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
        customer = customer_get(org=org, customer_id=data["customerId"])
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
        class EventDetailsSerializer(StoredAsSentMixin, serializers.Serializer):
            id = serializers.CharField(max_length=255)
            type = serializers.ChoiceField(
                choices=["TransactionAdd", "CustomerRegistration", "CustomerUpdate"]
            )
            eventPayload = serializers.JSONField(required=False)

        class SupplementaryCriteriaSerializer(StoredAsSentMixin, serializers.Serializer):
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
        customer = customer_get(org=org, customer_id=data["customerId"])
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
            all_or_nothing=True,
        )
        return Response({"data": earned_promotion_data(outcome.instances[0]), "errors": []})


# --- The wallet: GET customer/{customerId} ---------------------------------------------------------

WALLET_LIMIT_DEFAULT = 10
WALLET_LIMIT_MAX = 100

WalletRestrictionSerializer = inline_serializer(
    "WalletRestriction",
    {
        "kpi": serializers.ChoiceField(choices=PromotionRestriction.Kpi.values),
        "maxLimit": serializers.CharField(help_text='The limit, as a string with 6 decimals ("2.000000").'),
        "remainingRedemption": serializers.FloatField(
            help_text="What is left: a whole number for REDEMPTION and TRANSACTION, an amount for DISCOUNT."
        ),
        "windowType": serializers.CharField(),
        "fixedWindowConfig": serializers.JSONField(allow_null=True),
    },
    many=True,
)


class CustomerWalletApi(APIView):
    """`GET /api_gateway/v1/promotions/customer/{customerId}`: the cart promotions in a customer's wallet."""

    class QuerySerializer(serializers.Serializer):
        limit = serializers.IntegerField(
            min_value=1, max_value=WALLET_LIMIT_MAX, default=WALLET_LIMIT_DEFAULT
        )
        isIncludeActivePromotionsOnly = serializers.BooleanField(default=False)
        includeRedemptions = serializers.BooleanField(default=False)

    ItemSerializer = inline_serializer(
        "WalletItem",
        {
            "earnedPromotionId": serializers.CharField(),
            "promotionId": serializers.CharField(),
            "promotionName": serializers.CharField(),
            "validTill": serializers.IntegerField(),
            "validTillISO": serializers.CharField(),
            "unlockedDate": serializers.IntegerField(allow_null=True),
            "unlockedDateISO": serializers.CharField(allow_null=True),
            "customerId": serializers.IntegerField(),
            "earnedType": serializers.ChoiceField(choices=EarnedPromotion.Kind.values),
            "earnedStatus": serializers.ChoiceField(choices=["LOCKED", "UNLOCKED"]),
            "promotionStatus": serializers.ChoiceField(choices=["ACTIVE", "INACTIVE"]),
            "applicationMode": serializers.CharField(),
            "redeemableFrom": serializers.IntegerField(),
            "redeemableFromISO": serializers.CharField(),
            "customFieldValues": serializers.JSONField(),
            "eventTime": serializers.IntegerField(),
            "eventTimeISO": serializers.CharField(),
            "supplementaryCriteria": serializers.JSONField(allow_null=True),
            "earnedFromType": serializers.ChoiceField(choices=EarnedPromotion.EarnedFromType.values),
            "earnedFromId": serializers.CharField(),
            "status": serializers.ChoiceField(choices=EarnedPromotion.Status.values),
            "restrictions": inline_serializer(
                "WalletRestrictions",
                {level.value: WalletRestrictionSerializer for level in WALLET_LEVELS},
                required=False,
                help_text="Only with includeRedemptions=true.",
            ),
        },
        many=True,
    )
    OutputSerializer = inline_serializer(
        "WalletResponse", {"data": ItemSerializer, "errors": serializers.ListField()}
    )

    @extend_schema(
        operation_id="customer_wallet_get",
        tags=["Wallet"],
        parameters=[QuerySerializer],
        responses={200: OutputSerializer, **error_responses(ErrorCode.BAD_REQUEST, ErrorCode.NOT_FOUND)},
        examples=[OpenApiExample("Response", value=WALLET_RESPONSE_EXAMPLE, response_only=True)],
        description=(
            "The CUSTOMER, EARNING and REWARD promotions issued to or earned by the customer, one item "
            "per instance, latest `validTill` first (then by `earnedPromotionId`), at most `limit` "
            f"items (default {WALLET_LIMIT_DEFAULT}, at most {WALLET_LIMIT_MAX}; no pagination). "
            "`isIncludeActivePromotionsOnly=true` keeps only ACTIVE instances still valid whose promotion "
            "is active and has not ended. `status` is the instance's (ACTIVE, REDEEMED, EXPIRED, REVOKED; "
            "an ACTIVE instance past `validTill` reads EXPIRED). `earnedType` is ISSUED (issueBulk) or "
            "EARNED (earn APIs). `earnedStatus` is LOCKED for an instance of an EARNING promotion that was "
            "issued and not yet earned, else UNLOCKED (`unlockedDate` = `eventTime`, null when LOCKED). "
            "`promotionStatus` is ACTIVE when the promotion is active and has not ended. "
            "`redeemableFrom` = `eventTime`. `includeRedemptions=true` adds `restrictions` per level: "
            "`maxLimit` and `remainingRedemption` counted from recorded redemptions, without reversed "
            "ones (REDEMPTION: redemption counts; TRANSACTION: transactions; DISCOUNT: discount); "
            "Customer = this customer's, Promotion = everyone's, Earn = this instance's; a Cart limit "
            "holds per transaction so all of it remains. Every window type is counted over the whole "
            "history. `includeSupplementaryPromotions` and `entityId` are accepted and ignored. "
            "404 for an unknown customer or another org's; 400 for a bad query parameter."
        ),
    )
    def get(self, request, customer_id: int):
        query = self.QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        customer = customer_get(org=request_org(request), customer_id=customer_id)
        entries = wallet_get(
            customer=customer,
            limit=params["limit"],
            active_only=params["isIncludeActivePromotionsOnly"],
            include_redemptions=params["includeRedemptions"],
        )
        items = [_wallet_item(entry, with_restrictions=params["includeRedemptions"]) for entry in entries]
        return Response({"data": items, "errors": []})


def _wallet_item(entry: WalletEntry, *, with_restrictions: bool) -> dict:
    instance, promotion = entry.instance, entry.instance.promotion
    unlocked = entry.earned_status == "UNLOCKED"
    details = instance.event_details if isinstance(instance.event_details, dict) else {}
    item = {
        "earnedPromotionId": instance.pk,
        "promotionId": promotion.pk,
        "promotionName": promotion.name,
        "validTill": to_epoch_ms(instance.valid_till),
        "validTillISO": to_iso(instance.valid_till),
        "unlockedDate": to_epoch_ms(instance.event_time) if unlocked else None,
        "unlockedDateISO": to_iso(instance.event_time) if unlocked else None,
        "customerId": instance.customer_id,
        "earnedType": instance.kind,
        "earnedStatus": entry.earned_status,
        "promotionStatus": entry.promotion_status,
        "applicationMode": promotion.mode,
        "redeemableFrom": to_epoch_ms(instance.event_time),
        "redeemableFromISO": to_iso(instance.event_time),
        "customFieldValues": promotion.custom_field_values,
        "eventTime": to_epoch_ms(instance.event_time),
        "eventTimeISO": to_iso(instance.event_time),
        "supplementaryCriteria": details.get("supplementaryCriteria"),
        "earnedFromType": instance.earned_from_type,
        "earnedFromId": instance.earned_from_id,
        "status": entry.status,
    }
    if with_restrictions:
        item["restrictions"] = {
            level: [_restriction_item(usage) for usage in usages]
            for level, usages in entry.restrictions.items()
        }
    return item


def _restriction_item(usage: RestrictionUsage) -> dict:
    restriction = usage.restriction
    remaining = usage.remaining
    return {
        "kpi": restriction.kpi,
        "maxLimit": f"{restriction.limit:.6f}",
        "remainingRedemption": float(remaining)
        if restriction.kpi == PromotionRestriction.Kpi.DISCOUNT
        else int(remaining),
        "windowType": restriction.window_type or "OVERALL",
        "fixedWindowConfig": restriction.fixed_window_config,
    }


# --- revokeEarn ------------------------------------------------------------------------------------

REVOKE_EARN_MAX_IDS = 1000


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
        earnRevokeDetails = EntrySerializer(many=True, allow_empty=False, max_length=REVOKE_EARN_MAX_IDS)

        def validate_earnRevokeDetails(self, entries):
            if sum(len(entry["earnIds"]) for entry in entries) > REVOKE_EARN_MAX_IDS:
                raise serializers.ValidationError(f"At most {REVOKE_EARN_MAX_IDS} earnIds per request.")
            promotion_ids = [entry["promotionId"] for entry in entries]
            if len(promotion_ids) != len(set(promotion_ids)):
                raise serializers.ValidationError("Each promotionId may appear once.")
            return entries

    OutputSerializer = inline_serializer(
        "RevokeEarnResponse",
        {
            "data": inline_serializer(
                "RevokeEarnResult",
                {
                    "customerId": serializers.IntegerField(),
                    "revokedDetails": inline_serializer(
                        "RevokedDetail",
                        {
                            "promotionId": serializers.CharField(),
                            "revokedEarnIds": serializers.ListField(child=serializers.CharField()),
                            "status": serializers.ChoiceField(choices=["SUCCESS"]),
                        },
                        many=True,
                    ),
                },
            ),
            "errors": inline_serializer(
                "RevokeEarnError",
                {
                    "promotionId": serializers.CharField(),
                    "code": serializers.IntegerField(),
                    "message": serializers.CharField(),
                },
                many=True,
            ),
        },
    )

    @extend_schema(
        operation_id="promotion_revoke_earn",
        tags=["Issuing and earning"],
        request=InputSerializer,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            200: OutputSerializer,
            **error_responses(
                ErrorCode.BAD_REQUEST,
                ErrorCode.FORBIDDEN,
                ErrorCode.NOT_FOUND,
                ErrorCode.EARN_ALREADY_REDEEMED,
                ErrorCode.EARN_REVOKE_NOT_SUPPORTED,
                ErrorCode.EARN_ID_INVALID,
                *IDEMPOTENCY_ERRORS,
            ),
        },
        examples=[
            OpenApiExample("Request", value=REVOKE_EARN_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Partial success", value=REVOKE_EARN_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "Revokes the listed instances (earned or issued) of each promotion for the customer; a "
            "revoked instance leaves the active wallet and can no longer be redeemed. Each entry of "
            "`earnRevokeDetails` is all or nothing: an entry is refused with 404 (unknown promotion, or "
            "another org's), 730 (POS or CODE promotion), 731 (an earn id that is not this customer's "
            "instance of this promotion: unknown, someone else's, malformed) or 729 (an instance already "
            "redeemed), and is then listed in `errors` as `{promotionId, code, message}` and not in "
            "`revokedDetails`; the other entries are revoked, and the answer is 200. When every entry is "
            "refused nothing is written and the answer has the first error's HTTP status, with every "
            "entry's error in `errors`. Revoking an instance already revoked is a no-op reported as "
            "revoked, so a retry is safe. Request-level faults write nothing: 400 (malformed body, empty "
            f"lists, more than {REVOKE_EARN_MAX_IDS} earnIds in total, a promotionId listed twice), 404 "
            "(unknown customer, or another org's), 403 (read-only API client). A revoked instance no "
            "longer counts towards maxIssuancePerCustomer or maxEarningPerCustomer. Accepts an "
            "`Idempotency-Key` header."
        ),
    )
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
        revoked = [
            {"promotionId": promotion_id, "revokedEarnIds": earn_ids, "status": "SUCCESS"}
            for promotion_id, earn_ids in outcome.revoked.items()
        ]
        return Response(
            {"data": {"customerId": customer.pk, "revokedDetails": revoked}, "errors": outcome.errors}
        )


# --- Customers -----------------------------------------------------------------------------------

CustomerEnvelope = inline_serializer(
    "CustomerResponse", {"data": CustomerSerializer(), "errors": serializers.ListField()}
)


class CustomerCreateApi(APIView):
    """`POST /api_gateway/v1/promotions/customers`: create a customer of the caller's org."""

    @extend_schema_serializer(component_name="CustomerCreate")
    class InputSerializer(serializers.Serializer):
        mobile = StrictCharField(required=False, allow_null=True, max_length=20)
        email = serializers.EmailField(required=False, allow_null=True, max_length=254)
        externalId = StrictCharField(required=False, allow_null=True, max_length=100)
        firstName = StrictCharField(required=False, allow_blank=True, max_length=100, default="")
        lastName = StrictCharField(required=False, allow_blank=True, max_length=100, default="")
        source = serializers.ChoiceField(choices=SOURCES, default="INSTORE")

        def validate_mobile(self, value):
            if value is None:
                return None
            mobile = mobile_normalize(value)
            if mobile is None:
                raise serializers.ValidationError("Must be 8 to 15 digits, optionally after a leading +.")
            return mobile

        def validate_email(self, value):
            return None if value is None else email_normalize(value)

    @extend_schema(
        operation_id="customer_create",
        tags=["Customers"],
        request=InputSerializer,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            201: CustomerEnvelope,
            **error_responses(
                ErrorCode.BAD_REQUEST, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT, *IDEMPOTENCY_ERRORS
            ),
        },
        examples=[
            OpenApiExample("Request", value=CUSTOMER_CREATE_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample(
                "Created", value=CUSTOMER_RESPONSE_EXAMPLE, response_only=True, status_codes=["201"]
            ),
            OpenApiExample(
                "Identifier taken",
                value={
                    "errors": [
                        {
                            "code": 409,
                            "message": "mobile 18767431754 is already used by another customer of this org.",
                        }
                    ]
                },
                response_only=True,
                status_codes=["409"],
            ),
        ],
        description=(
            "Creates a customer so a client can set up its own data (Capillary's customer API is not "
            "part of this service). At least one identifier (`mobile`, `email`, `externalId`) is "
            "required; each is unique in the org. `mobile`: 8 to 15 digits with the country code, an "
            "optional leading `+` (stored without it); `email` is stored lower-case; `externalId` at "
            "most 100 characters; `source` one of Capillary's sources (default INSTORE). An identifier "
            "already used by another customer of the org answers 409 naming it; nothing is written. "
            "Retry safely with an `Idempotency-Key` header."
        ),
    )
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
        return Response({"data": customer_data(customer), "errors": []}, status=status.HTTP_201_CREATED)


class CustomerGetApi(APIView):
    """`GET /api_gateway/v1/promotions/customers?identifierName=&identifierValue=`."""

    class QuerySerializer(serializers.Serializer):
        identifierName = serializers.ChoiceField(choices=IDENTIFIER_NAMES)
        identifierValue = serializers.CharField(max_length=254)

    @extend_schema(
        operation_id="customer_get",
        tags=["Customers"],
        parameters=[QuerySerializer],
        responses={200: CustomerEnvelope, **error_responses(ErrorCode.BAD_REQUEST, ErrorCode.NOT_FOUND)},
        examples=[OpenApiExample("Found", value=CUSTOMER_RESPONSE_EXAMPLE, response_only=True)],
        description=(
            "One customer of the caller's org by `mobile` (with or without `+`), `email` (any case), "
            "`externalId` or `id` (the customerId). 404 `Customer not found` when none matches, or "
            "when it is another org's."
        ),
    )
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
        return Response({"data": customer_data(customer), "errors": []})


class CustomersApi(CustomerGetApi, CustomerCreateApi):
    """`/customers`: Django routes one view per path, so the lookup (GET) and the create (POST) meet here."""


# --- POST /v2/promotion/issue --------------------------------------------------------------------

LOYALTY_SIDE_EFFECT_TYPE = "Points promotion"


def parse_loyalty_issue_query(params) -> tuple[str, str, str]:
    """`identifierName`, `identifierValue` and `source`, checked in the order Capillary documents them.

    Errors: 11013 any of the three missing or blank; 1212 `type` given and not CUSTOMER; 400 an
    `identifierName` or `source` outside the documented values. `accountId` is accepted and unused.
    """
    name, value, source = (
        params.get(key, "").strip() for key in ("identifierName", "identifierValue", "source")
    )
    if not (name and value and source):
        raise PromotionError(ErrorCode.MANDATORY_PARAMETERS_MISSING)
    entity_type = params.get("type", "").strip()
    if entity_type and entity_type != "CUSTOMER":
        raise PromotionError(ErrorCode.INVALID_ENTITY_TYPE)
    if name not in IDENTIFIER_NAMES:
        raise PromotionError(
            ErrorCode.BAD_REQUEST, f"identifierName must be one of: {', '.join(IDENTIFIER_NAMES)}."
        )
    if source not in SOURCES:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"source must be one of: {', '.join(SOURCES)}.")
    return name, value, source


class LoyaltyPromotionIssueApi(APIView):
    """`POST /v2/promotion/issue?identifierName=&identifierValue=&source=&type=&accountId=`."""

    InputSerializer = inline_serializer(
        "LoyaltyIssueRequest",
        {"programId": serializers.IntegerField(), "promotionId": serializers.IntegerField()},
    )
    OutputSerializer = inline_serializer(
        "LoyaltyIssueResponse",
        {
            "warnings": V2MessageSerializer(many=True),
            "errors": V2MessageSerializer(many=True),
            "sideEffects": inline_serializer(
                "LoyaltyIssueSideEffect",
                {
                    "programId": serializers.IntegerField(),
                    "issualId": serializers.IntegerField(),
                    "earnedId": serializers.IntegerField(allow_null=True),
                    "promotionId": serializers.IntegerField(),
                    "type": serializers.CharField(),
                },
                many=True,
            ),
        },
    )

    @extend_schema(
        operation_id="loyalty_promotion_issue",
        tags=["Loyalty promotions (v2)"],
        parameters=[
            OpenApiParameter("identifierName", str, required=True, enum=IDENTIFIER_NAMES),
            OpenApiParameter("identifierValue", str, required=True),
            OpenApiParameter("source", str, required=True, enum=SOURCES),
            OpenApiParameter("type", str, enum=["CUSTOMER"]),
            OpenApiParameter("accountId", str, description="Accepted for compatibility; not used."),
            *IDEMPOTENCY_PARAMETERS,
        ],
        request=InputSerializer,
        responses={
            200: OpenApiResponse(
                response=OutputSerializer,
                description="Issued (or enrolled); or not issued, with warning 8890 and no sideEffects.",
                examples=[
                    OpenApiExample("Response 200", value=LOYALTY_ISSUE_RESPONSE_EXAMPLE, response_only=True),
                    OpenApiExample(
                        "Not issued: config issues or limit",
                        value=LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE,
                        response_only=True,
                    ),
                ],
            ),
            **error_responses(
                ErrorCode.MANDATORY_PARAMETERS_MISSING,
                ErrorCode.INVALID_ENTITY_TYPE,
                ErrorCode.INVALID_PROGRAM_ID,
                ErrorCode.INVALID_LOYALTY_PROMOTION_ID,
                ErrorCode.CUSTOMER_NOT_FOUND,
                ErrorCode.BAD_REQUEST,
                ErrorCode.FORBIDDEN,
                *IDEMPOTENCY_ERRORS,
                v2=True,
                examples={
                    ErrorCode.MANDATORY_PARAMETERS_MISSING: LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE,
                    ErrorCode.INVALID_PROGRAM_ID: LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE,
                    ErrorCode.INVALID_LOYALTY_PROMOTION_ID: LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE,
                    ErrorCode.CUSTOMER_NOT_FOUND: LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE,
                },
            ),
        },
        examples=[OpenApiExample("Request Body", value=LOYALTY_ISSUE_REQUEST_EXAMPLE, request_only=True)],
        description=(
            "Issues a loyalty promotion to one customer (Capillary's older v2 API). LOYALTY promotions "
            "(direct issue): each call enrols the customer if needed (`issualId`, one per customer and "
            "promotion) and issues once more (`earnedId`); it is **not idempotent**, as in Capillary: "
            "every call issues again until `maxIssuancePerCustomer` (-1 unlimited) is reached, then "
            "answers 200 with warning 8890 and no sideEffects. LOYALTY_EARNING promotions (enrol and "
            "issue): enrols only (the earn follows the promotion's criteria later): `earnedId` is null "
            "and enrolling again returns the same `issualId`. Checked in order: 11013 identifierName, "
            "identifierValue or source missing; 1212 `type` other than CUSTOMER; 400 identifierName or "
            "source outside the documented values; 1101 programId missing, not an integer or not the "
            "org's; 8874 promotionId missing, not an integer or not in that program; 8015 no customer "
            "with that identifier in the org; 8890 (warning) the promotion is inactive, not started or "
            "ended, or the customer's limit is exhausted. Nothing is written on any error or warning. "
            "A retry with the same `Idempotency-Key` header replays the first answer and issues nothing."
        ),
    )
    @idempotent
    def post(self, request):
        identifier_name, identifier_value, source = parse_loyalty_issue_query(request.query_params)
        body = request.data
        if not isinstance(body, dict):
            raise PromotionError(ErrorCode.BAD_REQUEST, "The body must be a JSON object.")
        org = request_org(request)
        program = loyalty_program_get(org=org, program_id=parse_long_id(body.get("programId")))
        loyalty_promotion = loyalty_promotion_get(
            program=program, promotion_id=parse_long_id(body.get("promotionId"))
        )
        customer = customer_get_by_identifier(
            org=org, identifier_name=identifier_name, identifier_value=identifier_value
        )
        if customer is None:
            raise PromotionError(ErrorCode.CUSTOMER_NOT_FOUND)
        outcome = loyalty_promotion_issue(
            customer=customer,
            program=program,
            loyalty_promotion=loyalty_promotion,
            source=source,
            actor=Actor.for_api_client(request.user),
        )
        side_effect = {
            "programId": program.pk,
            "issualId": outcome.issual.pk,
            "earnedId": outcome.earned.pk if outcome.earned else None,
            "promotionId": loyalty_promotion.pk,
            "type": LOYALTY_SIDE_EFFECT_TYPE,
        }
        return Response({"warnings": [], "errors": [], "sideEffects": [side_effect]})
