"""The error-code table and the one path every error takes to the client.

Services raise `PromotionError(ErrorCode.X)`; `api_exception_handler` (for DRF views) and
`promotions_site.middleware.JsonErrorMiddleware` (for everything outside a view: unknown URLs,
oversized bodies, crashes) render the envelope the endpoint documents:

- v1 data calls and v3 calls: ``{"errors": [{"code": 706, "message": "..."}]}``
- v2 calls: ``{"warnings": [], "errors": [{"status": false, "code": ..., "message": ...}]}`` (the documented
  error bodies carry no ``sideEffects``); a v2 code whose HTTP status is 200 (8890) is a warning, not an
  error: ``{"warnings": [{"status": false, "code": 8890, "message": ...}], "errors": [], "sideEffects": []}``
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response


class ErrorCode(IntEnum):
    """Every code the API answers with, its HTTP status and its default message."""

    def __new__(cls, code: int, http_status: int, message: str):
        member = int.__new__(cls, code)
        member._value_ = code
        member.http_status = http_status
        member.message = message
        return member

    # Cart locks (docs/cart-locks.md): Capillary's pending-cart codes.
    MAX_PENDING_CARTS_EXCEEDED = 116, 409, "Max pending open carts exceeded."
    PENDING_CART_NOT_FOUND = 120, 404, "Pending cart not found."
    BAD_REQUEST = 400, 400, "Invalid request."
    UNAUTHORIZED = 401, 401, "Authentication credentials were not provided or are invalid."
    FORBIDDEN = 403, 403, "You do not have permission to perform this action."
    NOT_FOUND = 404, 404, "Not found."
    METHOD_NOT_ALLOWED = 405, 405, "Method not allowed."
    NOT_ACCEPTABLE = 406, 406, "Could not satisfy the request Accept header."
    CONFLICT = 409, 409, "Conflict: potential business rule violation."
    REQUEST_TOO_LARGE = 413, 413, "Request body too large."
    UNSUPPORTED_MEDIA_TYPE = 415, 415, "Unsupported media type; send application/json."
    UNPROCESSABLE = 422, 422, "Unprocessable request."
    THROTTLED = 429, 429, "Request was throttled."
    INTERNAL_ERROR = 500, 500, "Internal server error. Retry the request after a short delay."
    SERVICE_UNAVAILABLE = 503, 503, "Service temporarily unavailable. Retry the request after a short delay."

    # Cart promotions (Capillary's PROMO.* codes).
    MAX_ACTIVE_PROMOTIONS_EXCEEDED = 705, 400, "Exceeded maximum active promotions for an org."
    PROMOTION_EXPIRED = 706, 400, "Promotion has expired."
    UNSUPPORTED_PROMOTION_TYPE = 707, 400, "The passed promotion type is not supported."
    MAX_EARN_PER_CUSTOMER_EXCEEDED = 708, 409, "Exceeded the max earn per customer limit."
    PROMOTION_NOT_RUNNING = 709, 400, "Promotion not in running state."
    EARNED_FROM_TYPE_CHANGED = 713, 409, "Earned from type cannot be changed."
    EARN_NOT_SUPPORTED = 714, 400, "Earn is not supported for this promotion type."
    # Also a wallet instance the redeeming customer cannot use: another customer's, a LOCKED one
    # (issued, not yet earned), or any wallet promotion in an anonymous sale (customerId -1); the
    # message says which.
    PROMOTION_NOT_ISSUED_TO_CUSTOMER = 715, 400, "Promotion was not issued to current customer."
    PROMOTION_NAME_NOT_UNIQUE = 716, 400, "Promotion name must be unique."
    PROMOTION_ID_INVALID = 725, 400, "Promotion id is not valid."
    EARN_ALREADY_REDEEMED = 729, 400, "Earn already redeemed."
    EARN_REVOKE_NOT_SUPPORTED = 730, 400, "Earn revoke not possible for POS and CODE promotion."
    EARN_ID_INVALID = 731, 400, "Invalid earn id."
    # A customer's opt-in (POST .../activate and .../deactivate with customerId): Capillary names these
    # PROMO.UNSUPPORTED_PREFERENCE_CHANGE and PROMO.UNSUPPORTED_PREFERENCE_CHANGE_PENDING_CART.
    UNSUPPORTED_PREFERENCE_CHANGE = 736, 400, "Unsupported preference change."
    PREFERENCE_CHANGE_PENDING_CART = (
        737,
        409,
        "Unsupported preference change: a pending cart holds the promotion.",
    )
    REDEMPTION_ALREADY_PRESENT = 800, 409, "Promotion redemption already present."
    REDEMPTION_IDENTIFIER_INVALID = 802, 400, "Redemption identifier is invalid."
    CART_EVALUATION_INVALID = 803, 400, "No valid cart evaluation id passed."
    # Ours, next to Capillary's redemption codes 800-803: the capped strategy checks each redeemed
    # discount against what the engine gives for the reported cart.
    DISCOUNT_NOT_GIVEN_FOR_CART = (
        804,
        400,
        "The promotion does not give this discount for the reported cart.",
    )
    # Capillary's "could not acquire the lock on the resource": another request holds the customer's
    # carts right now (a retry a moment later succeeds).
    RESOURCE_LOCKED = 521, 409, "Could not acquire the lock on the resource: resource is locked."
    # Promo codes (Capillary's code errors; docs/code-link.md).
    INVALID_PROMO_CODE = 1001, 400, "Invalid promo code."
    PROMO_CODE_EXPIRED = 1002, 400, "Promo code has expired."
    PROMO_CODE_LINKED_TO_ANOTHER_CUSTOMER = 1005, 409, "Promo code is linked to another customer."
    INVALID_CUSTOMER_IDENTIFIER = 1006, 400, "Invalid customer identifier."
    CUSTOMER_FETCH_FAILED = 1007, 400, "Error while fetching customer identifier."
    RESTRICTION_SCHEMA_CHANGE = 1011, 400, "Cannot change the restriction schema of an existing promotion."

    # Retry safety (Idempotency-Key header; ours, after the IETF draft's 409 and 422).
    IDEMPOTENCY_KEY_IN_USE = (
        4091,
        409,
        "A request with this Idempotency-Key is still being processed; retry after it has completed.",
    )
    IDEMPOTENCY_KEY_REUSED = (
        4221,
        422,
        "This Idempotency-Key was already used for a different request (another body, query, method "
        "or path); send a new key.",
    )

    # The till of a request (X-CAP-API-ATTRIBUTION-TILL-CODE; ours: Capillary documents no code for it).
    TILL_CODE_UNKNOWN = 4001, 400, "Unknown till: no till of the org has this code."

    # Loyalty promotions (v2).
    CUSTOMER_NOT_FOUND = 8015, 400, "Customer not found for the given identifiers"
    INVALID_PROGRAM_ID = 1101, 400, "invalid programId passed"
    INVALID_ENTITY_TYPE = 1212, 400, "Entity type invalid."
    INVALID_LOYALTY_PROMOTION_ID = 8874, 400, "promotion id passed is invalid"
    PROMOTION_NOT_ISSUED = 8890, 200, "promotion not issued due to config issues or customer exhausted limits"
    MANDATORY_PARAMETERS_MISSING = 11013, 400, "identifierName, identifierValue, source can not be empty"


class PromotionError(Exception):
    """A documented failure: renders as the endpoint's envelope with `code` and `message`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        *,
        http_status: int | None = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        self.code = code
        self.message = message or code.message
        self.http_status = http_status or code.http_status
        # Several failures reported at once (each `{code, message, ...}`), e.g. every entry of a
        # per-entry request refused; `code` and `http_status` are then the first one's.
        self.errors = errors
        super().__init__(f"{int(code)}: {self.message}")

    def as_error(self) -> dict[str, Any]:
        return {"code": int(self.code), "message": self.message}

    def as_errors(self) -> list[dict[str, Any]]:
        return self.errors or [self.as_error()]


