"""What the benchmark scripts share: their own scratch database, and Django set up against it.

Not a benchmark itself (`make bench` skips modules starting with `_`).
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PROTECTED_DATABASES = {"postgres", "template0", "template1"}
# The per-API-client rate limit stays in the measured path, far above any benchmark's rate.
BENCH_RATE_LIMIT = "100000000/s"


def fail(message: str) -> None:
    """Stop the benchmark: exit status 2 (1 is kept for a missed target)."""
    print(f"{sys.argv[0]}: {message}", file=sys.stderr)
    sys.exit(2)


def bench_database_url(default_name: str) -> tuple[str, str, str]:
    """(server URL as given, bench database URL, bench database name); PostgreSQL only.

    DATABASE_URL names the server; the bench database is BENCH_DATABASE_NAME (else `default_name`),
    never a protected one, the server URL's own database or a test database.
    """
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        fail("set DATABASE_URL to a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        fail(f"this benchmark needs PostgreSQL (COPY, row locks); DATABASE_URL is {parts.scheme}://...")
    name = os.environ.get("BENCH_DATABASE_NAME", default_name)
    server_db = parts.path.lstrip("/")
    if name in PROTECTED_DATABASES or name == server_db or name.startswith("test"):
        fail(f"refusing to drop and recreate database {name!r}: set BENCH_DATABASE_NAME to a bench-only name")
    return url, urlunsplit(parts._replace(path="/" + name)), name


def recreate_database(server_url: str, name: str, *, marker: str, create: bool) -> None:
    """Drop the bench database (only one this script created: it carries `marker`) and optionally recreate it."""
    import psycopg
    from psycopg import sql

    ident = sql.Identifier(name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if found is not None:
            if found[0] != marker:
                fail(f"database {name!r} exists and was not created by this benchmark: not dropping it")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident))
        if create:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(marker)))


def setup_django(bench_url: str) -> None:
    """Django in this process, on the bench database (DEBUG off: it would keep every query), migrated."""
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ["DEBUG"] = "0"
    os.environ["SECURE_SSL_REDIRECT"] = "0"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["API_RATE_LIMIT"] = BENCH_RATE_LIMIT
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promotions_site.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def basic_auth(username: str, secret: str) -> str:
    """The `Authorization` header value for an API client."""
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
