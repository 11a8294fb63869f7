"""The embedded SQLite serves the demo while a bulk job runs: the job page, the progress bar and API
redemptions answer (no "database table is locked" 500, no "database is locked" 503) while the
in-process thread runner writes the job's chunks; and what only SQLite's driver trips on (an id beyond
64 bits) is a form error.

These cases need a file SQLite database. `tests/promotions_site/test_sqlite_demo.py` runs them in a
subprocess with `DATABASE_URL=sqlite:///<temporary file>`, so they run whatever database the suite
itself uses (CI: PostgreSQL). By hand:
`DATABASE_URL=sqlite:////tmp/demo.sqlite3 pytest tests/promotions_site/sqlite_demo_cases.py`.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.models import Permission
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from promotions.models import PromotionType
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, OrganizationFactory, PromotionFactory, UserFactory
from tests.redemptions.support import URL as REDEMPTIONS_URL
from tests.redemptions.support import body, line
from wallets.models import BulkJob, Customer
from wallets.services import bulk_job_create, bulk_job_start

CUSTOMERS = 1000  # a bulk earn of this many keeps the runner writing for seconds on SQLite
DEADLINE_SECONDS = 240


@pytest.fixture(autouse=True)
def _on_a_sqlite_file():
    if connection.vendor != "sqlite" or connection.creation.is_in_memory_db(connection.settings_dict["NAME"]):
        pytest.fail(
            "run these cases on a file SQLite database (DATABASE_URL=sqlite:///<file>)", pytrace=False
        )


@pytest.mark.django_db
def test_sqlite_runs_in_wal_with_a_busy_timeout_and_immediate_transactions():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 20_000
    assert connection.transaction_mode == "IMMEDIATE"


class Traffic:
    """Requests sent from other threads while the job runs; every answer's status is kept."""

    def __init__(self):
        self.statuses: list[tuple[str, int, str]] = []
        self.slowest: dict[str, float] = {}
        self.reads_during_the_job = 0
        self.job_started = threading.Event()
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self, name, step, start: threading.Barrier):
        try:
            start.wait()
            count = 0
            while not self.stop.is_set():
                began = time.monotonic()
                response = step(count)
                self.slowest[name] = max(self.slowest.get(name, 0.0), time.monotonic() - began)
                self.statuses.append(
                    (name, response.status_code, response.content[:300].decode(errors="replace"))
                )
                count += 1
        except BaseException as error:  # reported by the test, not lost in the thread
            self.errors.append(error)
        finally:
            connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_job_page_and_redemptions_answer_while_a_bulk_earn_runs_in_the_background(settings):
    # given: the embedded default's runner (a background thread), a bulk earn too large to run in
    # the request, a marketer watching its page, and a till redeeming a POS promotion
    settings.BULK_JOBS_IN_PROCESS = "thread"
    settings.BULK_JOB_INLINE_MAX = 10
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    org = OrganizationFactory()
    customers = Customer.objects.bulk_create(
        Customer(org=org, mobile=f"9188{i:08d}", first_name="Customer") for i in range(CUSTOMERS)
    )
    earning = PromotionFactory(org=org, type=PromotionType.EARNING, max_issuance_per_customer=-1)
    pos = PromotionFactory(org=org, type=PromotionType.POS)
    marketer = UserFactory(org=org)
    marketer.user_permissions.set(Permission.objects.all())
    till = ApiClientFactory(org=org)
    job = bulk_job_create(
        org=org,
        kind=BulkJob.Kind.EARN,
        promotion=earning,
        params={
            "earnedFromType": "ACTIVITY",
            "earnedFromId": "sqlite-demo",
            "entries": [{"promotionId": earning.pk, "earnCount": 1}],
        },
        identifier_type="id",
        values=[str(c.pk) for c in customers],
        user=marketer,
    )
    page_url = reverse("admin:wallets_bulkjob_change", args=[job.pk])
    progress_url = reverse("admin:wallets_bulkjob_progress", args=[job.pk])
    watcher, redeemer = Client(), APIClient()
    watcher.force_login(marketer)
    redeemer.credentials(HTTP_AUTHORIZATION=basic_auth(till.username, till.plain_secret))
    traffic, start = Traffic(), threading.Barrier(3)

    def watch(count):
        response = watcher.get(progress_url if count % 2 else page_url)
        if (
            count % 2
            and traffic.job_started.is_set()
            and response.status_code == 200
            and not response.json()["finished"]
        ):
            traffic.reads_during_the_job += 1
        return response

    def redeem(count):
        data = body(customers[count % CUSTOMERS], txn=f"TXN-{count}", redemptions=[line(pos, discount=5)])
        return redeemer.post(REDEMPTIONS_URL, data, format="json")

    threads = [
        threading.Thread(target=traffic.run, args=("job page", watch, start)),
        threading.Thread(target=traffic.run, args=("redemption", redeem, start)),
    ]
    for thread in threads:
        thread.start()

    # when: the job starts while they are at it
    start.wait()
    bulk_job_start(job=job)
    traffic.job_started.set()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED):
            break
        time.sleep(0.2)
    traffic.stop.set()
    for thread in threads:
        thread.join(timeout=60)

    # then: every request answered, the job finished, and the requests overlapped it
    assert not traffic.errors, traffic.errors
    failures = [entry for entry in traffic.statuses if entry[1] != 200]
    assert not failures, failures[:5]
    assert (job.status, job.done, job.failed, job.error) == (BulkJob.Status.DONE, CUSTOMERS, 0, "")
    assert traffic.reads_during_the_job > 0
    print(f"slowest answers (s): {traffic.slowest}; reads during the job: {traffic.reads_during_the_job}")
    redemptions = sum(1 for name, _, _ in traffic.statuses if name == "redemption")
    assert redemptions > 1


@pytest.mark.django_db
def test_an_id_beyond_64_bits_is_a_form_error_not_an_overflow(client):
    # given: SQLite's driver cannot bind an integer beyond 64 bits (PostgreSQL compares it as numeric)
    client.force_login(UserFactory(org=None, is_superuser=True))
    # when: a crafted post names such a permission
    response = client.post(reverse("admin:auth_group_add"), {"name": "Marketers", "permissions": "9" * 25})
    # then
    assert response.status_code == 200
    assert "is not one of the available choices" in response.content.decode()
