"""What the benchmark scripts share: their own scratch database, Django set up against it, the fixtures
(an org, an API client, a promotion, a COPY reference), gunicorn serving the app, the CPU meter, wrk
driving an endpoint with prepared requests (and client threads, for bench/soak.py's mixed load), the
reference write the HTTP benches compare the app's endpoints with, and the report lines they share.

Not a benchmark itself (`make bench` skips modules starting with `_`).
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import http.client
import json
import os
import re
import resource
import shutil
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


def load_settings(
    *, seconds: float, warmup_seconds: float, workers: int | None = None
) -> tuple[int, float, float, int, int]:
    """The settings of a bench that drives gunicorn over HTTP, from the environment: (BENCH_CLIENTS
    connections, default 8; BENCH_SECONDS measured, default `seconds`; BENCH_WARMUP_SECONDS of
    warm-up, default `warmup_seconds`; BENCH_WORKERS gunicorn workers, default `workers` or one per
    core; BENCH_THREADS per worker, default 1, above 1 gthread workers)."""
    return (
        int(os.environ.get("BENCH_CLIENTS", "8")),
        float(os.environ.get("BENCH_SECONDS", seconds)),
        float(os.environ.get("BENCH_WARMUP_SECONDS", warmup_seconds)),
        int(os.environ.get("BENCH_WORKERS", workers or os.cpu_count() or 2)),
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


def analyze() -> None:
    """ANALYZE the bench's database after its fixtures: a production database has its tables' statistics
    (autovacuum gathers them), and a plan chosen without them (a fresh table taken for empty) measures
    the planner's guess, not the query."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


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
# How often CpuMeter looks at the PostgreSQL server's backends between samples (seconds).
CPU_WATCH_INTERVAL = 0.2


