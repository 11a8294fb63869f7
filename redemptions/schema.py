"""The OpenAPI text of the redemption endpoints: each operation's description, parameters, examples
and errors, applied to its view by name (`@schema.redemption_list(query=ListQuerySerializer)`: a view
hands over the serializers it validates with), and the example bodies (field names and shapes from
Capillary's redeem page), which the tests also use."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema

from promotions.models import PromotionMode
from promotions_site.errors import ErrorCode
from promotions_site.idempotency import IDEMPOTENCY_ERRORS, IDEMPOTENCY_PARAMETERS
from promotions_site.schema import error_responses
from redemptions.serializers import (
    CART_CANCEL_RESPONSE,
    EVALUATION_RESPONSE,
    PENDING_CARTS_RESPONSE,
    REDEMPTION_LIST_DEFAULT_LIMIT,
    REDEMPTION_LIST_MAX_LIMIT,
    REDEMPTION_LIST_RESPONSE,
    REDEMPTION_RESPONSE,
    REDEMPTION_REVERSE_RESPONSE,
)

# --- Examples --------------------------------------------------------------------------------------

REDEEM_REQUEST_EXAMPLE = {
    "customerId": "564332013",
    "transactionIdentifier": "TXN-2025-05-13-000123",
    "transactionNumber": "BILL-000123",
    "transactionDate": 1747126842954,
    "amount": 1000,
    "lineItems": [
        {
            "sku": "COFFEE-REG",
            "promotionId": "67f3832ab206f929966adf81",
            "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
            "redemptionCount": 1,
            "discount": 100,
            "discountAppliedOnQuantity": 1,
            "promotionAppliedOnQuantity": 1,
        }
    ],
    "redemptions": [
        {
            "sku": "",
            "promotionId": "6912ced9d39e256f754a83f8",
            "redemptionCount": 1,
            "discount": 50,
            "discountAppliedOnQuantity": 1,
            "promotionAppliedOnQuantity": 1,
        }
    ],
}

REDEEM_RESPONSE_EXAMPLE = {
    "data": {
        "orgId": 100737,
        "customerIdentifierValue": None,
        "customerIdentifierType": None,
        "customerId": 564332013,
        "transactionIdentifier": "TXN-2025-05-13-000123",
        "transactionNumber": "BILL-000123",
        "transactionDate": 1747126842954,
        "transactionDateISO": "2025-05-13T09:00:42Z",
        "amount": 1000.0,
        "redemptions": [
            {
                "promotionId": "6912ced9d39e256f754a83f8",
                "redemptionCount": 1,
                "discount": "50.000000",
                "discountAppliedOnQuantity": "1.000000",
                "promotionAppliedOnQuantity": "1.000000",
            }
        ],
        "lineItems": [
            {
                "sku": "COFFEE-REG",
                "promotionId": "67f3832ab206f929966adf81",
                "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
                "redemptionCount": 1,
                "discount": "100.000000",
                "discountAppliedOnQuantity": "1.000000",
                "promotionAppliedOnQuantity": "1.000000",
            }
        ],
    },
    "errors": [],
}

REVERSE_REQUEST_EXAMPLE = {
    "transactionIdentifier": "TXN-2025-05-13-000123",
    "reason": "Returned at the store",
}

# One record of the redemption list (GET /redemptions); its keys, in order, are the admin export's columns.
REDEMPTION_RECORD_EXAMPLE = {
    "id": "81",
    "orgId": 100737,
    "promotionId": "6912ced9d39e256f754a83f8",
    "promoCode": None,
    "earnedPromotionId": "68230a3af1ebc84977d9ea2c",
    "customerId": 564332013,
    "redemptionDate": 1765875645000,
    "redemptionDateISO": "2025-12-16T09:00:45Z",
    "transactionIdentifier": "TXN-2025-12-16-0042",
    "transactionNumber": "BILL-0042",
    "promotionName": "Flat 500 off",
    "promotionMessageLabel": "Flat 500 off on 2000",
    "transactionEntityIdentifier": "REGULAR_l_81",
    "cartEvaluationId": None,
    "redemptionTill": "store.server",
    "discount": "500.000000",
    "redemptionCount": 1,
    "amount": "2000.000000",
    "redemptionType": "LINEITEM",
    "discountAppliedQuantity": "1.000000",
    "promotionAppliedQuantity": "1.000000",
    "sku": "SKU-1001",
    "productId": None,
    "reversed": False,
}

# --- Operations ------------------------------------------------------------------------------------


def redemption_create(*, request):
    return extend_schema(
        operation_id="redemption_create",
        summary="Record the promotions redeemed in a transaction",
        tags=["Redemptions"],
        request=request,
        responses={
            200: REDEMPTION_RESPONSE.serializer,
            **error_responses(
                ErrorCode.BAD_REQUEST,
                ErrorCode.FORBIDDEN,
                ErrorCode.NOT_FOUND,
                ErrorCode.PROMOTION_EXPIRED,
                ErrorCode.PROMOTION_NOT_RUNNING,
                ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
                ErrorCode.EARN_ALREADY_REDEEMED,
                ErrorCode.EARN_ID_INVALID,
                ErrorCode.CONFLICT,
                ErrorCode.REDEMPTION_ALREADY_PRESENT,
                ErrorCode.REDEMPTION_IDENTIFIER_INVALID,
                ErrorCode.CART_EVALUATION_INVALID,
                ErrorCode.DISCOUNT_NOT_GIVEN_FOR_CART,
                ErrorCode.TILL_CODE_UNKNOWN,
            ),
        },
        examples=[
            OpenApiExample("Request", value=REDEEM_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Response", value=REDEEM_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "Records the promotions redeemed in one transaction: `lineItems` (per item, with the "
            "`earnedPromotionId` redeemed) and/or cart-level `redemptions`. The customer is `customerId`, "
            "or `customerIdentifierType` (mobile, email, externalId, id) + `customerIdentifierValue`; "
            "`customerId` wins when both are sent. `customerId` -1 is an anonymous sale: recorded "
            "without a customer, POS and CODE promotions only (a wallet promotion is 715), Cart and "
            "Promotion limits apply, Customer limits do not. The answer echoes the request with "
            "`orgId`, the customer id and `transactionDateISO`; discounts and quantities as "
            "six-decimal strings.\n\n"
            "**Retry-safe**: idempotent per `transactionIdentifier` in the org. The same body again "
            "returns the same answer and writes nothing; another body is 409 with code 800.\n\n"
            "**Checks** (any failure writes nothing): every promotion is the org's (400), active and "
            "started (709) and not ended (706) at `transactionDate`; CUSTOMER, EARNING and REWARD "
            "promotions are redeemed through an earned instance of this customer: the one named by "
            "`earnedPromotionId`, which must be this customer's instance of this promotion (715), not "
            "LOCKED (issued, not yet earned: 715), not revoked (731), not expired (706) and not used up (409, code 729); or, when none is named "
            "(always for cart-level `redemptions`), the customer's usable instance that expires first "
            "(715 when there is none). An instance is single-use unless the promotion has an Earn "
            "REDEMPTION limit. Limits of `promotionRestrictions` are taken in the same transaction, so "
            "they hold under any concurrency: Cart (this transaction), Customer, Promotion (everyone) "
            "and Earn (the instance), kpi REDEMPTION (sum of redemptionCount), TRANSACTION (1 per "
            "transaction) and DISCOUNT (sum of discount); a limit that would be exceeded is 409 with "
            "code 409, the message naming it. Windows are counted over the whole history. Discounts "
            "may not exceed the amount; quantities are positive; at most 500 lines of each kind; "
            "`transactionDate` at most 24 h ahead. Code-level limits are not enforced (promotion codes "
            "are not implemented).\n\n"
            "**Redemption strategy** (the org's setting): on REDEMPTION_WITHOUT_CART_EVALUATION (the "
            "default) the discounts are recorded as reported. On REDEMPTION_WITH_CART_EVALUATION the "
            "redemption names its evaluation (`promotionEvaluationId`, `appliedPromotionIdentifiers`) "
            "and is recorded only when it matches it: 803 (no valid evaluation: missing, another "
            "customer's, expired, its cart cancelled or already redeemed), 802 (other identifiers or "
            "promotions), 804 (a discount over the evaluated one); the cart's reservation becomes the "
            "redemption. On "
            "REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED the request must carry `cartItems` (the cart "
            "the discounts were computed on, as the evaluate API takes it; 400 without) and each "
            "promotion redeemed is evaluated alone on that cart at `transactionDate`, in the till's "
            "store: one that does not apply to it, or whose discount (its lines together) exceeds "
            "what it gives, is 804 and nothing is written."
        ),
    )


def redemption_reverse(*, request):
    return extend_schema(
        operation_id="redemption_reverse",
        summary="Reverse a recorded transaction",
        tags=["Redemptions"],
        request=request,
        parameters=IDEMPOTENCY_PARAMETERS,
        responses={
            200: REDEMPTION_REVERSE_RESPONSE.serializer,
            **error_responses(
                ErrorCode.BAD_REQUEST, ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, *IDEMPOTENCY_ERRORS
            ),
        },
        examples=[OpenApiExample("Request", value=REVERSE_REQUEST_EXAMPLE, request_only=True)],
        description=(
            "Capillary documents no reversal endpoint; this is ours. Reverses the whole transaction "
            "recorded under `transactionIdentifier`: the Customer and Promotion limit counters and each "
            "earned instance's counters get back exactly what the redemption took, and a used-up "
            "instance is ACTIVE again unless another redemption still uses up one of its Earn limits "
            "(it still reads expired past its validTill). The redemption and "
            "its lines stay as recorded; the reversal is a new fact pointing at them, and reversed "
            "redemptions no longer count in the wallet's remaining limits. Reversing twice is a no-op "
            "that answers the first reversal. 404 when the org has no such transaction. Accepts an "
            "`Idempotency-Key` header."
        ),
    )


def redemption_list(*, query):
    """The list's schema: one declaration, long only because it names each filter and its rules."""
    return extend_schema(
        operation_id="redemption_list",
        summary="List recorded redemptions",
        tags=["Redemptions"],
        parameters=[
            query,
            OpenApiParameter(
                "customerId",
                OpenApiTypes.INT64,
                description="The redeeming customer; -1: the anonymous sales.",
            ),
            OpenApiParameter("promotionId", str, description="The redeemed promotion."),
            OpenApiParameter("transactionIdentifier", str),
            OpenApiParameter(
                "transactionEntityIdentifier",
                str,
                description="REGULAR_b_<redemption id> (its cart-level lines) or REGULAR_l_<line id>.",
            ),
            OpenApiParameter("mode", str, enum=PromotionMode.values, description="The promotion's mode."),
            OpenApiParameter(
                "startDate", OpenApiTypes.INT64, description="Transaction date from (inclusive), epoch ms."
            ),
            OpenApiParameter(
                "endDate", OpenApiTypes.INT64, description="Transaction date to (inclusive), epoch ms."
            ),
            OpenApiParameter(
                "startDateISO", OpenApiTypes.DATETIME, description="Instead of startDate; with offset."
            ),
            OpenApiParameter(
                "endDateISO", OpenApiTypes.DATETIME, description="Instead of endDate; with offset."
            ),
            OpenApiParameter(
                "includeReversed", bool, description="Include reversed redemptions (default false)."
            ),
            OpenApiParameter(
                "codes",
                str,
                description="Promo codes, comma-separated, case-insensitive: the lines redeemed through "
                "one of them.",
            ),
        ],
        responses={200: REDEMPTION_LIST_RESPONSE.serializer, **error_responses(ErrorCode.BAD_REQUEST)},
        examples=[
            OpenApiExample(
                "Response",
                value={
                    "data": [REDEMPTION_RECORD_EXAMPLE],
                    "errors": [],
                    "pagination": {"limit": 10, "pageNumber": 0, "total": 1},
                },
                response_only=True,
            )
        ],
        description=(
            "The org's recorded redemptions, one record per redeemed line (a `lineItems` entry is "
            "LINEITEM, a cart-level `redemptions` entry is CART), with the transaction's fields repeated "
            "on each. Sorted on the transaction date (`sortOn=REDEMPTION_DATE`, the only value), "
            "`order` DESC by default, ties broken by the line `id` in the same direction, so pages "
            f"never overlap. `limit` default {REDEMPTION_LIST_DEFAULT_LIMIT}, at most "
            f"{REDEMPTION_LIST_MAX_LIMIT}; `pageNumber` from 0. `pagination.total` counts the records "
            "matching the filters on all pages. A full page answers an `X-Next-Cursor` header: sent back "
            "as `cursor` (with the same filters, `limit` and `order`) it asks for the page after it by "
            "keyset, as fast a million records in as at the start (`pageNumber` is then not used; the "
            "body is the same shape, its `total` the one the walk's first page counted). Filters combine with AND: `customerId`, `promotionId`, "
            "`transactionIdentifier`, `transactionEntityIdentifier`, `mode` (the promotion's), and the "
            "transaction date between `startDate` and `endDate` (epoch ms) or `startDateISO` and "
            "`endDateISO` (ISO 8601 with offset; an unencoded `+` is accepted), both bounds inclusive. "
            "Reversed redemptions are left out unless `includeReversed=true`; every record says "
            "`reversed`. An id of another org, or unknown, matches nothing: the list is empty, never "
            "404. `promoCode` is the code a CODE promotion's line was redeemed through, else null; "
            "`cartEvaluationId` and `productId` are always null (no evaluations or product catalogue "
            "here); `codes` selects the lines redeemed through those codes. "
            "`redemptionTill` is the username of the API client that recorded the redemption. "
            "Decimals are strings with 6 decimals. 400 for a malformed or out-of-range parameter, "
            "both forms of one date bound, or startDate after endDate. Read access suffices."
        ),
    )


