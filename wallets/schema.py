"""The OpenAPI text of the wallet endpoints: each operation's description, parameters, examples and
errors, applied to its view by name (`@schema.earn(request=InputSerializer)`: a view hands over the
serializers it validates with), and the documented example bodies, which the tests also use."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from promotions.serializers import BOOLEAN_RESPONSE
from promotions_site.errors import ErrorCode
from promotions_site.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETERS
from promotions_site.schema import error_responses
from wallets.identifiers import IDENTIFIER_NAMES, SOURCES
from wallets.selectors import CODE_LOOKUP_MAX
from wallets.serializers import (
    CUSTOMER_RESPONSE,
    EARN_BULK_RESPONSE,
    EARN_RESPONSE,
    ISSUE_BULK_RESPONSE,
    LOYALTY_ISSUE_RESPONSE,
    PROMO_CODE_LINK_RESPONSE,
    PROMO_CODE_LOOKUP_RESPONSE,
    REVOKE_EARN_MAX_IDS,
    REVOKE_EARN_RESPONSE,
    WALLET_LIMIT_DEFAULT,
    WALLET_LIMIT_MAX,
    WALLET_RESPONSE,
)

# `{"data": true, "errors": []}`, as the org-level activate answers.
BOOLEAN_ENVELOPE = BOOLEAN_RESPONSE.serializer

# A setting (env ISSUE_BULK_MAX_CUSTOMERS); the schema shows the value the process started with.
ISSUE_BULK_MAX_CUSTOMERS = settings.ISSUE_BULK_MAX_CUSTOMERS

# --- Examples --------------------------------------------------------------------------------------

EARN_BULK_REQUEST_EXAMPLE = {
    "orgId": 100737,
    "customerId": 566881933,
    "eventTime": 1761750000000,
    "earnedFromType": "BULK_ISSUE",
    "eventDetails": {"id": "6911e951f57b486147effa6c", "type": "BULK_ISSUE"},
    "earnedPromotions": [
        {
            "promotionId": "6912ced9d39e256f754a83f8",
            "earnCount": 1,
            "earnedFromId": "68fb1c9731d91c625a8d9e80",
        },
        {
            "promotionId": "6912cfff6629ee07040e15ef",
            "earnCount": 1,
            "earnedFromId": "68fb1c9731d91c625a8d9e80",
        },
    ],
}
EARN_BULK_RESPONSE_EXAMPLE = {
    "data": [
        {
            "earnedFromId": "68fb1c9731d91c625a8d9e80",
            "promotionId": "6912ced9d39e256f754a83f8",
            "successfulEarnCount": 1,
            "failedEarnCount": 0,
            "customerEarnedPromotions": [
                {
                    "id": "6912d0256629ee07040e15f1",
                    "customerId": 566881933,
                    "promotionId": "6912ced9d39e256f754a83f8",
                    "earnedFromType": "BULK_ISSUE",
                    "earnedFromId": "68fb1c9731d91c625a8d9e80",
                    "eventTime": 1761750000000,
                    "eventTimeISO": "2025-10-29T15:00:00Z",
                    "eventDetails": {"id": "6911e951f57b486147effa6c", "type": "BULK_ISSUE"},
                    "validTill": 4102424999999,
                    "validTillISO": "2099-12-31T18:29:59Z",
                }
            ],
        }
    ],
    "errors": [],
}
EARN_REQUEST_EXAMPLE = {
    "customerId": 566881933,
    "earnedFromType": "ACTIVITY",
    "earnedFromId": "BILL-2025-10-29-0042",
    "eventTimeISO": "2025-10-29T20:30:00+05:30",
    "eventDetails": {"id": "BILL-2025-10-29-0042", "type": "TransactionAdd"},
}
EARN_RESPONSE_EXAMPLE = {
    "data": {
        "id": "6912d0256629ee07040e15f1",
        "customerId": 566881933,
        "promotionId": "6912ced9d39e256f754a83f8",
        "earnedFromType": "ACTIVITY",
        "earnedFromId": "BILL-2025-10-29-0042",
        "eventTime": 1761750000000,
        "eventTimeISO": "2025-10-29T15:00:00Z",
        "eventDetails": {"id": "BILL-2025-10-29-0042", "type": "TransactionAdd"},
        "validTill": 4102424999999,
        "validTillISO": "2099-12-31T18:29:59Z",
    },
    "errors": [],
}
WALLET_RESPONSE_EXAMPLE = {
    "data": [
        {
            "earnedPromotionId": "6912d0256629ee07040e15f1",
            "promotionId": "6912ced9d39e256f754a83f8",
            "promotionName": "Flat 10 on 100",
            "validTill": 4102424999999,
            "validTillISO": "2099-12-31T18:29:59Z",
            "unlockedDate": 1761750000000,
            "unlockedDateISO": "2025-10-29T15:00:00Z",
            "customerId": 566881933,
            "earnedType": "EARNED",
            "earnedStatus": "UNLOCKED",
            "promotionStatus": "ACTIVE",
            "applicationMode": "DISCOUNT",
            "redeemableFrom": 1761750000000,
            "redeemableFromISO": "2025-10-29T15:00:00Z",
            "customFieldValues": {},
            "eventTime": 1761750000000,
            "eventTimeISO": "2025-10-29T15:00:00Z",
            "supplementaryCriteria": None,
            "earnedFromType": "ACTIVITY",
            "earnedFromId": "BILL-2025-10-29-0042",
            "status": "ACTIVE",
            "restrictions": {
                "Cart": [
                    {
                        "kpi": "REDEMPTION",
                        "maxLimit": "1.000000",
                        "remainingRedemption": 1,
                        "windowType": "OVERALL",
                        "fixedWindowConfig": None,
                        "currentCycle": None,
                        "periodStart": None,
                        "periodEnd": None,
                    }
                ],
                "Customer": [
                    {
                        "kpi": "REDEMPTION",
                        "maxLimit": "20.000000",
                        "remainingRedemption": 14,
                        "windowType": "OVERALL",
                        "fixedWindowConfig": None,
                        "currentCycle": None,
                        "periodStart": None,
                        "periodEnd": None,
                    },
                    {
                        "kpi": "REDEMPTION",
                        "maxLimit": "3.000000",
                        "remainingRedemption": 1,
                        "windowType": "FIXED",
                        "fixedWindowConfig": {"cycleType": "CALENDAR_MONTH"},
                        "currentCycle": {"startDate": "2025-10-01", "endDate": "2025-10-31"},
                        "periodStart": 1759257000000,
                        "periodEnd": 1761935400000,
                    },
                ],
                "Promotion": [
                    {
                        "kpi": "DISCOUNT",
                        "maxLimit": "5000.000000",
                        "remainingRedemption": "4890.500000",
                        "windowType": "MOVING",
                        "fixedWindowConfig": None,
                        "currentCycle": None,
                        "periodStart": 1761157800000,
                        "periodEnd": 1761762600000,
                    }
                ],
                "Earn": [],
            },
        }
    ],
    "errors": [],
}
REVOKE_EARN_REQUEST_EXAMPLE = {
    "customerId": 566881933,
    "earnRevokeDetails": [
        {"promotionId": "6912ced9d39e256f754a83f8", "earnIds": ["6912d0256629ee07040e15f1"]},
        {"promotionId": "6912cfff6629ee07040e15ef", "earnIds": ["6912d0256629ee07040e15f2"]},
    ],
}
REVOKE_EARN_RESPONSE_EXAMPLE = {
    "data": {
        "customerId": 566881933,
        "revokedDetails": [
            {
                "promotionId": "6912ced9d39e256f754a83f8",
                "revokedEarnIds": ["6912d0256629ee07040e15f1"],
                "status": "SUCCESS",
            }
        ],
    },
    "errors": [
        {
            "promotionId": "6912cfff6629ee07040e15ef",
            "code": 729,
            "message": "Earn already redeemed: 6912d0256629ee07040e15f2",
        }
    ],
}

# --- Customers (our API: Capillary documents no customer API of this service's kind) -----------------------------
CUSTOMER_CREATE_REQUEST_EXAMPLE = {
    "mobile": "+18767431754",
    "email": "asha.rao@example.com",
    "externalId": "LOY-000123",
    "firstName": "Asha",
    "lastName": "Rao",
    "source": "INSTORE",
}
CUSTOMER_RESPONSE_EXAMPLE = {
    "data": {
        "customerId": 564332013,
        "mobile": "18767431754",
        "email": "asha.rao@example.com",
        "externalId": "LOY-000123",
        "firstName": "Asha",
        "lastName": "Rao",
        "source": "INSTORE",
        "createdOn": 1747126842954,
        "createdOnISO": "2025-05-13T09:00:42Z",
    },
    "errors": [],
}

# --- POST /v2/promotion/issue (Capillary's v2 issue API), the documented bodies as they are ---------------------------
LOYALTY_ISSUE_REQUEST_EXAMPLE = {"programId": 469, "promotionId": 65777}
LOYALTY_ISSUE_RESPONSE_EXAMPLE = {
    "warnings": [],
    "errors": [],
    "sideEffects": [
        {
            "programId": 2750,
            "issualId": 809,
            "earnedId": 764,
            "promotionId": 201436,
            "type": "Points promotion",
        }
    ],
}
LOYALTY_ISSUE_NOT_ISSUED_EXAMPLE = {
    "warnings": [
        {
            "status": False,
            "code": 8890,
            "message": "promotion not issued due to config issues or customer exhausted limits",
        }
    ],
    "errors": [],
    "sideEffects": [],
}
LOYALTY_ISSUE_INVALID_PROGRAM_EXAMPLE = {
    "warnings": [],
    "errors": [{"status": False, "message": "invalid programId passed", "code": 1101}],
}
LOYALTY_ISSUE_INVALID_PROMOTION_EXAMPLE = {
    "warnings": [],
    "errors": [{"status": False, "message": "promotion id passed is invalid", "code": 8874}],
}
LOYALTY_ISSUE_PARAMETERS_REQUIRED_EXAMPLE = {
    "warnings": [],
    "errors": [
        {
            "message": "identifierName, identifierValue, source can not be empty",
            "code": 11013,
            "status": False,
        }
    ],
}
LOYALTY_ISSUE_CUSTOMER_NOT_FOUND_EXAMPLE = {
    "warnings": [],
    "errors": [{"status": False, "code": 8015, "message": "Customer not found for the given identifiers"}],
}

# --- Request bodies the views read themselves -------------------------------------------------------

# The v2 issue reads its body itself (Capillary's v2 codes, not DRF's 400, answer a bad id).
LoyaltyIssueRequest = inline_serializer(
    "LoyaltyIssue",  # the request component: LoyaltyIssueRequest
    {"programId": serializers.IntegerField(), "promotionId": serializers.IntegerField()},
)

# --- Operations ------------------------------------------------------------------------------------

EARN_ERRORS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.NOT_FOUND,
    ErrorCode.FORBIDDEN,
    ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED,
    ErrorCode.PROMOTION_EXPIRED,
    ErrorCode.PROMOTION_NOT_RUNNING,
    ErrorCode.EARN_NOT_SUPPORTED,
)


def issue_bulk(*, query):
    """issueBulk's schema: one declaration, long only because it spells out the request array and
    every documented answer with its example."""
    return extend_schema(
        operation_id="promotion_issue_bulk",
        summary="Issue a promotion to customers",
        tags=["Issuing and earning"],
        parameters=[query],
        request={
            "application/json": {
                "type": "array",
                "items": {"type": "integer", "format": "int64", "minimum": 1},
                "minItems": 1,
                "maxItems": ISSUE_BULK_MAX_CUSTOMERS,
                "description": "Customer ids; an id listed twice is issued once.",
            }
        },
        responses={
            200: ISSUE_BULK_RESPONSE.serializer,
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
                            "validTill": 4102424999999,
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


def earn_bulk(*, request):
    return extend_schema(
        operation_id="promotion_earn_bulk",
        summary="Earn several promotions for one customer",
        tags=["Issuing and earning"],
        request=request,
        responses={200: EARN_BULK_RESPONSE.serializer, **error_responses(*EARN_ERRORS)},
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


def earn(*, request):
    return extend_schema(
        operation_id="promotion_earn",
        summary="Earn a promotion for one customer",
        tags=["Issuing and earning"],
        request=request,
        responses={
            200: EARN_RESPONSE.serializer,
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


def customer_wallet_get(*, query):
    return extend_schema(
        operation_id="customer_wallet_get",
        summary="Get a customer's wallet",
        tags=["Wallet"],
        parameters=[query],
        responses={
            200: WALLET_RESPONSE.serializer,
            **error_responses(ErrorCode.BAD_REQUEST, ErrorCode.NOT_FOUND),
        },
        examples=[OpenApiExample("Response", value=WALLET_RESPONSE_EXAMPLE, response_only=True)],
        description=(
            "The CUSTOMER, EARNING and REWARD promotions issued to or earned by the customer, one item "
            "per instance, and the promo codes linked to the customer, one item per code (`earnedType` "
            "CODE, `earnedPromotionId` the code's id, `promoCode` the code, `validTill` the promotion's "
            "end, `eventTime` when it was linked, `earnedFromType` CODE_LINK, `status` REVOKED for a "
            "deactivated code), latest `validTill` first (then by `earnedPromotionId`), at most `limit` "
            f"items (default {WALLET_LIMIT_DEFAULT}, at most {WALLET_LIMIT_MAX}; no pagination). "
            "`isIncludeActivePromotionsOnly=true` keeps only ACTIVE instances still valid whose promotion "
            "is active and has not ended. `status` is the instance's (ACTIVE, REDEEMED, EXPIRED, REVOKED; "
            "an ACTIVE instance past `validTill` reads EXPIRED). `earnedType` is ISSUED (issueBulk) or "
            "EARNED (earn APIs). `earnedStatus` is LOCKED for an instance of an EARNING promotion that was "
            "issued and not yet earned, else UNLOCKED (`unlockedDate` = `eventTime`, null when LOCKED). "
            "`promotionStatus` is ACTIVE when the promotion is active and has not ended and, for a "
            "promotion with `customerActivationRequired`, the customer activated it (or this instance: "
            "POST `/promotions/{promotionId}/activate?customerId=`); an instance not activated reads "
            "INACTIVE and evaluate does not offer it. "
            "`redeemableFrom` = `eventTime`. `includeRedemptions=true` adds `restrictions` per level: "
            "`maxLimit` and `remainingRedemption` counted from recorded redemptions, without reversed "
            "ones (REDEMPTION: redemption counts; TRANSACTION: transactions; DISCOUNT: discount); "
            "`maxLimit` is a six-decimal string; `remainingRedemption` an integer for REDEMPTION and "
            'TRANSACTION, a six-decimal string for DISCOUNT (`"4890.500000"`), never a float; '
            "Customer = this customer's, Promotion = everyone's, Earn = this instance's, Code (a code's "
            "item only) = this code's; a Cart limit holds per transaction so all of it remains. "
            "`remainingRedemption` also subtracts what open carts (cart locks) reserve, never below 0. A limit whose window resets is counted in its "
            "current window, in the org's time zone: `windowType` (as configured; without one, MOVING "
            "for a frequency DAYS or WEEKS, else OVERALL), `fixedWindowConfig`, `currentCycle` "
            "`{startDate, endDate}` (local days, both inclusive; fixed windows only, else null), and "
            "`periodStart`/`periodEnd` (epoch ms, the window's [start, end); null for OVERALL). "
            "`includeSupplementaryPromotions` and `entityId` are accepted and ignored. "
            "404 for an unknown customer or another org's; 400 for a bad query parameter."
        ),
    )


def revoke_earn(*, request):
    return extend_schema(
        operation_id="promotion_revoke_earn",
        summary="Revoke a customer's earned promotions",
        tags=["Issuing and earning"],
        request=request,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            200: REVOKE_EARN_RESPONSE.serializer,
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


def customer_create(*, request):
    return extend_schema(
        operation_id="customer_create",
        summary="Create a customer",
        tags=["Customers"],
        request=request,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            201: CUSTOMER_RESPONSE.serializer,
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


def customer_get(*, query):
    return extend_schema(
        operation_id="customer_get",
        summary="Find a customer by identifier",
        tags=["Customers"],
        parameters=[query],
        responses={
            200: CUSTOMER_RESPONSE.serializer,
            **error_responses(ErrorCode.BAD_REQUEST, ErrorCode.NOT_FOUND),
        },
        examples=[OpenApiExample("Found", value=CUSTOMER_RESPONSE_EXAMPLE, response_only=True)],
        description=(
            "One customer of the caller's org by `mobile` (with or without `+`), `email` (any case), "
            "`externalId` or `id` (the customerId). 404 `Customer not found` when none matches, or "
            "when it is another org's."
        ),
    )


loyalty_promotion_issue = extend_schema(
    operation_id="loyalty_promotion_issue",
    summary="Issue a loyalty promotion to one customer (v2)",
    tags=["Loyalty promotions (v2)"],
    parameters=[
        OpenApiParameter("identifierName", str, required=True, enum=IDENTIFIER_NAMES),
        OpenApiParameter("identifierValue", {"type": "string", "minLength": 1}, required=True),
        OpenApiParameter("source", str, required=True, enum=SOURCES),
        OpenApiParameter("type", str, enum=["CUSTOMER"]),
        OpenApiParameter("accountId", str, description="Accepted for compatibility; not used."),
        *IDEMPOTENCY_PARAMETERS,
    ],
    request=LoyaltyIssueRequest,
    responses={
        200: OpenApiResponse(
            response=LOYALTY_ISSUE_RESPONSE.serializer,
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


_ACTIVATION_ERRORS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.FORBIDDEN,
    ErrorCode.NOT_FOUND,
    ErrorCode.PROMOTION_EXPIRED,
    ErrorCode.UNSUPPORTED_PROMOTION_TYPE,
    ErrorCode.EARN_ID_INVALID,
    ErrorCode.UNSUPPORTED_PREFERENCE_CHANGE,
)
_ACTIVATION_RULES = (
    "Only for a CUSTOMER, EARNING or REWARD promotion created with `customerActivationRequired`: "
    "707 for a POS or CODE promotion, 736 for a promotion that does not require activation, 706 when "
    "the promotion has ended. A DISCOUNT promotion is activated per customer (covering every instance "
    "the customer holds, now or later; `earnId` is refused with 400); a PAYMENT_VOUCHER promotion per "
    "instance (`earnId` required, 400 without): 731 when `earnId` is not this customer's instance of "
    "the promotion (unknown, someone else's, another org's), 736 when that instance is no longer "
    "ACTIVE (redeemed, revoked, expired). 404 for an unknown promotion or customer (or another "
    "org's); 400 for a missing or malformed `customerId`; 403 for a read-only API client."
)


def promotion_customer_activate(*, query):
    return extend_schema(
        operation_id="promotion_customer_activate",
        summary="Activate a promotion for a customer (opt in)",
        tags=["Issuing and earning"],
        request=None,
        parameters=[query],
        responses={200: BOOLEAN_ENVELOPE, **error_responses(*_ACTIVATION_ERRORS)},
        examples=[OpenApiExample("Activated", value={"data": True, "errors": []}, response_only=True)],
        description=(
            "The customer opts in: until then evaluate does not offer the promotion to the customer and "
            "the wallet shows its instances with `promotionStatus` INACTIVE. Activating again is a "
            "success that changes nothing (200, `data: true`), so a retry is safe. " + _ACTIVATION_RULES
        ),
    )


def promotion_customer_deactivate(*, query):
    return extend_schema(
        operation_id="promotion_customer_deactivate",
        summary="Deactivate a promotion for a customer (opt out)",
        tags=["Issuing and earning"],
        request=None,
        parameters=[query],
        responses={
            200: BOOLEAN_ENVELOPE,
            **error_responses(*_ACTIVATION_ERRORS, ErrorCode.PREFERENCE_CHANGE_PENDING_CART),
        },
        examples=[OpenApiExample("Deactivated", value={"data": True, "errors": []}, response_only=True)],
        description=(
            "The customer opts out: evaluate no longer offers the promotion (or the instance). "
            "Deactivating a promotion that is not activated is a success that changes nothing. 737 "
            "(409) while a pending cart of the customer holds the promotion. " + _ACTIVATION_RULES
        ),
    )


# --- Promo codes -----------------------------------------------------------------------------------

PROMO_CODE_EXAMPLE = {
    "id": 1201,
    "orgId": 100737,
    "promotionId": "6912ced9d39e256f754a83f8",
    "promotionName": "Welcome code",
    "code": "WELCOME2025",
    "customerId": 566881933,
    "active": True,
    "createdOn": 1761750000000,
    "createdOnISO": "2025-10-29T15:00:00Z",
    "validTill": 4102444799999,
    "validTillISO": "2099-12-31T23:59:59Z",
    "mode": "DISCOUNT",
    "redeemableFrom": 1761696000000,
    "redeemableFromISO": "2025-10-29T00:00:00Z",
    "restrictions": {
        "Code": [
            {
                "kpi": "REDEMPTION",
                "maxLimit": "1.000000",
                "remainingRedemption": 1,
                "tempRedemption": 0,
                "periodStart": None,
                "periodEnd": None,
            }
        ]
    },
}
PROMO_CODE_LOOKUP_EXAMPLE = {
    "data": [PROMO_CODE_EXAMPLE],
    "errors": [{"code": 1001, "message": "Promo code not found.", "promoCode": "NOSUCHCODE"}],
}
PROMO_CODE_LINK_REQUEST_EXAMPLE = {"customerId": 566881933, "code": "welcome2025", "mode": "DISCOUNT"}

_CODE_RECORD_TEXT = (
    "A code's record: `id`, `orgId`, `promotionId`, `promotionName`, `code` (upper-case), `customerId` "
    "(null while unlinked), `active`, `createdOn`, `validTill` (the promotion's end: codes expire with "
    "it), `mode`, `redeemableFrom` (the promotion's start), each time in epoch ms with its ISO twin, and "
    "`restrictions.Code`: the promotion's Code-level limits counted for this code in their current "
    "window: `maxLimit`, `remainingRedemption` (the limit less what redemptions used and open carts "
    "reserve, never below 0), `tempRedemption` (what open carts reserve), `periodStart`/`periodEnd` "
    "(epoch ms, null for a lifetime limit). "
)
_CODE_GUESS_TEXT = (
    "Unknown codes are failed look-ups: past `CODE_GUESS_LIMIT_PER_CLIENT` of them per API client (and, "
    "when the call names a customer, `CODE_GUESS_LIMIT_PER_CUSTOMER` per customer) in a sliding window, "
    "code look-ups answer 429 with `Retry-After` until the window has room again."
)


def promo_code_lookup(*, query):
    return extend_schema(
        operation_id="promo_code_lookup",
        summary="Look promo codes up",
        tags=["Promo codes"],
        parameters=[query],
        responses={
            200: PROMO_CODE_LOOKUP_RESPONSE.serializer,
            **error_responses(ErrorCode.BAD_REQUEST),
        },
        examples=[OpenApiExample("Response", value=PROMO_CODE_LOOKUP_EXAMPLE, response_only=True)],
        description=(
            "The org's promo codes among `codes` (comma-separated, case-insensitive: upper-cased, blanks "
            f"and repeats dropped, at most {CODE_LOOKUP_MAX}) whose promotion is of `mode`, in request "
            "order. " + _CODE_RECORD_TEXT + "A code the org does not have (missing, another org's, or of "
            "the other mode) is left out of `data` and listed in `errors` as `{code: 1001, message, "
            "promoCode}`; the answer is still 200. `includeRedemptions` is accepted and changes nothing: "
            "`restrictions` are always shown. " + _CODE_GUESS_TEXT + " 400 for a missing or malformed "
            "parameter. Read access suffices."
        ),
    )


def promo_code_link(*, request):
    return extend_schema(
        operation_id="promo_code_link",
        summary="Link a promo code to a customer",
        tags=["Promo codes"],
        request=request,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            200: PROMO_CODE_LINK_RESPONSE.serializer,
            **error_responses(
                ErrorCode.BAD_REQUEST,
                ErrorCode.FORBIDDEN,
                ErrorCode.INVALID_PROMO_CODE,
                ErrorCode.PROMO_CODE_EXPIRED,
                ErrorCode.PROMO_CODE_LINKED_TO_ANOTHER_CUSTOMER,
                ErrorCode.INVALID_CUSTOMER_IDENTIFIER,
                ErrorCode.PROMOTION_NOT_RUNNING,
                *IDEMPOTENCY_ERRORS,
            ),
        },
        examples=[
            OpenApiExample("Request", value=PROMO_CODE_LINK_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Linked", value={"data": PROMO_CODE_EXAMPLE, "errors": []}, response_only=True),
        ],
        description=(
            "Links the org's code `code` (case-insensitive) of a `mode` promotion to the customer "
            "`customerId`, one customer per call, and answers the code's record. "
            + _CODE_RECORD_TEXT
            + "Refused, with nothing written, in this order: 1001 no such code in the org (another "
            "org's, or of the other mode); 1006 no such customer in the org; 1001 the code is "
            "deactivated; 1002 its promotion has ended; 709 its promotion is deactivated; 1005 (409) the "
            "code is linked to another customer (linking is permanent). Linking a code again to the same "
            "customer answers 200 unchanged. Of concurrent links of one code, exactly one wins. "
            + _CODE_GUESS_TEXT
            + " 403 for a read-only API client. Accepts an `Idempotency-Key` header."
        ),
    )