def _stat(pid: int, tick: int) -> tuple[int, int, float, float] | None:
    """(parent pid, start time in clock ticks, utime + stime and cutime + cstime in seconds) of a process;
    None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 of proc(5): ppid 4, utime 14, stime 15, cutime 16, cstime 17, starttime 22.
    return (
        int(fields[1]),
        int(fields[19]),
        (int(fields[11]) + int(fields[12])) / tick,
        (int(fields[13]) + int(fields[14])) / tick,
    )


def _children(parent: int) -> list[int]:
    """The pids of a process's children (Linux /proc: its main thread's `children`, else a scan)."""
    try:
        with open(f"/proc/{parent}/task/{parent}/children") as children:
            return [int(pid) for pid in children.read().split()]
    except OSError:
        pass
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == parent:
                        found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


@dataclass(frozen=True)
class ProcessGroup:
    """CPU seconds of a parent process and its children at one instant (Linux /proc).

    `reaped`: the parent's own utime + stime plus its cutime + cstime, which hold the CPU of every child
    it has waited for (the gunicorn master reaps its workers, the postmaster its backends and autovacuum
    workers); `children`: each live child's utime + stime, keyed by (pid, start time) so that a reused
    pid is a new child."""

    reaped: float = 0.0
    children: dict[tuple[int, int], float] = field(default_factory=dict)

    @classmethod
    def read(cls, parent: int, tick: int) -> ProcessGroup:
        own = _stat(parent, tick)
        children = {}
        for pid in _children(parent):
            stat = _stat(pid, tick)
            if stat is not None and stat[0] == parent:
                children[pid, stat[1]] = stat[2]
        return cls(own[2] + own[3] if own else 0.0, children)

    def spent_since(self, before: ProcessGroup) -> float:
        """CPU seconds the group used between `before` and this sample: what the parent reaped meanwhile
        (the children that exited in between), plus what each child alive now used since then (all of
        it when it was born in between)."""
        live = sum(seconds - before.children.get(key, 0.0) for key, seconds in self.children.items())
        return (self.reaped - before.reaped) + live


@dataclass(frozen=True)
class CpuSample:
    server: ProcessGroup
    database: ProcessGroup
    elsewhere: (
        float  # CPU seconds the server's other databases' backends were seen using, since the meter started
    )
    elsewhere_ended: int  # how many of those backends had exited, since the meter started
    own: float  # this process (the bench script, the meter's watch included)
    machine: float  # the whole machine's busy seconds (/proc/stat: all but idle and iowait)
    wal: int  # the server's WAL position in bytes (pg_current_wal_lsn()): what it had written since initdb


class CpuMeter:
    """CPU seconds used, between two samples, by the gunicorn server (master and workers), PostgreSQL
    (the postmaster and all its children: the bench database's backends, autovacuum, the WAL writer,
    the checkpointer), the load generator (this process, plus what the caller adds: wrk's own CPU) and
    everything else the machine did (Linux /proc; zeros elsewhere).

    A group is counted from its parent (`ProcessGroup`), so a worker or a backend that exits during the
    window is still counted: its CPU moves into its parent's cutime + cstime when the parent reaps it
    (sampling live pids alone missed them). The server's other databases' backends (other sessions on a
    shared PostgreSQL) are moved from PostgreSQL to "other": a thread looks at every backend's database
    every CPU_WATCH_INTERVAL and keeps what each backend of another database was seen using; what such a
    backend uses after it was last seen, or one that lives less than the interval, stays in PostgreSQL's
    figure (on a quiet server, none). When the postmaster is not readable (PostgreSQL on another machine
    or in a container) PostgreSQL's figure is the bench database's live backends alone.
    """

    def __init__(self, gunicorn_pid: int, bench_url: str):
        import psycopg

        self.gunicorn_pid = gunicorn_pid
        self.database = psycopg.connect(bench_url, autocommit=True)
        self.tick = os.sysconf("SC_CLK_TCK")
        self.lock = threading.Lock()
        backend = self.database.execute("SELECT pg_backend_pid()").fetchone()[0]
        found = _stat(backend, self.tick)
        self.postmaster = found[0] if found is not None else None
        # Backends of other databases (and this meter's own): (pid, start) -> CPU when first and last seen.
        self.foreign: dict[tuple[int, int], list[float]] = {}
        self.ended: set[tuple[int, int]] = set()
        self.stopping = threading.Event()
        self.watch = threading.Thread(target=self._watch, daemon=True)
        self.watch.start()

    def close(self) -> None:
        self.stopping.set()
        self.watch.join()
        self.database.close()

    def _watch(self) -> None:
        while not self.stopping.wait(CPU_WATCH_INTERVAL):
            try:
                self._database_group()
            except Exception:  # the meter's connection closed under it: the bench is stopping
                return

    def _database_group(self) -> ProcessGroup:
        """The PostgreSQL group now, the ledger of other databases' backends brought up to date."""
        with self.lock:
            rows = self.database.execute(
                "SELECT pid, datname = current_database() AND pid <> pg_backend_pid() FROM pg_stat_activity"
                " WHERE datname IS NOT NULL"
            ).fetchall()
            if self.postmaster is None:  # the bench database's live backends alone
                children = {}
                for pid, ours in rows:
                    stat = _stat(pid, self.tick) if ours else None
                    if stat is not None:
                        children[pid, stat[1]] = stat[2]
                return ProcessGroup(0.0, children)
            group = ProcessGroup.read(self.postmaster, self.tick)
            foreign = {pid for pid, ours in rows if not ours}
            for key, seconds in group.children.items():
                if key[0] in foreign or key in self.foreign:
                    self.foreign.setdefault(key, [seconds, seconds])[1] = seconds
            self.ended |= self.foreign.keys() - group.children.keys()
            return group

    def sample(self, gunicorn_pid: int | None = None) -> CpuSample:
        """The counters now; `gunicorn_pid` the master of the server measured (default: the one given
        at creation)."""
        database = self._database_group()
        with self.lock:
            elsewhere = sum(last - first for first, last in self.foreign.values())
            ended = len(self.ended)
            wal = int(self.database.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])
        usage = resource.getrusage(resource.RUSAGE_SELF)
        try:
            with open("/proc/stat") as stat:
                values = [int(v) for v in stat.readline().split()[1:]]
            machine = (sum(values) - values[3] - values[4]) / self.tick  # all but idle and iowait
        except OSError:
            machine = 0.0
        return CpuSample(
            server=ProcessGroup.read(gunicorn_pid or self.gunicorn_pid, self.tick),
            database=database,
            elsewhere=elsewhere,
            elsewhere_ended=ended,
            own=usage.ru_utime + usage.ru_stime,
            machine=machine,
            wal=wal,
        )

    @staticmethod
    def spent(before: CpuSample, after: CpuSample, generator: float = 0.0) -> Counter:
        """CPU seconds per CPU_GROUPS entry between the samples; `generator` the load generator's CPU
        outside this process (wrk's). Also "ended elsewhere": how many backends of other databases
        exited meanwhile (what they used after they were last seen is in PostgreSQL's figure), and "WAL
        bytes": what the whole server wrote to its WAL meanwhile (on a quiet server, the bench's writes)."""
        server = after.server.spent_since(before.server)
        elsewhere = after.elsewhere - before.elsewhere
        database = max(0.0, after.database.spent_since(before.database) - elsewhere)
        generator += after.own - before.own
        other = max(0.0, (after.machine - before.machine) - server - database - generator)
        spent = Counter(dict(zip(CPU_GROUPS, (server, database, generator, other), strict=True)))
        spent["ended elsewhere"] = after.elsewhere_ended - before.elsewhere_ended
        spent["WAL bytes"] = after.wal - before.wal
        return spent


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