# The generic code of each HTTP status (400 -> 400, ...): not Capillary's small codes (116, 120, 521).
_STATUS_CODES = {member.http_status: member for member in ErrorCode if member.value == member.http_status}


def code_for_status(http_status: int) -> ErrorCode:
    return _STATUS_CODES.get(
        http_status, ErrorCode.BAD_REQUEST if http_status < 500 else ErrorCode.INTERNAL_ERROR
    )


def is_api_path(path: str) -> bool:
    """Under an API prefix, or the prefix itself without its slash (`/api_gateway`: a JSON 404 too)."""
    return path.startswith(settings.API_PATH_PREFIXES) or path + "/" in settings.API_PATH_PREFIXES


def _v2_item(error: dict[str, Any]) -> dict[str, Any]:
    return {"status": False, "code": error["code"], "message": error["message"]}


def envelope(path: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error body the endpoint at `path` documents."""
    if path.startswith("/v2/"):
        return {"warnings": [], "errors": [_v2_item(e) for e in errors]}
    return {"errors": errors}


def v2_warning_body(error: dict[str, Any]) -> dict[str, Any]:
    """A v2 call that did nothing for a documented reason (8890): a 200 with the reason as a warning."""
    return {"warnings": [_v2_item(error)], "errors": [], "sideEffects": []}


def error_response(path: str, http_status: int, errors: list[dict[str, Any]], headers=None) -> JsonResponse:
    response = JsonResponse(
        envelope(path, errors), status=http_status, json_dumps_params={"separators": (",", ":")}
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def flatten_detail(detail: Any, prefix: str = "") -> list[str]:
    """Turn DRF's nested error detail into readable `field: message` lines."""
    if isinstance(detail, dict):
        lines: list[str] = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            lines.extend(flatten_detail(value, f"{prefix}.{name}" if prefix and name else prefix or name))
        return lines
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [f"{prefix}: {item}" if prefix else str(item) for item in detail]
        lines = []
        for index, item in enumerate(detail):
            if item:
                lines.extend(flatten_detail(item, f"{prefix}[{index}]"))
        return lines
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler, rendering every failure in the documented envelope.

    Keeps DRF's `set_rollback()` so a request that failed inside `ATOMIC_REQUESTS` or an outer
    atomic block writes nothing.
    """
    from rest_framework.views import set_rollback  # rest_framework.views imports the auth classes

    request = context.get("request")
    path = request.path if request is not None else "/api_gateway/"
    headers: dict[str, str] = {}

    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )

    if isinstance(exc, PromotionError) and exc.http_status < 400 and path.startswith("/v2/"):
        # Nothing was written (the service raised), yet v2 documents this outcome as a warning.
        set_rollback()
        return Response(v2_warning_body(exc.as_error()), status=exc.http_status)
    if isinstance(exc, PromotionError):
        http_status, errors = exc.http_status, exc.as_errors()
    elif isinstance(exc, exceptions.APIException):
        http_status = exc.status_code
        code = int(code_for_status(http_status))
        if isinstance(exc, exceptions.ValidationError):
            messages = flatten_detail(exc.detail) or [ErrorCode.BAD_REQUEST.message]
        else:
            messages = [str(exc.detail)]
        errors = [{"code": code, "message": message} for message in messages]
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and not headers.get(
            "WWW-Authenticate"
        ):
            # DRF answers 403 when no authenticator offers a challenge; credentials missing is a 401.
            http_status, errors[0]["code"] = status.HTTP_401_UNAUTHORIZED, 401
            headers["WWW-Authenticate"] = 'Basic realm="api"'
    else:
        return None

    set_rollback()
    return Response(envelope(path, errors), status=http_status, headers=headers)
