"""GET /health/live and /health/ready: JSON, no credentials, no HTTPS redirect, 503 when a dependency is down."""

from __future__ import annotations

import socket
import time

import pytest
from django.db import connection
from django.test import Client

REDIS = "redis://127.0.0.1:6379/8"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_live_answers_without_the_database_or_credentials():
    # given: no database access allowed in this test (pytest-django raises on any query)
    # when
    response = Client().get("/health/live", HTTP_X_REQUEST_ID="probe-1")
    # then
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Content-Type"] == "application/json"
    assert response["X-Request-ID"] == "probe-1"


def test_probes_are_not_redirected_to_https(settings, db):
    # given: production's HTTPS redirect
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    # then: a plain-HTTP probe is answered; an API call is still redirected
    assert client.get("/health/live").status_code == 200
    assert client.get("/health/ready").status_code == 200
    assert client.get("/api_gateway/v1/promotions/").status_code == 301


def test_ready_checks_the_database(db, settings):
    # given: no broker configured (the embedded default)
    settings.CELERY_BROKER_URL = ""
    # when
    response = Client().get("/health/ready")
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"] == {"status": "not configured"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.postgres_only
def test_ready_is_503_when_the_database_is_unreachable(db, settings, monkeypatch):
    # given: the database settings point at a port nothing listens on (new connections fail;
    # the shared PostgreSQL is untouched)
    settings.CELERY_BROKER_URL = ""
    monkeypatch.setitem(connection.settings_dict, "PORT", str(closed_port()))
    # when
    started = time.monotonic()
    response = Client().get("/health/ready")
    # then: a quick JSON 503 naming the failed check, without the server's details
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "error"
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert "127.0.0.1" not in response.content.decode()
    assert time.monotonic() - started < 5


def test_ready_checks_the_broker_when_one_is_configured(db, settings):
    # given: the local Redis as the broker
    settings.CELERY_BROKER_URL = REDIS
    # when
    response = Client().get("/health/ready")
    # then
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"]["status"] == "ok"


def test_ready_is_503_when_the_broker_is_unreachable(db, settings):
    # given: a broker URL that points nowhere
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/8"
    # when
    started = time.monotonic()
    response = Client().get("/health/ready")
    # then: the database is fine, the broker is not, and the answer comes at once (no retries)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "error"
    assert time.monotonic() - started < 5


def test_probes_answer_other_methods_with_json_405():
    response = Client().post("/health/ready")
    assert response.status_code == 405
    assert response.json() == {"errors": [{"code": 405, "message": "Method not allowed."}]}
    assert response["Allow"] == "GET, HEAD"
