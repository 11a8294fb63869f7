"""Shared fixtures. CI (REQUIRE_POSTGRES=1) insists on PostgreSQL and on zero skipped tests."""

from __future__ import annotations

import base64
import contextlib
import importlib
import os

import pytest
from django.apps import apps as global_apps
from django.db import connection, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.signals import post_migrate
from rest_framework.test import APIClient

from promotions.models import PromotionType
from tests.factories import ApiClientFactory, CustomerFactory, OrganizationFactory, PromotionFactory

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def pytest_report_header(config):
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']} {settings.DATABASES['default'].get('HOST') or ''}"


@pytest.fixture(scope="session", autouse=True)
def _database_is_postgres_in_ci(django_db_setup, django_db_blocker):
    if REQUIRE_POSTGRES and connection.vendor != "postgresql":
        pytest.exit(f"REQUIRE_POSTGRES=1 but the database under test is {connection.vendor}", returncode=3)


@contextlib.contextmanager
def audit_triggers_suspended(db_connection):
    """The audit table's append-only triggers (promotions migration 0004_audit_event_append_only) off, inside the caller's
    transaction: the statements run in between may empty the table. Test support only."""
    table = "promotions_auditevent"
    with db_connection.cursor() as cursor:
        if db_connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            yield
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            return
        cursor.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table]
        )
        triggers = cursor.fetchall()
        for name, _ in triggers:
            cursor.execute(f'DROP TRIGGER "{name}"')
        yield
        for _, sql in triggers:
            cursor.execute(sql)


@pytest.fixture(scope="session", autouse=True)
def _flush_may_empty_the_audit_trail():
    """After a transactional test pytest-django empties every table with Django's `flush` (TRUNCATE on
    PostgreSQL, DELETE on SQLite), which the audit table's triggers refuse, as they should everywhere
    else. The flush alone runs with them suspended, in its own transaction (DDL is transactional on
    both databases, so the triggers are back when it commits, or were never off if it fails)."""
    execute_sql_flush = BaseDatabaseOperations.execute_sql_flush

    def flush_with_audit_triggers_suspended(self, sql_list):
        with transaction.atomic(using=self.connection.alias), audit_triggers_suspended(self.connection):
            execute_sql_flush(self, sql_list)

    BaseDatabaseOperations.execute_sql_flush = flush_with_audit_triggers_suspended
    yield
    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush


_auditors_migration = importlib.import_module("redemptions.migrations.0006_auditors_group")


def _data_migration_rows_restore(sender, **kwargs):
    """The rows data migrations write (the Auditors group), back after every `migrate` and `flush`.

    pytest-django empties every table after a transactional test, the migrations' rows included, and
    `--reuse-db` keeps that empty state for the next run, whose `migrate` applies nothing; both then
    send `post_migrate`, as Django's own permissions rely on. Test support only: in production a
    deleted or trimmed group stays as an admin left it.
    """
    if sender.label == "redemptions":
        _auditors_migration.auditors_group_create(global_apps, None)


post_migrate.connect(_data_migration_rows_restore, dispatch_uid="tests.data_migration_rows_restore")


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if REQUIRE_POSTGRES and skipped and session.exitstatus == 0:
        reporter.write_line(f"FAILED: {skipped} test(s) skipped; CI runs every test.", red=True)
        session.exitstatus = 1


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    marker = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL (CI always does)")
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(marker)


@pytest.fixture(autouse=True)
def _test_settings(settings):
    # The production hasher costs ~0.4 s per check; tests/promotions_site/test_auth.py checks it for real once.
    settings.PASSWORD_HASHERS = ["tests.promotions_site.hashers.FastPBKDF2PasswordHasher"]
    # The test client speaks plain HTTP; production redirects it to HTTPS.
    settings.SECURE_SSL_REDIRECT = False
    # Bulk jobs run before the request returns (the browser test turns the background thread back on).
    settings.BULK_JOBS_IN_PROCESS = "sync"


@pytest.fixture(scope="session", autouse=True)
def _shaped_bodies_written_both_ways():
    """Every answer whose JSON text a shape writes directly (`ShapedJSONRenderer`) is also rendered as
    DRF's `JSONRenderer` renders the same body built as dicts, and must be the same bytes: the whole
    suite's answers (golden carts, random carts, the fuzz) check the direct writer."""
    from rest_framework.renderers import JSONRenderer

    from promotions_site.shapes import Shaped, ShapedJSONRenderer

    direct = ShapedJSONRenderer.render

    def render(self, data, accepted_media_type=None, renderer_context=None):
        written = direct(self, data, accepted_media_type, renderer_context)
        if isinstance(data, Shaped):
            built = JSONRenderer.render(self, data.plain, accepted_media_type, renderer_context)
            assert written == built, f"{data.shape.name}: the direct JSON text differs from JSONRenderer's"
        return written

    ShapedJSONRenderer.render = render
    yield
    ShapedJSONRenderer.render = direct


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def other_org(db):
    return OrganizationFactory()


@pytest.fixture
def customer(org):
    return CustomerFactory(org=org)


@pytest.fixture
def earning(org):
    """An EARNING promotion a customer may earn any number of times."""
    return PromotionFactory(org=org, type=PromotionType.EARNING, max_earning_per_customer=-1)


@pytest.fixture
def optin(org):
    """A CUSTOMER DISCOUNT promotion the customer must activate (customerActivationRequired): the
    factory's 10 off carts over 100."""
    return PromotionFactory(org=org, type=PromotionType.CUSTOMER, customer_activation_required=True)


@pytest.fixture
def voucher(org):
    """An EARNING PAYMENT_VOUCHER promotion the customer must activate per instance (earnId)."""
    return PromotionFactory(
        org=org, type=PromotionType.EARNING, mode="PAYMENT_VOUCHER", customer_activation_required=True
    )


def basic_auth(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


@pytest.fixture
def api(org):
    """A DRF test client authenticated as a write-access API client of `org`."""
    client = ApiClientFactory(org=org)
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
    api_client.api_client = client
    return api_client


@pytest.fixture
def read_api(org):
    """A DRF test client authenticated as a read-only API client of `org`."""
    client = ApiClientFactory(org=org, access="READ")
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=basic_auth(client.username, client.plain_secret))
    api_client.api_client = client
    return api_client


@pytest.fixture
def worker(settings, tmp_path):
    """A real Celery worker (two threads) on a queue of the test's own, this process sending its tasks
    to it; stopped afterwards. Needs the Redis broker and a `transaction=True` test."""
    from tests.celery_worker import CeleryWorker, new_queue, running, tasks_sent_to

    with (
        tasks_sent_to(new_queue("test"), settings) as queue,
        running(CeleryWorker(tmp_path / "worker.log", queue=queue, concurrency=2)) as started,
    ):
        yield started