# --- POST /evaluate ----------------------------------------------------------------------------------

# Capillary's example request (its evaluate page), with item attributes (docs/api.md).
EVALUATE_REQUEST_EXAMPLE = {
    "amount": "2000.00",
    "customerId": 98662653,
    "cartItems": [
        {
            "sku": "Sku#Fuel",
            "amount": "1000.00",
            "qty": "1.000000",
            "discount": None,
            "categoryList": ["Fuel", "Premium"],
            "brandList": ["MaxFuel", "FuelCo"],
        },
        {"sku": "Sku#food", "amount": "1000.00", "qty": "1.00", "attributes": {"color": "red"}},
    ],
    "promoCodes": None,
    "paymentVouchers": None,
    "cartTenders": [{"identifier": "CreditCard", "amount": "500.00"}],
    "categoryHierarchySentInPayload": True,
}

# What that request gets from one CART_BASED promotion of 100 off carts over 1500.
EVALUATE_RESPONSE_EXAMPLE = {
    "data": {
        "amount": "2000.000000",
        "customerId": 98662653,
        "cartItems": [
            {
                "referenceId": "20f142ec-9a10-49f6-a326-abc48f58d904",
                "sku": "Sku#Fuel",
                "amount": "1000.000000",
                "qty": "1.000000",
                "discount": "0.000000",
                "appliedPromotions": [],
            },
            {
                "referenceId": "f297716f-c3ee-4936-b88e-a5e0ed91d262",
                "sku": "Sku#food",
                "amount": "1000.000000",
                "qty": "1.000000",
                "discount": "0.000000",
                "appliedPromotions": [],
            },
        ],
        "evaluationId": "67ea9543e1c34e7d8e936839",
        "appliedPromotions": [
            {
                "promotionId": "67dd2a7cef21a64211227d02",
                "name": "promotion-cart",
                "messageLabel": "test!!",
                "promotionMode": "DISCOUNT",
                "redemptionCount": 1,
                "discount": "100.000000",
                "identifier": "eyJwcm9tb3Rpb25JZCI6IjY3ZGQyYTdjZWYyMWE2NDIxMTIyN2QwMiIsImRpc2NvdW50IjoiMTAwLjAwMDAwMCIsImFtb3VudCI6IjIwMDAuMDAwMDAwIiwicmVkZW1wdGlvbkNvdW50IjoxLCJ2ZXJzaW9uIjoidjEifQ==",
            }
        ],
        "appliedPaymentVouchers": [],
        "promoCodeEvaluationLogs": [],
        "paymentVoucherEvaluationLogs": [],
        "cartTenders": [
            {
                "identifier": "CreditCard",
                "amount": "500.000000",
                "referenceId": "67ea9543e1c34e7d8e936831",
                "adjustedAmount": "500.000000",
            },
            {
                "identifier": "CASH",
                "amount": "1400.000000",
                "referenceId": "67ea9543e1c34e7d8e936836",
                "adjustedAmount": "1400.000000",
            },
        ],
        "categoryHierarchySentInPayload": True,
    },
    "errors": [],
}


