"""Health probes for load balancers and orchestrators: `/health/live` and `/health/ready`.

Both answer JSON without authentication, are never throttled (they are not DRF views) and are
exempt from the HTTPS redirect (`SECURE_REDIRECT_EXEMPT`), so a probe can speak plain HTTP to a
worker. A failed check names the exception class only; the details go to the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from promotions_site.errors import ErrorCode, error_response

logger = logging.getLogger(__name__)


def _answer(body: dict[str, Any], status: int) -> JsonResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _not_allowed(request: HttpRequest) -> JsonResponse | None:
    if request.method in ("GET", "HEAD"):
        return None
    code = ErrorCode.METHOD_NOT_ALLOWED
    response = error_response(request.path, code.http_status, [{"code": int(code), "message": code.message}])
    response["Allow"] = "GET, HEAD"
    return response


@csrf_exempt
def health_live(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests. Touches nothing else (no database)."""
    return _not_allowed(request) or _answer({"status": "ok"}, 200)


def database_check(alias: str, timeout: float) -> None:
    """Open a new connection with the alias's settings and run `SELECT 1`, within `timeout` seconds.

    A new connection, not the request's: it proves the server accepts connections now, and a dead
    persistent connection of this worker cannot make the probe hang.
    """
    wrapper = connections[alias]
    params = wrapper.get_connection_params()
    if wrapper.vendor == "postgresql":
        params["connect_timeout"] = max(2, round(timeout))  # libpq's minimum is 2 s
        params["options"] = f"{params.get('options', '')} -c statement_timeout={int(timeout * 1000)}".strip()
    raw = wrapper.get_new_connection(params)
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchone()
    finally:
        raw.close()


def broker_check(url: str, timeout: float) -> None:
    """Connect to the Celery broker once (no retries) and open a channel, within `timeout` seconds."""
    from kombu import Connection

    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout, "max_retries": 0}
    with Connection(url, connect_timeout=timeout, transport_options=options) as connection:
        connection.ensure_connection(max_retries=0, interval_start=0, timeout=timeout)
        connection.default_channel  # noqa: B018 (opening the channel is the check)


def _run(name: str, check, *args) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check(*args)
    except Exception as error:
        logger.warning("readiness check %s failed: %s: %s", name, type(error).__name__, error)
        outcome: dict[str, Any] = {"status": "error", "error": type(error).__name__}
    else:
        outcome = {"status": "ok"}
    outcome["durationMs"] = round((time.perf_counter() - started) * 1000, 1)
    return outcome


@csrf_exempt
def health_ready(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: every database answers and, when `CELERY_BROKER_URL` is set, the broker
    accepts a connection. 200 `{"status": "ok", "checks": {...}}`, else 503 with `"unavailable"`."""
    if (refused := _not_allowed(request)) is not None:
        return refused
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    checks: dict[str, dict[str, Any]] = {}
    for alias in settings.DATABASES:
        name = "database" if alias == "default" else f"database:{alias}"
        checks[name] = _run(name, database_check, alias, timeout)
    if settings.CELERY_BROKER_URL:
        checks["broker"] = _run("broker", broker_check, settings.CELERY_BROKER_URL, timeout)
    else:
        checks["broker"] = {"status": "not configured"}
    ready = all(check["status"] != "error" for check in checks.values())
    return _answer({"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503)
