"""Structured JSON logs, the access log and the request id: in responses, log lines, audit events and
Celery tasks (run eagerly, and on a real worker through the broker)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promotions.models import AuditEvent, PromotionType
from promotions_site.logs import JsonFormatter, RequestContextFilter
from promotions_site.request_context import request_id_var
from tests.admin_support import staff_login
from tests.factories import CustomerFactory, OrganizationFactory, PromotionFactory
from wallets.models import BulkJob
from wallets.services import bulk_job_chunks, bulk_job_create, bulk_job_start
from wallets.tasks import bulk_job_chunk_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def log_lines():
    """The JSON lines written while the test runs, as the production handler formats them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def issue(api, promotion, customer_ids, context_id="ctx", **headers):
    return api.post(
        f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId={context_id}",
        customer_ids,
        format="json",
        **headers,
    )


def test_access_line_is_one_json_object_with_the_request_context(api, org, log_lines):
    # given
    promotion = PromotionFactory(org=org)
    # when
    response = api.get(
        f"/api_gateway/v1/promotions/{promotion.pk}?x=secret-mobile", HTTP_X_REQUEST_ID="req-abc.1"
    )
    # then
    assert response.status_code == 200
    access = [line for line in log_lines() if line["logger"] == "promotions_site.access"]
    assert len(access) == 1
    line = access[0]
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-abc.1"
    assert (line["method"], line["path"], line["status"]) == (
        "GET",
        f"/api_gateway/v1/promotions/{promotion.pk}",
        200,
    )
    assert line["route"] == "promotion-detail"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert (line["org"], line["client"]) == (org.pk, api.api_client.username)
    assert line["time"].endswith("+00:00") and "T" in line["time"]
    assert "secret-mobile" not in json.dumps(line)  # the query string is never logged


def test_request_id_round_trip_into_the_response_the_logs_and_the_audit_event(api, org, log_lines):
    # given
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    customer = CustomerFactory(org=org)
    # when: no X-Request-ID is sent
    response = issue(api, promotion, [customer.pk])
    # then: one is generated, echoed, logged and stored with the write's audit event
    assert response.status_code == 200
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    assert [line["request_id"] for line in log_lines() if line["logger"] == "promotions_site.access"] == [
        request_id
    ]
    event = AuditEvent.objects.get(action="promotion.issue_bulk", object_id=promotion.pk)
    assert event.request_id == request_id
    # and a client's own id is kept as sent
    second = issue(api, promotion, [customer.pk], context_id="again", HTTP_X_REQUEST_ID="till-42:7")
    assert second["X-Request-ID"] == "till-42:7"
    assert AuditEvent.objects.filter(request_id="till-42:7", action="promotion.issue_bulk").exists()


def test_django_error_logs_carry_the_request_id(api, log_lines):
    # when: Django logs the 404 after the middleware has finished
    response = api.get("/api_gateway/v1/promotions/customer/999999999", HTTP_X_REQUEST_ID="nf-1")
    # then
    assert response.status_code == 404
    warnings = [line for line in log_lines() if line["logger"] == "django.request"]
    assert warnings and all(line["request_id"] == "nf-1" for line in warnings)
    assert warnings[0]["path"] == "/api_gateway/v1/promotions/customer/999999999"
    assert "request" not in warnings[0]  # the HttpRequest object itself is not dumped


def test_admin_access_lines_name_the_staff_user_and_org(client, org, log_lines):
    # given
    user = staff_login(client, org)
    # when
    assert client.get("/admin/").status_code == 200
    # then
    (line,) = [line for line in log_lines() if line["logger"] == "promotions_site.access"]
    assert (line["user"], line["org"], line["route"]) == (user.username, org.pk, "admin:index")
    assert "client" not in line


