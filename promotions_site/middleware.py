"""Request id and JSON errors for everything that happens outside a DRF view."""

from __future__ import annotations

import logging
import time
import uuid

from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponseBadRequest

from promotions_site import logs, metrics
from promotions_site.errors import ErrorCode, code_for_status, error_response, is_api_path
from promotions_site.request_context import request_id_valid, request_id_var

logger = logging.getLogger("promotions_site.requests")


class LeadingSlashesMiddleware:
    """Serves `//api_gateway/...` as `/api_gateway/...`: a run of leading slashes reads as one.

    Capillary's own example URLs join a base URL ending in `/` to a path starting with one, and
    tills copy them. First in the chain, so the URL resolver, the JSON error envelopes, the access
    log and the metrics all see the collapsed path, and so every redirect Django builds from it
    (APPEND_SLASH, the admin's login `next`) starts with a single slash: never a protocol-relative
    `//host/...` that a browser would follow to another site.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path_info = request.path_info
        if path_info.startswith("//"):
            collapsed = "/" + path_info.lstrip("/")
            # request.path is the script prefix followed by path_info (Django's WSGIRequest).
            request.path = request.path[: len(request.path) - len(path_info)] + collapsed
            request.path_info = request.META["PATH_INFO"] = collapsed
        return self.get_response(request)


class RequestIdMiddleware:
    """Accepts a sane `X-Request-ID`, generates one when absent, and echoes it in the response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.headers.get("X-Request-ID", "")
        request_id = supplied if request_id_valid(supplied) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


access_logger = logging.getLogger("promotions_site.access")
# Probes and scrapes every few seconds: their access lines are DEBUG, not INFO.
_QUIET_PATHS = ("/health/", "/metrics")


class AccessLogMiddleware:
    """One access-log line and one latency observation per request.

    Sits right after RequestIdMiddleware: the line carries the request id, and every log record
    written while the request runs carries its method, path and, once authenticated, its org and
    API client (`promotions_site.logs.RequestContextFilter`). The path is logged without its query
    string (it can hold customer identifiers).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = logs.request_var.set(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            duration = time.perf_counter() - started
            route = metrics.route_of(request)
            metrics.request_observe(
                route=route, method=request.method, status=response.status_code, seconds=duration
            )
            duration_ms = round(duration * 1000, 2)
            access_logger.log(
                logging.DEBUG if request.path.startswith(_QUIET_PATHS) else logging.INFO,
                "%s %s %s %.2fms",
                request.method,
                request.path,
                response.status_code,
                duration_ms,
                extra={"status": response.status_code, "duration_ms": duration_ms, "route": route},
            )
        finally:
            logs.request_var.reset(token)
        return response


class NulInUrlMiddleware:
    """Outside the API, a URL holding a NUL character (`%00`) in its path or query is a 400.

    PostgreSQL stores no NUL in text, so a NUL reaching a query (an admin list filter, a date
    drill-down, an object id) would be a database error, a 500. One refusal here covers every admin
    page, Django's own included. API paths are left to their views: each input there answers what
    the API documents for it (an unknown id 404, a bad query parameter 400, a v2 unknown customer
    8015), which a single blanket 400 would change.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path) and (
            "\x00" in request.path_info
            or any(
                "\x00" in key or any("\x00" in value for value in values)
                for key, values in request.GET.lists()
            )
        ):
            return HttpResponseBadRequest(
                "Bad Request: the URL holds a NUL character (%00).", content_type="text/plain"
            )
        return self.get_response(request)


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