# --- wrk ---------------------------------------------------------------------------------------------

# Each wrk thread has its own Lua state: `setup` (in the main state) numbers the threads, `init` opens
# the thread's file of requests (`RequestPool`) at the byte offset the run starts from, `request` sends
# the next line (pool "once": each line at most once, the thread stops when its file is used up; pool
# "cycle": the thread's lines in turn), `response` counts the statuses and keeps a few non-2xx bodies,
# and `done` (main state again) prints the latency percentiles and every thread's counts as one JSON
# line. wrk calls `request` once in the main state to check the script: that call sends nothing.
WRK_SCRIPT = r"""
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local function parse(line)
  local method, path, body, auth = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?([^\t]*)$")
  if body == "" then body = nil end
  if auth == "" then return wrk.format(method, path, headers, body) end
  return wrk.format(method, path, {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end

function init(args)
  mode = args[1]
  headers = {["Content-Type"] = "application/json"}
  if args[3] ~= "" then headers["Authorization"] = args[3] end
  file = assert(io.open(args[2] .. "." .. id, "rb"))
  file:seek("set", tonumber(args[4 + id]))
  sent, exhausted, statuses, samples = 0, false, {}, {}
  if mode == "cycle" then
    lines, position = {}, 0
    for line in file:lines() do lines[#lines + 1] = parse(line) end
  end
end

function request()
  if file == nil then return wrk.format("GET", "/") end
  if mode == "cycle" then
    position = position % #lines + 1
    sent = sent + 1
    return lines[position]
  end
  local line = file:read("*l")
  if line == nil then
    exhausted = true
    wrk.thread:stop()
    return wrk.format("GET", "/bench-pool-exhausted")
  end
  sent = sent + 1
  return parse(line)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if (status < 200 or status > 299) and #samples < 3 then
    samples[#samples + 1] = status .. ": " .. string.sub(body or "", 1, 300)
  end
end

local function quote(text)
  return '"' .. (text:gsub('[%c"\\\128-\255]', function(c) return string.format("\\u%04x", c:byte()) end)) .. '"'
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    local counts, texts = {}, {}
    for status, n in pairs(thread:get("statuses")) do counts[#counts + 1] = string.format('"%d":%d', status, n) end
    for _, text in ipairs(thread:get("samples")) do texts[#texts + 1] = quote(text) end
    parts[#parts + 1] = string.format('{"sent":%d,"exhausted":%s,"statuses":{%s},"samples":[%s]}',
      thread:get("sent"), tostring(thread:get("exhausted")), table.concat(counts, ","), table.concat(texts, ","))
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"non_2xx":%d,"socket_errors":%d,"threads":[%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    errors.status, errors.connect + errors.read + errors.write + errors.timeout, table.concat(parts, ",")))
end
"""


def wrk_command() -> str:
    """wrk's path (BENCH_WRK, default /usr/bin/wrk); stops the bench when it is not installed."""
    command = os.environ.get("BENCH_WRK", "/usr/bin/wrk")
    if not shutil.which(command):
        fail(f"wrk not found at {command}: apt-get install -y wrk (or set BENCH_WRK to its path)")
    return command


def wrk_threads(clients: int) -> int:
    """wrk's threads for `clients` connections: one per core, at most one per connection."""
    return max(1, min(clients, os.cpu_count() or 1))


