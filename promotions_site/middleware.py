"""Request id and JSON errors for everything that happens outside a DRF view."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from django.db import DatabaseError, InterfaceError, OperationalError

from promotions_site.errors import ErrorCode, code_for_status, error_response, is_api_path

logger = logging.getLogger("promotions_site.requests")

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def current_request_id() -> str:
    return request_id_var.get()


class RequestIdMiddleware:
    """Accepts a sane `X-Request-ID`, generates one when absent, and echoes it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if _REQUEST_ID_RE.match(supplied) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class JsonErrorMiddleware:
    """On API paths, no error is ever an HTML page.

    Django renders some failures itself, before or after the view (an unknown URL, a body over
    the size cap, a crash); on API paths they are replaced by the documented JSON envelope.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code = code_for_status(response.status_code)
            return error_response(
                request.path, response.status_code, [{"code": int(code), "message": code.message}]
            )
        return response

    def process_exception(self, request, exception):
        if not is_api_path(request.path):
            return None
        if isinstance(exception, OperationalError | InterfaceError) or (
            isinstance(exception, DatabaseError) and "terminat" in str(exception).lower()
        ):
            logger.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
            code = ErrorCode.SERVICE_UNAVAILABLE
            return error_response(
                request.path,
                code.http_status,
                [{"code": int(code), "message": code.message}],
                {"Retry-After": "1"},
            )
        logger.exception("unhandled error during %s %s", request.method, request.path)
        code = ErrorCode.INTERNAL_ERROR
        return error_response(request.path, code.http_status, [{"code": int(code), "message": code.message}])