def test_exceptions_are_logged_with_their_traceback(log_lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tests").exception("it failed")
    (line,) = [line for line in log_lines() if line["logger"] == "tests"]
    assert line["level"] == "ERROR" and line["message"] == "it failed" and line["request_id"] == ""
    assert "ValueError: boom" in line["exception"]


def _job(org, n=3, context_id="job"):
    promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    customers = CustomerFactory.create_batch(n, org=org)
    job = bulk_job_create(
        org=org,
        kind="ISSUE",
        promotion=promotion,
        params={"contextId": context_id},
        identifier_type="id",
        values=[str(c.pk) for c in customers],
        user=None,
    )
    return promotion, job


def test_a_task_run_eagerly_takes_the_request_id_from_its_headers(db, log_lines):
    # given: a job chunk, sent outside any request with the id of the request that enqueued it
    promotion, job = _job(OrganizationFactory())
    ((low, high),) = bulk_job_chunks(job=job)
    # when (no broker in the tests: tasks run eagerly)
    bulk_job_chunk_task.apply_async((job.pk, low, high), headers={"request_id": "enqueued-by-7"})
    # then: the audit event the task wrote and the task's log lines carry it
    event = AuditEvent.objects.get(action="promotion.issue_bulk", object_id=promotion.pk)
    assert event.request_id == "enqueued-by-7"
    task_lines = [line for line in log_lines() if line.get("task") == "wallets.tasks.bulk_job_chunk_task"]
    assert task_lines and {line["request_id"] for line in task_lines} == {"enqueued-by-7"}
    # and nothing of it stays current after the task
    assert request_id_var.get() == ""


def test_a_task_run_eagerly_inside_a_request_keeps_its_id(db):
    # given
    promotion, job = _job(OrganizationFactory())
    ((low, high),) = bulk_job_chunks(job=job)
    token = request_id_var.set("outer-request")
    try:
        # when
        bulk_job_chunk_task.delay(job.pk, low, high)
    finally:
        request_id_var.reset(token)
    # then
    assert AuditEvent.objects.get(action="promotion.issue_bulk", object_id=promotion.pk).request_id == (
        "outer-request"
    )


def test_a_task_without_a_request_uses_its_task_id(db):
    promotion, job = _job(OrganizationFactory())
    ((low, high),) = bulk_job_chunks(job=job)
    result = bulk_job_chunk_task.apply_async((job.pk, low, high))
    assert AuditEvent.objects.get(action="promotion.issue_bulk", object_id=promotion.pk).request_id == (
        result.id
    )


def _wait_until_finished(job) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED):
            return
        time.sleep(0.1)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_gets_the_request_id_through_the_broker(worker):
    # given: a job started while a request id is current (as in the admin request that starts it)
    promotion, job = _job(OrganizationFactory(), n=4, context_id="via-broker")
    token = request_id_var.set("admin-req-99")
    try:
        # when: its chunk is published to Redis and a worker process runs it
        bulk_job_start(job=job)
    finally:
        request_id_var.reset(token)
    _wait_until_finished(job)
    # then: the audit event written in the worker carries the request's id
    assert (job.status, job.done) == ("DONE", 4), job.error
    event = AuditEvent.objects.get(action="promotion.issue_bulk", object_id=promotion.pk)
    assert event.request_id == "admin-req-99"


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_job_run_in_a_background_thread_keeps_the_request_id(settings):
    # given: no broker, jobs in a background thread of the web process (the embedded default)
    settings.CELERY_BROKER_URL = ""
    settings.BULK_JOBS_IN_PROCESS = "thread"
    settings.BULK_JOB_INLINE_MAX = 0
    promotion, job = _job(OrganizationFactory(), n=2, context_id="in-thread")
    token = request_id_var.set("admin-req-100")
    try:
        # when
        bulk_job_start(job=job)
    finally:
        request_id_var.reset(token)
    _wait_until_finished(job)
    # then
    assert (job.status, job.done) == ("DONE", 2), job.error
    event = AuditEvent.objects.get(action="promotion.issue_bulk", object_id=promotion.pk)
    assert event.request_id == "admin-req-100"


@pytest.mark.parametrize(("debug", "log_format", "json_expected"), [("0", "", True), ("1", "", False)])
def test_log_format_defaults_to_json_when_debug_is_off(debug, log_format, json_expected):
    # given: a process started like production (DEBUG off) or development (DEBUG on)
    env = {**os.environ, "DEBUG": debug, "LOG_FORMAT": log_format, "SECRET_KEY": "x"}
    code = "import logging; logging.getLogger('probe').warning('hello %s', 'there')"
    # when
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if "hello there" in line]
    if json_expected:
        entry = json.loads(line)
        assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "probe", "hello there")
    else:
        assert line.endswith("WARNING probe [] hello there")