class RequestPool:
    """Requests prepared before the clock for wrk: one file per wrk thread (thread t gets requests t,
    t + threads, t + 2 threads, ...), a line `METHOD<TAB>path<TAB>body[<TAB>Authorization]` each (no tab
    nor newline in them: JSON bodies as `json.dumps` writes them; the Authorization header of the run
    when a request has none).

    `once`: each request is sent at most once over all the runs of the pool (each run starts every
    thread where its last run stopped; a thread that uses up its file stops, and the run reports the
    pool exhausted). Otherwise each thread sends its share in turn, again and again."""

    def __init__(
        self, directory: Path, name: str, requests: list[tuple[str, ...]], *, threads: int, once: bool
    ):
        self.prefix = str(Path(directory) / name)
        self.once = once
        self.offsets: list[list[int]] = []  # per thread: the byte offset of each line, and the end
        self.used = [0] * threads  # per thread: lines sent by the runs so far
        for thread in range(threads):
            offsets = [0]
            with open(f"{self.prefix}.{thread}", "wb") as out:
                for request in requests[thread::threads]:
                    line = "\t".join(request)
                    if line.count("\t") != len(request) - 1 or "\n" in line or len(request) not in (3, 4):
                        raise ValueError(f"not a request line of {name}: {line[:120]!r}")
                    offsets.append(offsets[-1] + out.write(f"{line}\n".encode()))
            self.offsets.append(offsets)

    @property
    def threads(self) -> int:
        return len(self.offsets)

    @property
    def left(self) -> int:
        """Requests not sent yet (once), or the pool's size (cycle)."""
        return sum(
            len(offsets) - 1 - (used if self.once else 0)
            for offsets, used in zip(self.offsets, self.used, strict=True)
        )

    def arguments(self, auth: str) -> list[str]:
        starts = [
            offsets[used] if self.once else 0 for offsets, used in zip(self.offsets, self.used, strict=True)
        ]
        return ["once" if self.once else "cycle", self.prefix, auth, *map(str, starts)]

    def sent(self, per_thread: list[int]) -> None:
        if self.once:
            self.used = [used + sent for used, sent in zip(self.used, per_thread, strict=True)]


@dataclass
class WrkRun:
    """One run of wrk: what it counted, and the CPU spent while it ran (per CPU_GROUPS)."""

    requests: int  # answered
    seconds: float  # wrk's own duration, from its first request to its stop
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: Counter  # HTTP status -> answers
    socket_errors: int  # connect, read, write errors and timeouts
    sent: int  # requests generated (answered, failed, or in flight when wrk stopped)
    exhausted: bool  # a thread used up its share of a "once" pool
    samples: list[str]  # a few non-2xx answers, to show
    cpu: Counter
    wall: float  # seconds from the sample before wrk started to the one after it exited

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def unanswered(self) -> int:
        """Requests sent and never answered (in flight when wrk stopped, or failed on the socket): the
        server may have done their work."""
        return self.sent - sum(self.statuses.values())


