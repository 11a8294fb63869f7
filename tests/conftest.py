"""Shared fixtures. CI (REQUIRE_POSTGRES=1) insists on PostgreSQL and on zero skipped tests."""

from __future__ import annotations

import base64
import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import ApiClientFactory, OrganizationFactory

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


def pytest_report_header(config):
    from django.conf import settings

    return f"database: {settings.DATABASES['default']['ENGINE']} {settings.DATABASES['default'].get('HOST') or ''}"


@pytest.fixture(scope="session", autouse=True)
def _database_is_postgres_in_ci(django_db_setup, django_db_blocker):
    if REQUIRE_POSTGRES and connection.vendor != "postgresql":
        pytest.exit(f"REQUIRE_POSTGRES=1 but the database under test is {connection.vendor}", returncode=3)


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
    # The production hasher costs ~0.4 s per check; tests/test_auth.py checks it for real once.
    settings.PASSWORD_HASHERS = ["tests.hashers.FastPBKDF2PasswordHasher"]
    # The test client speaks plain HTTP; production redirects it to HTTPS.
    settings.SECURE_SSL_REDIRECT = False
    # Bulk jobs run before the request returns (the browser test turns the background thread back on).
    settings.BULK_JOBS_IN_PROCESS = "sync"


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
