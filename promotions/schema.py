"""The OpenAPI text of the promotion and authentication endpoints: each operation's description,
parameters, examples and errors, applied to its view by name (`@schema.promotion_create`), and the
documented example bodies (Capillary's create-promotion page), which the tests also send."""

from __future__ import annotations

import json
from pathlib import Path

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)

from promotions.filters import PromotionConfigFilter
from promotions.models import PromotionType
from promotions.serializers import (
    BOOLEAN_RESPONSE,
    OAUTH_TOKEN_RESPONSE,
    PROMOTION_CONFIG_RESPONSE,
    PROMOTION_LIST_RESPONSE,
    PROMOTION_RESPONSE,
    ActionSerializer,
    ConditionSerializer,
    ProductBasedConditionSerializer,
    PromotionInputSerializer,
    PromotionUpdateSerializer,
    RewardActionSerializer,
)
from promotions_site.errors import ErrorCode
from promotions_site.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETERS
from promotions_site.schema import error_responses

# --- Condition and action objects ---------------------------------------------------------------
# Each object whose `type` names its variant is a oneOf of the variants with a discriminator on `type`,
# so a generated client builds (and parses) each variant as a model of its own.

for _component, _tagged in (
    ("Condition", ConditionSerializer),
    ("Action", ActionSerializer),
    ("ProductBasedCondition", ProductBasedConditionSerializer),
    ("RewardAction", RewardActionSerializer),
):
    extend_schema_field(
        PolymorphicProxySerializer(
            component_name=_component, serializers=_tagged.VARIANTS, resource_type_field_name="type"
        )
    )(_tagged)


class DecimalValueFieldSchema(OpenApiSerializerFieldExtension):
    """A condition or action value: sent as a JSON number or a decimal string, answered as a string
    with six decimals (`promotions.serializers.DecimalValueField`)."""

    target_class = "promotions.serializers.DecimalValueField"

    def map_serializer_field(self, auto_schema, direction):
        if direction == "response":
            return {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{6}$", "example": "500.000000"}
        return {
            "oneOf": [
                {"type": "number"},
                {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "example": "500.000000"},
            ],
            "description": 'At most two significant decimals (`"10.000000"` is 10.00).',
        }


# --- Examples --------------------------------------------------------------------------------------
# Clients and the fuzz tests send these as they are: an end or validity date is far in the future, so
# an example never turns into a 706 (tests/promotions_site/test_schema.py checks every example).

PROMOTION_CREATE_EXAMPLE = {
    "name": "Flat 200 off above 1500",
    "type": "CUSTOMER",
    "messageLabel": "Flat 200 off",
    "active": True,
    "priority": 1,
    "isStackable": False,
    "startDateISO": "2026-01-01T00:00:00+05:30",
    "endDateISO": "2099-12-31T23:59:59+05:30",
    "campaignId": "spring-2026",
    "mode": "DISCOUNT",
    "condition": {
        "type": "CART",
        "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": 1500},
    },
    "action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 200}},
    "maxIssuancePerCustomer": 1,
    "customerActivationRequired": False,
    "promotionRestrictions": {
        "Customer": [{"kpi": "REDEMPTION", "limit": 2}],
        "Promotion": [{"kpi": "DISCOUNT", "limit": 5000}],
    },
}

# Capillary's 14 published promotion objects ("Get Cart Promotions" page), unchanged: the create
# operation shows each as an example, the way a client copies one (server-owned fields dropped, dates
# that have not passed).
CAPILLARY_OBJECTS_FILE = Path(__file__).parent / "examples" / "capillary-promotion-objects.json"
SERVER_OWNED_FIELDS = ("id", "orgId", "createdBy", "createdOn", "lastUpdatedBy", "lastUpdatedOn")


def capillary_create_examples() -> list[OpenApiExample]:
    objects = json.loads(CAPILLARY_OBJECTS_FILE.read_text(encoding="utf-8"))["promotions"]
    return [
        OpenApiExample(
            f"Capillary: {obj['name']}",
            value={key: value for key, value in obj.items() if key not in SERVER_OWNED_FIELDS}
            | {"startDate": 1767205800000, "endDate": 4102424999000},
            request_only=True,
        )
        for obj in objects
    ]