def wrk_run(
    port: int, pool: RequestPool, seconds: float, *, clients: int, auth: str = "", meter: CpuMeter,
    server_pid: int | None = None,
) -> WrkRun:  # fmt: skip
    """wrk with `clients` connections over `pool.threads` threads for `seconds` (whole seconds, at least
    one) against 127.0.0.1:`port`, sending `pool`'s requests with `auth` as the Authorization header
    (none when empty); the CPU measured by `meter` around it (`server_pid` the gunicorn master)."""
    command = [
        wrk_command(), "-t", str(pool.threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", _wrk_script(), f"http://127.0.0.1:{port}/", "--", *pool.arguments(auth),
    ]  # fmt: skip
    figures, cpu, wall = wrk_execute(command, meter=meter, server_pid=server_pid)
    threads = figures["threads"]
    statuses: Counter = Counter()
    for thread in threads:
        statuses.update({int(code): n for code, n in thread["statuses"].items()})
    sent = [thread["sent"] for thread in threads]
    pool.sent(sent)
    return WrkRun(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        statuses=statuses,
        socket_errors=figures["socket_errors"],
        sent=sum(sent),
        exhausted=any(thread["exhausted"] for thread in threads),
        samples=[sample for thread in threads for sample in thread["samples"]],
        cpu=cpu,
        wall=wall,
    )


def wrk_execute(
    command: list[str], *, meter: CpuMeter, server_pid: int | None
) -> tuple[dict, Counter, float]:
    """Run one wrk `command` whose script prints a `BENCH {json}` line: (its figures, the CPU `meter`
    measured around it with wrk's own, the wall time); the bench fails when wrk fails."""
    with tempfile.TemporaryFile("w+") as output:
        before = meter.sample(server_pid)
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        after = meter.sample(server_pid)
        cpu = CpuMeter.spent(before, after, usage.ru_utime + usage.ru_stime)
        settle(meter, server_pid, after)
        output.seek(0)
        text = output.read()
    found = re.search(r"^BENCH (\{.*\})$", text, re.M)
    if process.returncode != 0 or found is None:
        fail(f"wrk failed (exit status {process.returncode}): {text[-3000:]}")
    figures = json.loads(found.group(1))
    return figures, cpu, wall


SETTLE_INTERVAL = 0.1  # seconds between the samples `settle` compares
SETTLE_TIMEOUT = 5.0


def settle(meter: CpuMeter, server_pid: int | None, since: CpuSample) -> None:
    """Wait until the server and PostgreSQL are idle (together under a tenth of a core over
    SETTLE_INTERVAL; at most SETTLE_TIMEOUT): wrk stops with requests queued at the server (sync
    workers take one connection at a time), and the workers go on serving them after the slice. Not
    waited for, they ran into the next slice: that endpoint lost a share of the machine (measured:
    whichever endpoint followed the app-stack write lost about a fifth of its rate) and, on the same
    server, was counted their CPU. Neither slice counts them now (their requests are wrk's
    unanswered ones)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    before = since
    while time.monotonic() < deadline:
        time.sleep(SETTLE_INTERVAL)
        now = meter.sample(server_pid)
        spent = CpuMeter.spent(before, now)
        if spent["gunicorn"] + spent["PostgreSQL"] < 0.1 * SETTLE_INTERVAL:
            return
        before = now


_script_path: list[str] = []


def _wrk_script() -> str:
    """WRK_SCRIPT in a file, written once per process and removed at exit."""
    if not _script_path:
        handle, path = tempfile.mkstemp(prefix="bench-", suffix=".lua")
        with os.fdopen(handle, "w") as script:
            script.write(WRK_SCRIPT)
        atexit.register(os.unlink, path)
        _script_path.append(path)
    return _script_path[0]


# --- Endpoints compared --------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """One endpoint a bench drives with wrk: its server (port, gunicorn master), its requests, its
    Authorization header, and its runs (warm-up, then the timed slices)."""

    label: str
    port: int
    server_pid: int
    pool: RequestPool
    auth: str = ""
    pool_setting: str = "BENCH_POOL"  # the setting that sizes a "once" pool, named when it runs out
    warm: list[WrkRun] = field(default_factory=list)
    slices: list[WrkRun] = field(default_factory=list)

    def run(self, seconds: float, *, clients: int, meter: CpuMeter, warm: bool = False) -> WrkRun:
        done = wrk_run(
            self.port, self.pool, seconds, clients=clients, auth=self.auth, meter=meter,
            server_pid=self.server_pid,
        )  # fmt: skip
        if done.exhausted:
            fail(f"{self.label}: its prepared requests ran out during a run (raise {self.pool_setting})")
        (self.warm if warm else self.slices).append(done)
        return done

    @property
    def runs(self) -> list[WrkRun]:
        return self.warm + self.slices

    @property
    def rates(self) -> list[float]:
        return [s.requests / s.seconds for s in self.slices]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def p50_ms(self) -> float:
        return statistics.median(s.p50_ms for s in self.slices)

    @property
    def p99_ms(self) -> float:
        return statistics.median(s.p99_ms for s in self.slices)

    @property
    def worst_p99_ms(self) -> float:
        return max(s.p99_ms for s in self.slices)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.slices)

    @property
    def ok(self) -> int:
        """Answers 200, warm-up included."""
        return sum(run.statuses[200] for run in self.runs)

    @property
    def non_2xx(self) -> int:
        return sum(run.non_2xx for run in self.runs)

    @property
    def socket_errors(self) -> int:
        return sum(run.socket_errors for run in self.runs)

    @property
    def unanswered(self) -> int:
        return sum(run.unanswered for run in self.runs)

    @property
    def cpu(self) -> Counter:
        total: Counter = Counter()
        for s in self.slices:
            total.update(s.cpu)
        return total


def alternate(
    endpoints: list[Endpoint], *, clients: int, seconds: float, warmup_seconds: float, rounds: int,
    meter: CpuMeter,
) -> None:  # fmt: skip
    """Each endpoint warmed up for `warmup_seconds`, then `rounds` rounds of one slice of `seconds` /
    `rounds` per endpoint in turn: only one endpoint is loaded at a time, and all see the same machine
    (other load comes and goes)."""
    for endpoint in endpoints:
        endpoint.run(warmup_seconds, clients=clients, meter=meter, warm=True)
    for _ in range(rounds):
        for endpoint in endpoints:
            endpoint.run(seconds / rounds, clients=clients, meter=meter)


def paired_ratio(endpoint: Endpoint, reference: Endpoint) -> float:
    """The median over the rounds of `endpoint`'s rate over `reference`'s in the same round."""
    return statistics.median(
        a / b if b else 0.0 for a, b in zip(endpoint.rates, reference.rates, strict=True)
    )


def endpoint_report(endpoint: Endpoint, width: int = 10) -> None:
    """Requests/s (median of the slices), p50 and p99 (medians of the slices'; the worst slice's p99),
    answers, and CPU per request by group."""
    print(
        f"  {endpoint.label:<{width}} {endpoint.rate:>7,.0f} req/s   p50 {endpoint.p50_ms:6.1f} ms"
        f"   p99 {endpoint.p99_ms:6.1f} ms (worst slice {endpoint.worst_p99_ms:.1f})"
        f"   {endpoint.requests:>7,} requests; {endpoint.non_2xx} non-2xx, {endpoint.socket_errors} socket errors"
        f"{' (warm-up included)' if endpoint.warm else ''}"
    )
    cpu, requests = endpoint.cpu, max(1, endpoint.requests)
    wall = sum(s.wall for s in endpoint.slices)
    per_request = ", ".join(f"{group} {cpu[group] / requests * 1000:.2f}" for group in CPU_GROUPS[:3])
    print(
        f"  {'':<{width}} CPU per request (ms): {per_request}; other processes {cpu['other'] / wall:.2f} cores;"
        f" WAL per request {cpu['WAL bytes'] / requests:,.0f} B"
    )
    if cpu["ended elsewhere"]:
        print(
            f"  {'':<{width}} ({cpu['ended elsewhere']} backends of other databases ended during the slices:"
            " what they used after they were last seen is in PostgreSQL's figure)"
        )
    for sample in [sample for run in endpoint.runs for sample in run.samples][:3]:
        print(f"  {'':<{width}} {sample}")


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


# --- The reference write --------------------------------------------------------------------------------

# bench/_app/reference_urls.py's endpoint and its scratch table.
REFERENCE_PATH = "/reference/write"
REFERENCE_TABLE = "bench_reference_write"
REFERENCE_SETTINGS = "bench._app.reference_settings"


def reference_counter(org) -> int:
    """The reference's hot counter row (a RedemptionCounter of a POS promotion, its limit out of reach)
    and its scratch table, created in the bench database: the counter's id."""
    from django.db import connection

    from promotions.models import PromotionRestriction, PromotionType
    from redemptions.models import RedemptionCounter

    Level, Kpi = PromotionRestriction.Level, PromotionRestriction.Kpi
    restriction = PromotionRestriction.objects.create(
        promotion=bench_promotion(org, "Bench reference counter", PromotionType.POS),
        level=Level.PROMOTION,
        kpi=Kpi.REDEMPTION,
        limit=10**9,
    )
    counter = RedemptionCounter.objects.create(org=org, restriction=restriction, scope="", limit=10**9)
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {REFERENCE_TABLE} (key text PRIMARY KEY, written_at timestamptz NOT NULL)"
        )
    return counter.pk