def evaluation_create(*, request):
    return extend_schema(
        operation_id="evaluation_create",
        summary="Evaluate a cart: the promotions it gets",
        tags=["Evaluation"],
        request=request,
        parameters=[
            OpenApiParameter(
                "X-CAP-API-ATTRIBUTION-TILL-CODE",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="The till (its code) whose store decides store-scoped promotions; without it, "
                "the API client's default till.",
            )
        ],
        responses={
            200: EVALUATION_RESPONSE.serializer,
            **error_responses(
                ErrorCode.BAD_REQUEST,
                ErrorCode.TILL_CODE_UNKNOWN,
                ErrorCode.NOT_FOUND,
                ErrorCode.PENDING_CART_NOT_FOUND,
                ErrorCode.MAX_PENDING_CARTS_EXCEEDED,
                ErrorCode.RESOURCE_LOCKED,
            ),
        },
        examples=[
            OpenApiExample("Request", value=EVALUATE_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample("Response", value=EVALUATE_RESPONSE_EXAMPLE, response_only=True),
        ],
        description=(
            "Evaluates the cart against the org's promotions (docs: the promotion engine) and answers "
            "what applies: per line the line-level promotions (`cartItems[].appliedPromotions`), at "
            "the top every applied promotion with its whole discount and its `identifier` (Base64 "
            "JSON to pass back when redeeming), the tenders less the tender promotions' discounts, "
            "and a CASH tender for what the tenders sent do not cover. Each evaluation is stored "
            "(`evaluationId`). Read access suffices; nothing is taken: limits are read, not used.\n\n"
            "**Who gets what**: POS promotions apply to everyone (`isLoyaltyOnly` ones need an "
            "identified customer); CUSTOMER, EARNING and REWARD ones only through an ACTIVE instance "
            "in the customer's wallet (for EARNING an earned one, not merely issued), named as "
            "`earnedPromotionId`; CODE promotions need a code (sent in `promoCodes`, or linked to the "
            "customer). Inactive, not "
            "started and expired promotions, those outside their store or time scope and those at a "
            "Customer, Promotion or Earn limit are not offered.\n\n"
            "**The till**: `X-CAP-API-ATTRIBUTION-TILL-CODE`, else the API client's default till; "
            "an unknown till code is 400 with code 4001. Its store (with zones and concepts) decides "
            "store-scoped promotions; with no till, storeCriteria IN never holds and NOT_IN always does.\n\n"
            "**Input**: `customerId` is optional: absent, null or -1 evaluates the cart for a "
            "customer not identified yet; an unknown one is 404. Amounts and quantities are JSON "
            "numbers or decimal strings, at most 6 decimals; `cartItems[].amount` is the line's value "
            "(all its units), `discount` the till's own markdown (the engine works on amount - "
            "discount); `attributes` (name to value) feed ATTRIBUTE criteria. Unknown keys are 400. "
            "`promoCodes` (case-insensitive) make their CODE promotions eligible; each code that did not "
            "apply is answered in `promoCodeEvaluationLogs` with why (1001-1009, ours 1020-1024; "
            "docs/code-redemption.md), and an applied one in `appliedPromotions[].promoCode`. "
            "`paymentVouchers` are answered in the logs with errorCode 1001 (not enabled). Money and "
            "quantities are answered as six-decimal strings.\n\n"
            "**Cart locks** (orgs on REDEMPTION_WITH_CART_EVALUATION with cart locking on, the default): "
            "an evaluation for an identified customer that applies something opens a cart that "
            "reserves what it applied until it is redeemed, cancelled or expires (the org's lock TTL, "
            "5 minutes by default); other carts are offered only what is left. `cartEvaluationId` "
            "evaluates an open cart again (its reservation is reversed first; 120 when it is not an "
            "open cart of the customer). A new cart while the customer holds the org's maximum of open "
            "carts (1 by default) is 116; a request while another request holds the customer's carts "
            "is 521 (retry)."
        ),
    )


PENDING_CARTS_RESPONSE_EXAMPLE = {
    "data": {
        "tempRedemptionDetails": [
            {
                "cartEvaluationId": "692571c1e1c34e7d8e936839",
                "startTime": 1764069313846,
                "validTillTime": 1764069613846,
                "appliedPromotions": [
                    {
                        "promotionId": "67dd2a7cef21a64211227d02",
                        "earnedPromotionId": None,
                        "promotionName": "promotion-cart",
                        "redemptionCount": 1,
                        "discount": "12.000000",
                    }
                ],
            }
        ]
    },
    "errors": [],
}
CART_CANCEL_RESPONSE_EXAMPLE = {
    "data": {"status": True, "code": 201, "message": "Successfully closed pending cart."},
    "errors": [],
}


def pending_cart_list():
    return extend_schema(
        operation_id="pending_cart_list",
        summary="A customer's pending (open) carts",
        tags=["Evaluation"],
        responses={
            200: PENDING_CARTS_RESPONSE.serializer,
            **error_responses(ErrorCode.NOT_FOUND),
        },
        examples=[OpenApiExample("Response", value=PENDING_CARTS_RESPONSE_EXAMPLE, response_only=True)],
        description=(
            "The customer's open carts, oldest first, no paging: each evaluation that still reserves "
            "what it applied (cart locks), with its window in epoch ms and its applied promotions. "
            "Carts past their time are released by this read and not listed. 404 when the org has "
            "no such customer. Read access suffices."
        ),
    )


def cart_cancel(*, deprecated: bool = False, singular: bool = False):
    name = "cart_cancel_singular" if singular else "cart_cancel"
    return extend_schema(
        operation_id=f"{name}_post" if deprecated else name,
        summary="Cancel a pending cart" + (" (Capillary's older POST label)" if deprecated else ""),
        tags=["Evaluation"],
        request=None,
        deprecated=deprecated,
        responses={
            200: CART_CANCEL_RESPONSE.serializer,
            **error_responses(ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.PENDING_CART_NOT_FOUND),
        },
        examples=[OpenApiExample("Response", value=CART_CANCEL_RESPONSE_EXAMPLE, response_only=True)],
        description=(
            "Closes the customer's open cart of this evaluation and gives back what it reserved. "
            "Retry-safe: a cart already cancelled, expired or evaluated again answers the same 200 "
            "and gives nothing back twice. 404 (code 404, `Passed evaluation log id is not found`) "
            "when the customer has no cart under this id; 120 when the cart was redeemed. Needs write "
            "access. Also answered to POST and under `/evaluation/` (singular)."
        ),
    )
