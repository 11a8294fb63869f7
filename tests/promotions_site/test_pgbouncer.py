"""The app behind PgBouncer in transaction mode (`DATABASE_POOLER=transaction`, docs/operations.md,
"PgBouncer"): a real pgbouncer process between a process of the app and the database under test.

The pool has two server connections handed out in turn (`server_round_robin`), so one client's
consecutive transactions run on different server connections: anything the app left in a session (a
prepared statement, a WITH HOLD cursor, a TEMP table, a SET) would be missing on the next one.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from promotions.models import PromotionType
from redemptions.models import Evaluation, Redemption, RedemptionLine, RedemptionReversal
from tests.conftest import basic_auth
from tests.factories import ApiClientFactory, CustomerFactory, PromotionFactory
from wallets.models import EarnedPromotion

pytestmark = pytest.mark.postgres_only

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
ROUNDS = 8  # each step more often than psycopg's prepare threshold (5)
CART_100_OFF = {"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": 100}}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def pgbouncer(transactional_db):
    """A pgbouncer in transaction mode in front of the database under test; yields its DATABASE_URL."""
    if not os.access(PGBOUNCER, os.X_OK):
        pytest.skip("needs pgbouncer (apt-get install pgbouncer; CI installs it)")
    db = connection.settings_dict
    port = _free_port()
    # pgbouncer refuses to run as root: it then drops to `nobody`, who must read its files.
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    directory.chmod(0o755)
    server = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={db['NAME']}"
    if db["PASSWORD"]:
        server += f" password={db['PASSWORD']}"
    (directory / "userlist.txt").write_text(f'"{db["USER"]}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\npromotions = {server}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmin_pool_size = 2\nserver_round_robin = 1\n"
    )
    for path in directory.iterdir():
        path.chmod(0o644)
    command = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", pwd.getpwnam("nobody").pw_name]
    log = (directory / "pgbouncer.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"postgres://{db['USER']}@127.0.0.1:{port}/promotions"
    try:
        _wait_until_it_serves(url, process, directory / "pgbouncer.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_it_serves(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            # Two clients inside a transaction at once: the pool opens both its server connections.
            with psycopg.connect(url) as first, psycopg.connect(url) as second:
                first.execute("SELECT 1")
                second.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"pgbouncer did not start: {log.read_text()}") from None
            time.sleep(0.1)


def _app_process(url: str, *args: str, pooler: str = "transaction") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "promotions_site.settings",
        "DATABASE_URL": url,
        "DATABASE_POOLER": pooler,
        # the key the test's API client secret was stored under
        "SECRET_KEY": settings.SECRET_KEY,
        "API_CLIENT_SECRET_KEY": settings.API_CLIENT_SECRET_KEY,
        "ALLOWED_HOSTS": "testserver",
        "SECURE_SSL_REDIRECT": "0",
        "BULK_JOBS_IN_PROCESS": "sync",
        "API_RATE_LIMIT": "off",
        "LOG_LEVEL": "WARNING",
    }
    for name in ("CELERY_BROKER_URL", "REDIS_URL", "DEBUG"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60
    )


def test_the_app_works_through_pgbouncer_in_transaction_mode(pgbouncer, org, tmp_path):
    # given: a customer, a wallet promotion to issue (unlimited per customer) and redeem, a POS promotion taking 100 off a
    # cart, another promotion for a bulk job to three customers, and an API client
    customer = CustomerFactory(org=org)
    wallet_promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER, max_issuance_per_customer=-1)
    pos_promotion = PromotionFactory(org=org, type=PromotionType.POS, action=CART_100_OFF)
    bulk_promotion = PromotionFactory(org=org, type=PromotionType.CUSTOMER)
    bulk_customers = CustomerFactory.create_batch(3, org=org)
    client = ApiClientFactory(org=org)
    setup = {
        "rounds": ROUNDS,
        "authorization": basic_auth(client.username, client.plain_secret),
        "org": org.pk,
        "customer": customer.pk,
        "wallet_promotion": wallet_promotion.pk,
        "pos_promotion": pos_promotion.pk,
        "bulk_promotion": bulk_promotion.pk,
        "bulk_customers": [c.pk for c in bulk_customers],
    }
    (tmp_path / "setup.json").write_text(json.dumps(setup))

    # when: a process of the app does the work through the pooler
    result = _app_process(
        pgbouncer, "-m", "tests.promotions_site.pgbouncer_work", str(tmp_path / "setup.json"), str(tmp_path / "out.json")
    )  # fmt: skip

    # then: every call answered 200
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads((tmp_path / "out.json").read_text())
    failed = [(step, status) for step, status in out["status"] if status != 200]
    assert failed == [], result.stderr[-4000:]
    assert [step for step, _ in out["status"]].count("redeem") == ROUNDS
    # and the transactions really ran on both server connections
    assert len(set(out["backends"])) == 2
    # and each answer was right: the wallet grew by one instance a round, the cart got its 100 off
    assert out["wallet_sizes"] == list(range(1, ROUNDS + 1))
    assert out["evaluated_discounts"] == [["100.000000"]] * ROUNDS
    assert Evaluation.objects.filter(org=org).count() == ROUNDS
    # and the database holds what was recorded: a redemption a round, every other one reversed
    assert Redemption.objects.filter(org=org).count() == ROUNDS
    assert RedemptionReversal.objects.count() == ROUNDS // 2
    redeemed = EarnedPromotion.objects.filter(promotion=wallet_promotion, customer=customer)
    assert sorted(redeemed.values_list("redemption_count", flat=True)) == [0] * (ROUNDS // 2) + [1] * (
        ROUNDS // 2
    )
    lines = RedemptionLine.objects.filter(redemption__org=org)
    assert sorted(set(lines.values_list("discount", flat=True))) == [Decimal(50), Decimal(100)]
    assert lines.count() == 2 * ROUNDS
    # and the bulk job issued to its three customers
    assert out["bulk_job"] == ["DONE", 3, 0]
    assert EarnedPromotion.objects.filter(promotion=bulk_promotion).count() == 3
    assert out["bulk_job_items"] == [c.pk for c in bulk_customers]
    # and the customer import, which keeps TEMP tables across transactions, refused to run
    assert "TEMP tables across transactions" in out["import_refused"]


def test_without_the_pooler_setting_pgbouncer_refuses_the_connection(pgbouncer):
    # when: a process of the app connects through the pooler without DATABASE_POOLER
    result = _app_process(
        pgbouncer, "manage.py", "shell", "-c", "from django.db import connection; connection.ensure_connection()", pooler=""
    )  # fmt: skip
    # then: PgBouncer refused the statement timeout's startup parameter, which the setting leaves out
    assert result.returncode != 0
    assert "unsupported startup parameter: options" in result.stderr
