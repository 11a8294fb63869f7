"""What the benchmark scripts share: their own scratch database, Django set up against it, the fixtures
(an org, an API client, a promotion, a COPY reference), gunicorn serving the app, and client threads
driving it over HTTP.

Not a benchmark itself (`make bench` skips modules starting with `_`).
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PROTECTED_DATABASES = {"postgres", "template0", "template1"}
# The per-API-client rate limit stays in the measured path, far above any benchmark's rate.
BENCH_RATE_LIMIT = "100000000/s"
# A redemption's 99th percentile, in isolation (bench/redeem.py) as in the mixed load (bench/soak.py).
TARGET_P99_MS = 100.0


def fail(message: str) -> None:
    """Stop the benchmark: exit status 2 (1 is kept for a missed target)."""
    print(f"{sys.argv[0]}: {message}", file=sys.stderr)
    sys.exit(2)


def run_main(main: Callable[[], int]) -> NoReturn:
    """Exit with `main()`'s status (0 all targets met, 1 one missed, 2 the bench could not run), or 130
    on Ctrl-C: `bench_database` and `gunicorn` have stopped the server and dropped the database by then."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{sys.argv[0]}: interrupted", file=sys.stderr)
        sys.exit(130)


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


def django_env(bench_url: str) -> dict[str, str]:
    """The environment the app runs with in a bench, in this process or a child: on the bench database,
    the production settings (DEBUG off: it would keep every query in memory), the rate limit out of
    reach."""
    return {
        **os.environ,
        "DATABASE_URL": bench_url,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "testserver",
        "LOG_LEVEL": "WARNING",
        "API_RATE_LIMIT": BENCH_RATE_LIMIT,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE") or "promotions_site.settings",
    }


def setup_django(bench_url: str) -> None:
    """Django in this process, on the bench database (`django_env`), migrated."""
    os.environ.update(django_env(bench_url))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


@contextmanager
def bench_database(default_name: str, *, marker: str) -> Iterator[str]:
    """The bench's own database (`bench_database_url`), created with `marker`, migrated, and Django set
    up on it in this process: yields its URL, and drops it at the end whatever happens (SIGTERM and
    Ctrl-C included, gunicorn stopped first by its own context)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    server_url, bench_url, name = bench_database_url(default_name)
    recreate_database(server_url, name, marker=marker, create=True)
    try:
        setup_django(bench_url)
        yield bench_url
    finally:
        if "django.db" in sys.modules:
            from django.db import connections

            connections.close_all()
        recreate_database(server_url, name, marker=marker, create=False)


def basic_auth(username: str, secret: str) -> str:
    """The `Authorization` header value for an API client."""
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


# --- Fixtures ------------------------------------------------------------------------------------------

BENCH_ORG_ID = 100001
# The columns a COPY into wallets_earnedpromotion writes (all of them), in the order of its rows.
EARNED_PROMOTION_COLUMNS = (
    "id", "customer_id", "org_id", "promotion_id", "kind", "earned_from_type", "earned_from_id", "seq",
    "event_time", "event_details", "valid_till", "status", "redemption_count", "transaction_count",
    "discount_total", "created_at", "status_changed_at", "locked", "unlocked_from_id", "unlocked_from_type",
)  # fmt: skip


def bench_org(org_id: int = BENCH_ORG_ID, name: str = "Bench org"):
    from promotions.models import Organization

    return Organization.objects.create(id=org_id, name=name, timezone="Asia/Kolkata")


def bench_api_client(org, username: str) -> str:
    """A new write API client of `org`: its `Authorization` header value."""
    from promotions.services import api_client_create

    client, secret = api_client_create(org=org, username=username)
    return basic_auth(client.username, secret)


def bench_promotion(org, name: str, kind: str, *, discount: int = 10, **fields):
    """A promotion running from yesterday for 30 days: `discount` off a cart over 1; `fields` the rest
    (limits such as max_issuance_per_customer)."""
    from django.utils import timezone

    from promotions.models import Promotion

    now = timezone.now()
    return Promotion.objects.create(
        org=org,
        name=name,
        type=kind,
        start_date=now - dt.timedelta(days=1),
        end_date=now + dt.timedelta(days=30),
        condition={
            "type": "CART",
            "cartCondition": {"kpi": "SUBTOTAL", "operator": "GREATER_THAN", "value": 1},
        },
        action={"type": "CART_BASED", "cartBasedAction": {"type": "ABSOLUTE", "value": discount}},
        **fields,
    )


# --- COPY references ---------------------------------------------------------------------------------
#
# A writer of the app is measured against PostgreSQL's COPY of the same rows. The COPY text is prepared
# before the clock starts (bytes, or a file for a million rows), so a reference times the database
# write and the commit, not Python formatting rows. Two references: into the app's own table (its
# indexes, keys and checks: the real limit of any writer of it) and into a lean table of the same
# columns with none of them (what the table's guarantees cost, side by side).

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_line(values) -> str:
    """One row in COPY's text format: None as NULL, booleans as t/f, times in ISO 8601."""
    fields = []
    for value in values:
        if value is None:
            fields.append("\\N")
        elif isinstance(value, bool):
            fields.append("t" if value else "f")
        elif isinstance(value, dt.datetime):
            fields.append(value.isoformat())
        else:
            fields.append(str(value).translate(_COPY_ESCAPES))
    return "\t".join(fields) + "\n"


