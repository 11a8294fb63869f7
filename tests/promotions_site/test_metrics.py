"""GET /metrics: latency per route, the domain counters after commit, bulk job gauges, access control,
and correct totals across gunicorn worker processes (prometheus_client multiprocess mode)."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from promotions.models import PromotionType
from tests.factories import CustomerFactory, PromotionFactory
from tests.redemptions.support import body, line, redeem
from wallets.models import BulkJob
from wallets.services import bulk_job_chunks, bulk_job_create, bulk_job_run_chunk

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "scrape-token-0123456789"


def scrape(client=None, token=TOKEN, **extra) -> dict[tuple, float]:
    """The metrics as {(sample name, sorted labels): value}."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def parse(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []


def test_domain_counters_count_committed_writes_only(api, org, settings, django_capture_on_commit_callbacks):
    # given
    customer_promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=-1)
    pos = PromotionFactory(org=org, type=PromotionType.POS)
    customers = CustomerFactory.create_batch(3, org=org)
    issue_url = f"/api_gateway/v1/promotions/{customer_promotion.pk}/issueBulk?contextId=metrics"
    before = scrape()

    # when: 3 issued (then a replay), 1 earned, one redemption (then a replay), one reversal (twice)
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(issue_url, [c.pk for c in customers], format="json").status_code == 200
        assert api.post(issue_url, [c.pk for c in customers], format="json").status_code == 200
        earn = {
            "customerId": customers[0].pk,
            "earnedFromType": "ACTIVITY",
            "earnedFromId": "BILL-1",
            "eventTimeISO": timezone.now().isoformat(),
            "eventDetails": {"id": "BILL-1", "type": "TransactionAdd"},
        }
        earned = api.post(f"/api_gateway/v1/promotions/{earning.pk}/earn", earn, format="json")
        assert earned.status_code == 200, earned.json()
        sale = body(customers[1], txn="M-1", redemptions=[line(pos, discount=5)])
        assert redeem(api, sale).status_code == 200
        assert redeem(api, sale).status_code == 200
        for _ in range(2):
            reversal = {"transactionIdentifier": "M-1"}
            response = api.post("/api_gateway/v1/promotions/redemptions/reverse", reversal, format="json")
            assert response.status_code == 200
        # and a refused write (an unknown customer's redemption) counts nothing
        assert redeem(api, body(customers[2], txn="M-2", customerId="99999999", redemptions=[line(pos)])).status_code == 404  # fmt: skip
    after = scrape()

    # then
    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("promotions_issued_total", type="CUSTOMER") == 3
    assert delta("promotions_earned_total", type="EARNING") == 1
    assert delta("promotions_redeemed_total") == 1
    assert delta("promotions_reversed_total") == 1


def test_counters_do_not_move_when_the_transaction_rolls_back(api, org):
    # given: writes whose on_commit callbacks never run (the test's transaction is rolled back)
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    customer = CustomerFactory(org=org)
    before = scrape()
    # when
    url = f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId=rolled-back"
    assert api.post(url, [customer.pk], format="json").status_code == 200
    # then
    assert value(scrape(), "promotions_issued_total", type="CUSTOMER") == value(
        before, "promotions_issued_total", type="CUSTOMER"
    )


def test_latency_histogram_is_per_route_name_not_raw_path(api, org):
    # given
    promotions = PromotionFactory.create_batch(2, org=org)
    labels = {"route": "promotion-detail", "method": "GET", "status": "200"}
    before = scrape()
    # when: two different paths of one route, and a path that matches no route
    for promotion in promotions:
        assert api.get(f"/api_gateway/v1/promotions/{promotion.pk}").status_code == 200
    assert api.get("/api_gateway/v2/nothing/here").status_code == 404
    after = scrape()
    # then
    count = "http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 2
    assert value(after, "http_request_duration_seconds_bucket", le="+Inf", **labels) == value(
        after, count, **labels
    )
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 1
    assert not any(promotions[0].pk in str(key) for key in after)


def test_bulk_job_progress_gauges_come_from_the_database(org, settings):
    # given: a job of 5 customers (one unknown) created, not yet run
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    customers = CustomerFactory.create_batch(4, org=org)
    job = bulk_job_create(
        org=org,
        kind="ISSUE",
        promotion=promotion,
        params={"contextId": "gauges"},
        identifier_type="id",
        values=[*(str(c.pk) for c in customers), "424242424"],
        user=None,
    )
    labels = {"job": str(job.pk), "org": str(org.pk), "kind": "ISSUE"}
    # when
    pending = scrape()
    # then
    assert value(pending, "promotions_bulk_job_items", state="pending", **labels) == 4
    assert value(pending, "promotions_bulk_job_items", state="failed", **labels) == 1
    assert value(pending, "promotions_bulk_jobs", status="PENDING") == 1
    # when it has run
    for low, high in bulk_job_chunks(job=job):
        bulk_job_run_chunk(job_id=job.pk, low=low, high=high)
    done = scrape()
    # then it leaves the per-job gauge and counts as DONE
    assert BulkJob.objects.get(pk=job.pk).status == BulkJob.Status.DONE
    assert value(done, "promotions_bulk_job_items", state="pending", **labels) == 0
    assert not any(key[0] == "promotions_bulk_job_items" and ("job", str(job.pk)) in key[1] for key in done)
    assert value(done, "promotions_bulk_jobs", status="DONE") == 1


def test_metrics_need_the_token(db):
    client = Client()
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["errors"][0]["code"] == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_metrics_allowed_networks(db, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    client = Client()
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200


def test_metrics_are_closed_by_default_in_production(db, settings):
    settings.METRICS_TOKEN = ""
    settings.DEBUG = False
    response = Client().get("/metrics")
    assert response.status_code == 403
    assert response.json() == {"errors": [{"code": 403, "message": "Metrics are not open to this client."}]}
    settings.DEBUG = True
    assert Client().get("/metrics").status_code == 200


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_totals_are_right_across_gunicorn_worker_processes(tmp_path):
    # given: gunicorn with 2 worker processes sharing a multiprocess directory
    db = connection.settings_dict
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")  # a previous run's file: removed at start
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SECRET_KEY": "x" * 50,
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "WARNING",
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "-c", "python:promotions_site.gunicorn_conf"),
        *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--preload", "--no-control-socket"),
        "promotions_site.wsgi:application",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, server)
        # when: probes, each on a new connection, until both workers have answered some
        sent = 0
        while sent < 20 or len(list(metrics_dir.glob("histogram_*.db"))) < 2:
            assert _get(port, "/health/live")[0] == 200
            sent += 1
            assert sent < 500, "the probes never reached a second worker"
        # then: every scrape, whichever worker answers it, counts every probe
        for _ in range(6):
            status, text, _ = _get(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            samples = parse(text)
            assert value(samples, "http_request_duration_seconds_count", route="health-live", method="GET", status="200") == sent  # fmt: skip
        assert not (metrics_dir / "counter_1.db").exists()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str, headers: dict | None = None) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode(), dict(response.getheaders())
    finally:
        conn.close()


def _wait_for(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited: {server.stdout.read().decode()[-3000:]}")
        try:
            _get(port, "/health/ready")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not answer within 60 s")