PROMOTION_RESPONSE_EXAMPLE = {
    "data": {
        "id": "6912ced9d39e256f754a83f8",
        "name": "Flat 200 off above 1500",
        "orgId": 100737,
        "priority": 1,
        "active": True,
        "messageLabel": "Flat 200 off",
        "type": "CUSTOMER",
        "condition": {
            "type": "CART",
            "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN_OR_EQUAL", "value": "1500.000000"},
        },
        "action": {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": "200.000000"}},
        "createdBy": "demo.till",
        "createdOn": 1762842329000,
        "createdOnISO": "2025-11-11T06:25:29Z",
        "lastUpdatedBy": "demo.till",
        "lastUpdatedOn": 1762842329000,
        "lastUpdatedOnISO": "2025-11-11T06:25:29Z",
        "startDate": 1767205800000,
        "startDateISO": "2025-12-31T18:30:00Z",
        "endDate": 4102424999000,
        "endDateISO": "2099-12-31T18:29:59Z",
        "campaignId": "spring-2026",
        "promotionRestrictions": {
            "Customer": [{"kpi": "REDEMPTION", "limit": "2.000000"}],
            "Promotion": [{"kpi": "DISCOUNT", "limit": "5000.000000"}],
        },
        "earnLimitedToSpecificAudience": False,
        "customFieldValues": {},
        "customerActivationRequired": False,
        "mode": "DISCOUNT",
        "maxIssuancePerCustomer": 1,
        "maxEarningPerCustomer": None,
        "earnedValidityDays": None,
        "earningCriteria": None,
        "isStackable": False,
        "storeCriteria": None,
        "timeCriteria": None,
        "isLoyaltyOnly": False,
    },
    "errors": [],
}


# --- Operations ------------------------------------------------------------------------------------

PROMOTION_WRITE_ERRORS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.FORBIDDEN,
    ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
    ErrorCode.PROMOTION_EXPIRED,
    ErrorCode.PROMOTION_NAME_NOT_UNIQUE,
)


def oauth_token_generate(*, request):
    return extend_schema(
        operation_id="oauth_token_generate",
        summary="Generate an OAuth access token",
        tags=["Authentication"],
        request=request,
        responses={
            200: OAUTH_TOKEN_RESPONSE.serializer,
            **error_responses(ErrorCode.BAD_REQUEST, ErrorCode.UNAUTHORIZED, auth=False),
        },
        examples=[
            OpenApiExample(
                "Request", value={"key": "store.server", "secret": "server123"}, request_only=True
            ),
            OpenApiExample(
                "Response",
                value={"data": {"accessToken": "eyJjaWQiOjF9:1tX...", "ttlSeconds": 300}, "errors": None},
                response_only=True,
            ),
        ],
        description=(
            "Returns a signed access token for the API client whose key (username) and secret are given. "
            "Send it as `X-CAP-API-OAUTH-TOKEN` (or `Authorization: Bearer`). It expires after "
            "`ttlSeconds` (the client's setting, 300 s by default, at most 3600 s) and stops working "
            "at once when the client is deactivated or its secret is rotated. The secret may also be "
            "sent as its MD5 hex digest."
        ),
    )


def promotion_list(*, query):
    return extend_schema(
        operation_id="promotion_list",
        summary="List cart promotions",
        tags=["Promotions"],
        parameters=[
            OpenApiParameter("promotionIds", str, description="Comma-separated ids (at most 100)."),
            OpenApiParameter("type", str, enum=[t.value for t in PromotionType]),
            OpenApiParameter("active", bool),
            OpenApiParameter("includeExpired", bool, description="false leaves out ended promotions."),
            query,
        ],
        responses={200: PROMOTION_LIST_RESPONSE.serializer, **error_responses(ErrorCode.BAD_REQUEST)},
        description=(
            "The org's cart promotions, newest first, full objects as create returns them. Ids in "
            "`promotionIds` that do not exist in the org are left out (no error). No pagination "
            "metadata, as in Capillary; `limit` caps the list (default 100, at most 1000)."
        ),
    )