def earned_promotions_copy_text(*, org_id: int, promotion, customer_ids, earned_from_id: str) -> str:
    """The rows an issue of `promotion` to the customers writes (one ISSUED, ACTIVE instance each, new
    ids), in COPY's text format, in the order of EARNED_PROMOTION_COLUMNS."""
    from promotions.models import new_object_ids

    now = dt.datetime.now(dt.UTC)
    constant = copy_line(
        (org_id, promotion.pk, "ISSUED", "BULK_ISSUE", earned_from_id, 1, now, "{}", promotion.end_date,
         "ACTIVE", 0, 0, 0, now, None, False, "", "")
    )  # fmt: skip
    ids = new_object_ids(len(customer_ids))
    return "".join(
        f"{instance_id}\t{customer_id:d}\t{constant}"
        for instance_id, customer_id in zip(ids, customer_ids, strict=True)
    )


def copy_seconds(bench_url: str, table: str, columns, source: bytes | Path) -> float:
    """Seconds to COPY `source` (COPY text: bytes, or a file read in 1 MiB blocks) into `table`'s
    `columns` and commit, on a new connection."""
    import psycopg

    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with psycopg.connect(bench_url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            if isinstance(source, Path):
                with source.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        copy.write(block)
            else:
                for start in range(0, len(source), 1 << 20):
                    copy.write(source[start : start + (1 << 20)])
        conn.commit()
        return time.perf_counter() - started


def earned_promotions_copy(bench_url: str, promotion, source: bytes | Path, expected: int) -> float:
    """Seconds to COPY `source` (EARNED_PROMOTION_COLUMNS, prepared before the clock) into
    wallets_earnedpromotion and commit: the bare database write a writer of the app is measured
    against. Fails unless `promotion` then has `expected` instances."""
    import psycopg

    elapsed = copy_seconds(bench_url, "wallets_earnedpromotion", EARNED_PROMOTION_COLUMNS, source)
    with psycopg.connect(bench_url) as conn:
        written = conn.execute(
            "SELECT count(*) FROM wallets_earnedpromotion WHERE promotion_id = %s", [promotion.pk]
        ).fetchone()[0]
    if written != expected:
        fail(f"COPY wrote {written} rows, expected {expected}")
    return elapsed


def lean_table_create(bench_url: str, table: str) -> str:
    """A table of the same columns as `table` (types, NOT NULL, an identity column's sequence) and
    nothing else: no index, no primary or foreign key, no check. Its name."""
    import psycopg

    lean = f"bench_lean_{table}"
    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {lean}")
        conn.execute(f"CREATE TABLE {lean} (LIKE {table} INCLUDING IDENTITY)")
    return lean


def copy_comparison(table: str, table_seconds: list[float], lean_seconds: list[float], rows: int) -> float:
    """Print the two COPY references side by side (median seconds of each); the table's median rate."""
    table_time, lean_time = statistics.median(table_seconds), statistics.median(lean_seconds)
    table_rate, lean_rate = rows / table_time, rows / lean_time
    print(
        f"  COPY into {table}: {table_rate:>9,.0f} rows/s  (median {table_time * 1000:,.0f} ms,"
        f" best {min(table_seconds) * 1000:,.0f} ms)"
    )
    print(
        f"  COPY into a lean table: {lean_rate:>9,.0f} rows/s  (median {lean_time * 1000:,.0f} ms,"
        f" best {min(lean_seconds) * 1000:,.0f} ms; same columns and rows, no index, key or check)"
    )
    print(
        f"  the table's indexes, keys and checks: COPY into it at {table_rate / lean_rate:.2f} of the lean rate"
    )
    return table_rate


def load_settings(*, seconds: float, warmup_seconds: float) -> tuple[int, float, float, int, int]:
    """The settings of a bench that drives gunicorn over HTTP, from the environment: (BENCH_CLIENTS
    client threads, default 8; BENCH_SECONDS measured, default `seconds`; BENCH_WARMUP_SECONDS of
    warm-up, default `warmup_seconds`; BENCH_WORKERS gunicorn workers, default 4; BENCH_THREADS per
    worker, default 1, above 1 gthread workers)."""
    return (
        int(os.environ.get("BENCH_CLIENTS", "8")),
        float(os.environ.get("BENCH_SECONDS", seconds)),
        float(os.environ.get("BENCH_WARMUP_SECONDS", warmup_seconds)),
        int(os.environ.get("BENCH_WORKERS", "4")),
        int(os.environ.get("BENCH_THREADS", "1")),
    )


# --- gunicorn ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_description(workers: int, threads: int = 1) -> str:
    if threads > 1:
        return f"gunicorn, {workers} gthread workers x {threads} threads"
    return f"gunicorn, {workers} sync workers"


@contextmanager
def gunicorn(
    bench_url: str,
    *,
    workers: int,
    threads: int = 1,
    settings: str = "promotions_site.settings",
    ready_path: str = "/",
    env: dict[str, str] | None = None,
) -> Iterator[tuple[int, int]]:
    """gunicorn serving the app with the production settings (DEBUG off) on a free port of 127.0.0.1:
    (port, master pid); always stopped, Ctrl-C included. `workers` sync workers, or gthread workers
    when `threads` > 1; `settings` the Django settings module; `env` added to the environment."""
    port = free_port()
    server_env = {
        **django_env(bench_url),
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONPATH": str(ROOT),
        "ALLOWED_HOSTS": "127.0.0.1",
        **(env or {}),
    }
    command = [
        *(sys.executable, "-m", "gunicorn", "promotions_site.wsgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--chdir", str(ROOT)),
        *(
            ("--worker-class", "gthread", "--threads", str(threads))
            if threads > 1
            else ("--worker-class", "sync")
        ),
        *("--preload", "--no-control-socket", "--log-level", "warning", "--graceful-timeout", "5"),
    ]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=server_env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_ready(process, port, ready_path, log)
            yield port, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_ready(process: subprocess.Popen, port: int, path: str, log) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            fail(f"gunicorn exited with status {process.returncode}:\n{log.read()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()  # any answer (405, 401) means a worker serves the app
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    fail("gunicorn did not answer within 60 s")


def gunicorn_workers(master_pid: int) -> list[int]:
    """The pids of the master's worker processes (Linux /proc; [] elsewhere)."""
    try:
        with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
            return [int(pid) for pid in children.read().split()]
    except OSError:
        return []


# --- CPU ---------------------------------------------------------------------------------------------


CPU_GROUPS = ("gunicorn", "PostgreSQL", "load generator", "other")


class CpuMeter:
    """CPU seconds used by the gunicorn workers, the bench database's PostgreSQL backends, this
    process (the load generator) and everything else on the machine (Linux /proc; zeros elsewhere)."""

    def __init__(self, gunicorn_pid: int, bench_url: str):
        import psycopg

        self.gunicorn_pid = gunicorn_pid
        self.database = psycopg.connect(bench_url, autocommit=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.database.close()

    def _process_seconds(self, pids) -> dict[int, float]:
        seconds = {}
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                seconds[pid] = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
            except (OSError, IndexError, ValueError):
                pass
        return seconds

    def sample(self) -> tuple[dict[int, float], dict[int, float], float, float]:
        workers = gunicorn_workers(self.gunicorn_pid)
        backends = [
            pid
            for (pid,) in self.database.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        own = resource.getrusage(resource.RUSAGE_SELF)
        try:
            with open("/proc/stat") as stat:
                values = [int(v) for v in stat.readline().split()[1:]]
            machine = (sum(values) - values[3] - values[4]) / self.tick  # all but idle and iowait
        except OSError:
            machine = 0.0
        return (
            self._process_seconds(workers),
            self._process_seconds(backends),
            own.ru_utime + own.ru_stime,
            machine,
        )

    @staticmethod
    def spent(before, after) -> Counter:
        def grown(first: dict[int, float], last: dict[int, float]) -> float:
            return sum(seconds - first.get(pid, 0.0) for pid, seconds in last.items())

        server, database = grown(before[0], after[0]), grown(before[1], after[1])
        generator = after[2] - before[2]
        other = max(0.0, (after[3] - before[3]) - server - database - generator)
        return Counter(dict(zip(CPU_GROUPS, (server, database, generator, other), strict=True)))


# --- The HTTP load -------------------------------------------------------------------------------------


def percentile(values: list[float], percent: float) -> float:
    """The nearest-rank percentile of `values` (not empty)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


@dataclass(frozen=True)
class Call:
    """One request a client sends; `route` names it in the figures."""

    route: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Tally:
    """What the answers were, per route."""

    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # seconds
    statuses: defaultdict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    samples: list[str] = field(default_factory=list)  # a few unexpected answers, to show

    def add(self, other: Tally) -> None:
        for route, latencies in other.latencies.items():
            self.latencies[route] += latencies
        for route, statuses in other.statuses.items():
            self.statuses[route].update(statuses)
        self.samples += other.samples


@dataclass
class Load:
    """One timed run of the clients."""

    tally: Tally
    start: float  # perf_counter when the clients were released
    last_answer: float  # perf_counter when the last client stopped
    exhausted: bool  # a client stopped because `next_call` had nothing more

    @property
    def elapsed(self) -> float:
        return self.last_answer - self.start


def http_load(
    port: int,
    *,
    clients: int,
    seconds: float,
    next_call: Callable[[int], Call | None],
    expected: Callable[[int, Call, int, bytes], bool] = lambda client, call, status, content: status == 200,
    before_start: Callable[[], object] | None = None,
    rate: float | None = None,
) -> Load:
    """`clients` threads, each with its own HTTP/1.1 connection (kept alive when the server allows),
    released together by a barrier, send `next_call(client)` until `seconds` have passed (a request
    started in time is finished and counted) or it returns None.

    Without `rate` (closed loop) each client sends its next request as soon as the last is answered,
    so the server is saturated and the latency is mostly queueing. With `rate` (requests per second,
    all clients together; open loop) each client sends on a fixed schedule of its own (one request
    every `clients / rate` seconds, the clients' schedules staggered), and a request is timed from
    when it was due, not from when it went out: a server that falls behind delays every request
    after it, and that delay counts (no coordinated omission).

    Every answer is timed (from asking `next_call`, or the time it was due, to the last byte; a
    connection error is status 0)
    and given to `expected(client, call, status, content)` in the client's thread; the first three
    unexpected answers of each client are kept as samples. `before_start` runs once the threads
    are up, just before they are released. An exception in a client stops it and is raised here.
    """
    tally = Tally()
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    deadline = start = 0.0
    last_answer = [0.0]
    exhausted = [False]
    crashes: list[BaseException] = []

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        own = Tally()
        barrier.wait()
        interval = clients / rate if rate else 0.0
        due = 0.0
        try:
            while True:
                if rate:
                    due = (due or start + interval * index / clients) + interval
                    if due >= deadline:
                        break
                    pause = due - time.perf_counter()
                    if pause > 0:
                        time.sleep(pause)
                    started = due
                elif (started := time.perf_counter()) >= deadline:
                    break
                call = next_call(index)
                if call is None:
                    exhausted[0] = True
                    break
                try:
                    conn.request(call.method, call.path, call.body, call.headers)
                    response = conn.getresponse()
                    content = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    status, content = 0, repr(error).encode()
                own.latencies[call.route].append(time.perf_counter() - started)
                own.statuses[call.route][status] += 1
                if not expected(index, call, status, content) and len(own.samples) < 3:
                    own.samples.append(f"{status}: {content[:300]!r}")
        except BaseException as error:  # a bug of the bench: raised in the main thread below
            crashes.append(error)
        finally:
            conn.close()
            with lock:
                tally.add(own)
                last_answer[0] = max(last_answer[0], time.perf_counter())

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    if before_start is not None:
        before_start()
    start = time.perf_counter()
    deadline = start + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    if crashes:
        raise crashes[0]
    return Load(tally, start, last_answer[0], exhausted[0])
