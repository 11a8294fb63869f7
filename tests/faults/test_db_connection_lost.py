"""The request's database connection terminated mid-request (`pg_terminate_backend`): the client gets
the JSON 503, nothing of the request is written, and the next request on the same server succeeds.

A real server (gunicorn, one worker, persistent connections) serves a redemption; a side transaction
holds the promotion's limit counter, so the request, having written the redemption, its lines, the
instance it uses and its audit event, waits for the counter inside its transaction (the one statement
of `redemption_record_v1`). Its backend is terminated there.
"""

from __future__ import annotations

import threading

import pytest

from promotions.models import AuditEvent
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine
from tests.celery_worker import running
from tests.faults.support import (
    AppServer,
    backend_has_written,
    lock_waiter,
    side_connection,
    wait_for,
)
from tests.redemptions.support import URL, body, line

pytestmark = [pytest.mark.postgres_only]


def test_a_connection_killed_mid_request_answers_503_and_writes_nothing(till, tmp_path):
    # given a server whose worker has redeemed once (its connection open, the counter row there)
    with running(AppServer(tmp_path / "gunicorn.log")) as server:
        status, _, _ = server.request(
            "POST", URL, body(till.customer, "TXN-1", redemptions=[line(till.pos)]), auth=till.auth
        )
        assert status == 200
        [worker] = server.worker_pids()
        # and the limit's counter held by another transaction
        counter_lock = side_connection()
        counter_lock.execute(
            f"SELECT 1 FROM {RedemptionCounter._meta.db_table} WHERE restriction_id = %s FOR UPDATE",
            [till.limit.pk],
        )
        data = body(
            till.customer,
            "TXN-2",
            line_items=[line(till.wallet, till.instance)],
            redemptions=[line(till.pos)],
        )
        answer = []
        request = threading.Thread(
            target=lambda: answer.append(server.request("POST", URL, data, auth=till.auth))
        )

        # when the request has written all but the counter, and its connection is terminated
        request.start()
        backend = wait_for(
            # the redemption's one statement (redemption_record_v1), waiting for the counter it takes last
            lambda: lock_waiter("SELECT redemption_record_v1("),
            timeout=20,
            what="the counter",
        )
        assert backend_has_written(backend)
        with side_connection() as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [backend]).fetchone()[0]
        request.join(timeout=20)
        counter_lock.rollback()
        counter_lock.close()

        # then the client gets the JSON 503, with Retry-After
        [(status, headers, payload)] = answer
        assert status == 503, payload
        assert headers["content-type"] == "application/json"
        assert payload == {"errors": [{"code": 503, "message": payload["errors"][0]["message"]}]}
        assert int(headers["retry-after"]) >= 1
        # and nothing of it was written
        assert not Redemption.objects.filter(transaction_identifier="TXN-2").exists()
        assert RedemptionLine.objects.count() == 1
        assert AuditEvent.objects.filter(action="redemption.record").count() == 1
        assert RedemptionCounter.objects.get(restriction=till.limit).used == 1
        till.instance.refresh_from_db()
        assert (till.instance.status, till.instance.redemption_count) == ("ACTIVE", 0)

        # and the same request, sent again to the same worker, succeeds
        status, _, payload = server.request("POST", URL, data, auth=till.auth)
        assert status == 200, payload
        assert server.worker_pids() == {worker}
        assert RedemptionCounter.objects.get(restriction=till.limit).used == 2
        till.instance.refresh_from_db()
        assert till.instance.redemption_count == 1