promotion_create = extend_schema(
    operation_id="promotion_create",
    summary="Create a cart promotion",
    tags=["Promotions"],
    request=PromotionInputSerializer,
    parameters=IDEMPOTENCY_PARAMETERS,
    responses={
        200: PROMOTION_RESPONSE.serializer,
        **error_responses(*PROMOTION_WRITE_ERRORS, *IDEMPOTENCY_ERRORS),
    },
    examples=[
        OpenApiExample("Request", value=PROMOTION_CREATE_EXAMPLE, request_only=True),
        *capillary_create_examples(),
        OpenApiExample("Response", value=PROMOTION_RESPONSE_EXAMPLE, response_only=True),
    ],
    description=(
        "Creates a cart promotion. `condition` and `action` take the objects of Capillary's "
        "create-promotion docs, one variant per `type` (unknown keys and enum values are 400; values "
        "a number or a decimal string with at most two significant decimals; percentages at most "
        "100; at most 100 values per criteria: 400 `SKU values exceed 100`); they are stored and "
        "echoed in Capillary's shape, values as six-decimal strings, so Capillary's published "
        "promotion objects (the examples) are accepted as they stand. 716 when the org "
        "already has a promotion of that name; 705 when it is created active and the org already "
        "has its maximum of active, unexpired promotions; 706 when endDate has passed. "
        "`promotionRestrictions`: Code is required for CODE and only for it, Earn only for EARNING "
        "and REWARD, Cart limits cannot repeat, fixed and rolling windows cannot be mixed. Limits "
        "are echoed as strings with six decimals. `storeCriteria` (null: every store), "
        '`timeCriteria` (null: at any time of day; `startTime` "HH:mm", `durationInHours` 1 to 24 '
        "as an integer or a digit string, echoed as an integer, `weeklyValues` with WEEKS and only "
        "with it) and `isLoyaltyOnly` (default false) are stored and echoed. TENDER and "
        "PAYMENT_MODE conditions take the strict shapes of the engine's specification. Fields of "
        "Capillary's create API that this service does not evaluate (accumulationConfig, "
        "supplementaryCriteria) are accepted and ignored. Retry safely with an "
        "`Idempotency-Key` header."
    ),
)

# Both paths serve both methods; Capillary documents create without the trailing slash and the list
# with it. The schema lists each operation under its documented path, and the other path's as a
# deprecated alias (the same operation), so that the schema says every method each path answers.
promotion_collection_with_slash = extend_schema_view(
    post=extend_schema(
        operation_id="promotion_create_trailing_slash",
        deprecated=True,
        summary="Create a cart promotion (alias with a trailing slash)",
        description="The same operation as `POST /api_gateway/v1/promotions`, which Capillary documents.",
    )
)
promotion_collection_without_slash = extend_schema_view(
    get=extend_schema(
        operation_id="promotion_list_without_slash",
        deprecated=True,
        summary="List cart promotions (alias without the trailing slash)",
        description="The same operation as `GET /api_gateway/v1/promotions/`, which Capillary documents.",
    ),
)

promotion_get = extend_schema(
    operation_id="promotion_get",
    summary="Get a cart promotion",
    tags=["Promotions"],
    responses={200: PROMOTION_RESPONSE.serializer, **error_responses(ErrorCode.NOT_FOUND)},
    description="One cart promotion of the caller's org. Another org's promotion answers 404.",
)

promotion_update = extend_schema(
    operation_id="promotion_update",
    summary="Update a cart promotion",
    tags=["Promotions"],
    request=PromotionUpdateSerializer,
    parameters=IDEMPOTENCY_PARAMETERS,
    responses={
        200: PROMOTION_RESPONSE.serializer,
        **error_responses(
            *PROMOTION_WRITE_ERRORS,
            ErrorCode.NOT_FOUND,
            ErrorCode.RESTRICTION_SCHEMA_CHANGE,
            *IDEMPOTENCY_ERRORS,
        ),
    },
    examples=[OpenApiExample("Request", value=PROMOTION_CREATE_EXAMPLE, request_only=True)],
    description=(
        "Replaces the promotion's configuration. Omitted fields keep their value (none is required: "
        "`{}` changes nothing; no body at all is 400); "
        "`promotionRestrictions`, when sent, replaces all limits. `type` and `active` cannot be "
        "changed (400; use activate/deactivate). Once the promotion has started, its limits "
        "(`promotionRestrictions`, `maxIssuancePerCustomer`, `maxEarningPerCustomer`) and "
        "`customerActivationRequired` are frozen (400). Switching a limit between CLASSIC and "
        "OVERALL/MOVING windows is 1011. Changing `endDate` or `earnedValidityDays` re-dates the "
        "validTill of the promotion's ACTIVE wallet instances in the same transaction. 716 on a "
        "name clash. Retry safely with an `Idempotency-Key` header."
    ),
)

