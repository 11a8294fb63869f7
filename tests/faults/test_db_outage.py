"""The database unreachable for a few seconds: requests fail fast with the JSON 503, and the server
recovers by itself, without a restart.

The server (gunicorn, one worker, persistent connections) reaches PostgreSQL through a TCP proxy the
test cuts: open connections drop, new ones get no answer (as in a network partition), so only the
connect timeout (DB_CONNECT_TIMEOUT) ends a request's wait. The shared PostgreSQL itself is never
touched.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection

from redemptions.models import Redemption
from tests.celery_worker import database_url, running
from tests.faults.support import AppServer, TcpProxy
from tests.redemptions.support import URL, body, line

pytestmark = [pytest.mark.postgres_only]

CONNECT_TIMEOUT = 2  # seconds: libpq's smallest
IDLE_SECONDS = 1  # a connection idle this long is checked before use (the default, 5 s, made short)


@pytest.fixture
def proxy():
    proxy = TcpProxy((connection.settings_dict["HOST"], int(connection.settings_dict["PORT"])))
    yield proxy
    proxy.close()


def test_an_outage_answers_503_at_once_and_the_server_recovers_by_itself(till, proxy, tmp_path):
    server = AppServer(
        tmp_path / "gunicorn.log",
        DATABASE_URL=database_url("127.0.0.1", proxy.port),
        DB_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        DB_CHECK_IDLE_SECONDS=str(IDLE_SECONDS),
    )
    wallet = ("GET", f"/api_gateway/v1/promotions/customer/{till.customer.pk}", None)
    redemption = ("POST", URL, body(till.customer, "TXN-OUTAGE", redemptions=[line(till.pos)]))
    with running(server):
        # given a worker holding its connection through the proxy
        assert server.request(*wallet, auth=till.auth)[0] == 200
        [worker] = server.worker_pids()

        # when the database becomes unreachable
        proxy.cut()

        # then reads and writes answer the JSON 503 within the connect timeout, not a hang
        for method, path, data in (wallet, redemption):
            started = time.monotonic()
            status, headers, payload = server.request(method, path, data, auth=till.auth, timeout=30)
            elapsed = time.monotonic() - started
            assert status == 503, payload
            assert headers["content-type"] == "application/json" and payload["errors"][0]["code"] == 503
            assert int(headers["retry-after"]) >= 1
            assert elapsed < CONNECT_TIMEOUT + 3, f"{method} {path} took {elapsed:.1f} s"
        assert not Redemption.objects.filter(transaction_identifier="TXN-OUTAGE").exists()

        # when the database is back, the same worker serves again, without a restart
        proxy.restore()
        assert server.request(*wallet, auth=till.auth)[0] == 200
        status, _, payload = server.request(*redemption, auth=till.auth)
        assert status == 200, payload
        assert server.worker_pids() == {worker}

        # and when every open connection drops but new ones work (a database restart or failover)
        # while the worker's connection was idle, the next request reconnects at once: the worker
        # checks a connection idle for DB_CHECK_IDLE_SECONDS before use
        time.sleep(IDLE_SECONDS + 0.5)
        proxy.drop_connections()
        assert server.request(*wallet, auth=till.auth)[0] == 200
        # and when they drop while it is busy (no check: it was used a moment ago), one request answers
        # the JSON 503 (retry it) and the next reconnects
        proxy.drop_connections()
        status, headers, payload = server.request(*wallet, auth=till.auth)
        assert (status, payload["errors"][0]["code"]) == (503, 503), payload
        assert int(headers["retry-after"]) >= 1
        assert server.request(*wallet, auth=till.auth)[0] == 200
        assert server.worker_pids() == {worker}