def reference_pool(directory: Path, counter_id: int, *, threads: int) -> RequestPool:
    """BENCH_REFERENCE_POOL (default 200,000) reference writes for wrk, each with its own key, each sent
    once."""
    count = int(os.environ.get("BENCH_REFERENCE_POOL", "200000"))
    requests = [
        ("POST", REFERENCE_PATH, json.dumps({"counterId": counter_id, "key": f"K{n:08d}"}))
        for n in range(count)
    ]
    return RequestPool(directory, "reference", requests, threads=threads, once=True)


def reference_problems(endpoint: Endpoint, counter_id: int) -> list[str]:
    """What the database says against the reference's answers: [] when the counter and the scratch table
    agree with each other and with the answers 200 (up to the requests wrk left unanswered)."""
    from django.db import connection

    from redemptions.models import RedemptionCounter

    used = RedemptionCounter.objects.get(pk=counter_id).used
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {REFERENCE_TABLE}")
        (rows,) = cursor.fetchone()
    problems = []
    if used != rows:
        problems.append(f"reference: counter {used}, {rows} rows")
    if not endpoint.ok <= rows <= endpoint.ok + endpoint.unanswered:
        problems.append(
            f"reference: {rows} rows for {endpoint.ok} answers 200 and {endpoint.unanswered} unanswered"
        )
    return problems