promotion_activate = extend_schema(
    operation_id="promotion_activate",
    summary="Activate a promotion org-wide",
    tags=["Promotions"],
    request=None,
    responses={
        200: BOOLEAN_RESPONSE.serializer,
        **error_responses(
            ErrorCode.NOT_FOUND,
            ErrorCode.FORBIDDEN,
            ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
            ErrorCode.PROMOTION_EXPIRED,
        ),
    },
    examples=[OpenApiExample("Activated", value={"data": True, "errors": []}, response_only=True)],
    description=(
        "Activates the promotion for the whole org. 705 when the org already has its maximum of "
        "active, unexpired promotions (250 by default); 706 when the promotion has ended. "
        "Activating an active promotion is a no-op."
    ),
)

promotion_deactivate = extend_schema(
    operation_id="promotion_deactivate",
    summary="Deactivate a promotion org-wide",
    tags=["Promotions"],
    request=None,
    responses={200: BOOLEAN_RESPONSE.serializer, **error_responses(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)},
    examples=[OpenApiExample("Deactivated", value={"data": True, "errors": []}, response_only=True)],
    description="Deactivates the promotion for the whole org; deactivating an inactive one is a no-op.",
)


def promotion_config(*, query):
    flags = [
        OpenApiParameter(name, str, description=PromotionConfigFilter.base_filters[name].extra["help_text"])
        for name in ("promotionIds",)
    ] + [
        OpenApiParameter(name, bool, description=PromotionConfigFilter.base_filters[name].extra["help_text"])
        for name in ("includeExpired", "includeInactive")
    ]
    return extend_schema(
        operation_id="promotion_config_list",
        summary="List promotion summaries (config)",
        tags=["Promotions"],
        parameters=[query, *flags],
        responses={
            200: PROMOTION_CONFIG_RESPONSE.serializer,
            **error_responses(ErrorCode.BAD_REQUEST),
        },
        examples=[
            OpenApiExample(
                "Response",
                value={"data": [PROMOTION_CONFIG_EXAMPLE], "errors": []},
                response_only=True,
            )
        ],
        description=(
            "A summary of each of the org's promotions: `promotionId`, `promotionName`, "
            "`promotionType`, `expiry` (the endDate, epoch ms) and `expiryISO`, `description` (the "
            'messageLabel), `reward` (the action in words, e.g. "200 off the cart"), `isActive`, '
            "`customFieldValues` and `promotionRestrictions`. By default only promotions that are "
            "active and have not ended; `includeExpired=true` adds ended ones, `includeInactive=true` "
            "promotions deactivated org-wide; `promotionIds` narrows to those ids (another org's or an "
            "unknown id is left out). Newest first, at most `limit` (default 100, at most 1000). 400 "
            "for a malformed flag or id list."
        ),
    )


PROMOTION_CONFIG_EXAMPLE = {
    "promotionId": "6912ced9d39e256f754a83f8",
    "promotionName": "200 off on 1500",
    "promotionType": "CUSTOMER",
    "expiry": 1767205799999,
    "expiryISO": "2025-12-31T18:29:59.999Z",
    "description": "200 off",
    "reward": "200 off the cart",
    "isActive": True,
    "customFieldValues": {},
    "promotionRestrictions": {},
}

promotion_till = extend_schema(
    operation_id="promotion_till_list",
    summary="List the promotions evaluable at a till",
    tags=["Promotions"],
    parameters=[
        OpenApiParameter(
            "till_id",
            str,
            OpenApiParameter.PATH,
            description="The till's id, or its code (a-z first, as X-CAP-API-ATTRIBUTION-TILL-CODE).",
        )
    ],
    responses={200: PROMOTION_LIST_RESPONSE.serializer, **error_responses(ErrorCode.NOT_FOUND)},
    description=(
        "The org's promotions evaluate may apply at this till now, as full promotion objects (the shape "
        "of `GET /promotions/`): active, started, not ended, and whose `storeCriteria` holds for the "
        "till's store, the store's zone and concept and every zone and concept above them (a promotion "
        "without `storeCriteria` applies everywhere; NOT_IN excludes). Every type is listed; a wallet "
        "promotion still needs an instance in the customer's wallet, a CODE one its code. The "
        "time-of-day window (`timeCriteria`) is not applied: the list is what the till may be offered "
        "today. Newest first. 404 for an unknown till or another org's."
    ),
)
