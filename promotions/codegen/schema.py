"""The OpenAPI text of the promo-code batch endpoints, applied to their views by name."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema

from promotions.codegen.serializers import PROMO_CODE_BATCH_RESPONSE
from promotions_site.errors import ErrorCode
from promotions_site.schema import error_responses

BATCH_EXAMPLE = {
    "data": {
        "id": 42,
        "promotionId": "6912ced9d39e256f754a83f8",
        "kind": "GENERATE",
        "status": "RUNNING",
        "requestId": "summer-codes-1",
        "params": {
            "count": 500000,
            "length": None,
            "charset": "ALPHANUMERIC",
            "alphabet": "",
            "prefix": "",
            "suffix": "",
            "pattern": "SUMMER-####-??????",
        },
        "total": 500000,
        "done": 150000,
        "failed": 0,
        "error": "",
        "createdOn": 1767205800000,
        "finishedOn": None,
    },
    "errors": [],
}

GENERATE_ERRORS = (
    ErrorCode.BAD_REQUEST,
    ErrorCode.FORBIDDEN,
    ErrorCode.NOT_FOUND,
    ErrorCode.UNSUPPORTED_PROMOTION_TYPE,
    ErrorCode.PROMO_CODE_NOT_ALPHANUMERIC,
    ErrorCode.PROMO_CODE_TOO_SHORT,
    ErrorCode.PROMO_CODE_TOO_LONG,
    ErrorCode.PROMO_CODE_SPACE_TOO_SMALL,
    ErrorCode.PROMO_CODE_REQUEST_ID_REUSED,
)

BATCH_ID = OpenApiParameter("batch_id", int, OpenApiParameter.PATH, description="The batch's id.")


def promo_code_generate(*, request):
    return extend_schema(
        operation_id="promo_code_generate",
        summary="Generate a CODE promotion's promo codes",
        tags=["Promo codes"],
        request=request,
        responses={200: PROMO_CODE_BATCH_RESPONSE.serializer, **error_responses(*GENERATE_ERRORS)},
        examples=[
            OpenApiExample(
                "Pattern",
                value={"count": 500000, "pattern": "SUMMER-####-??????", "requestId": "summer-codes-1"},
                request_only=True,
            ),
            OpenApiExample(
                "Length and prefix",
                value={"count": 1000, "length": 12, "prefix": "XMAS-", "requestId": "xmas-codes-1"},
                request_only=True,
            ),
            OpenApiExample("Response", value=BATCH_EXAMPLE, response_only=True),
        ],
        description=(
            "Asks for `count` (1 to 10,000,000) new unique codes for a CODE promotion and answers the "
            "batch that writes them. Codes are `length` characters (5 to 40: 903 below, 904 above) "
            "with an optional `prefix` and `suffix` around random symbols, or follow a `pattern` "
            "(`#` a digit, `?` a symbol of the alphabet, any other character itself; sent alone). "
            "`charset`: ALPHANUMERIC (default: A-Z and 2-9 without the look-alikes 0, O, 1, I, L), "
            "NUMERIC, or CUSTOM with `alphabet` (upper-cased, de-duplicated, at least 2 symbols). A "
            "code holds A-Z, 0-9, `-` and `_` only (902). 4002 when the codes could be guessed: the "
            "possible codes must number at least a million per code the promotion will have. Up to "
            "10,000 codes are written before the answer (status DONE); more run in the background "
            "(PENDING/RUNNING; follow `done` with the batch's GET). The same `requestId` with the "
            "same parameters answers the same batch (resuming it if it stopped); with other "
            "parameters 4003. 707 for a promotion that is not a CODE promotion. Write access required."
        ),
    )


promo_code_batch_get = extend_schema(
    operation_id="promo_code_batch_get",
    summary="Get a promo-code batch (progress)",
    tags=["Promo codes"],
    parameters=[BATCH_ID],
    responses={200: PROMO_CODE_BATCH_RESPONSE.serializer, **error_responses(ErrorCode.NOT_FOUND)},
    examples=[OpenApiExample("Response", value=BATCH_EXAMPLE, response_only=True)],
    description=(
        "A generation or upload batch of the promotion: `status` PENDING, RUNNING, DONE, FAILED "
        "(`error` says why; sending the same generate request again resumes it) or CANCELLED, and "
        "`done` of `total` codes written. 404 for another promotion's batch."
    ),
)

promo_code_batch_cancel = extend_schema(
    operation_id="promo_code_batch_cancel",
    summary="Cancel a promo-code batch",
    tags=["Promo codes"],
    parameters=[BATCH_ID],
    request=None,
    responses={
        200: PROMO_CODE_BATCH_RESPONSE.serializer,
        **error_responses(ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.CONFLICT),
    },
    examples=[OpenApiExample("Response", value=BATCH_EXAMPLE, response_only=True)],
    description=(
        "Stops a batch that has not finished (status CANCELLED); the codes it already wrote stay. "
        "409 for a DONE or CANCELLED batch. Write access required."
    ),
)
