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
# The columns a COPY into wallets_earnedpromotion writes, in the order of its rows.
EARNED_PROMOTION_COLUMNS = (
    "id", "org_id", "customer_id", "promotion_id", "kind", "earned_from_type", "earned_from_id", "seq",
    "event_time", "event_details", "valid_till", "status", "redemption_count", "transaction_count",
    "discount_total", "created_at", "status_changed_at",
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


def earned_promotions_copy(bench_url: str, promotion, write: Callable, expected: int) -> float:
    """Seconds to COPY rows into wallets_earnedpromotion (`write(copy)` writes them, in the order of
    EARNED_PROMOTION_COLUMNS) and commit: the bare database write a writer of the app is measured
    against. Fails unless `promotion` then has `expected` instances."""
    import psycopg

    statement = f"COPY wallets_earnedpromotion ({', '.join(EARNED_PROMOTION_COLUMNS)}) FROM STDIN"
    with psycopg.connect(bench_url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            write(copy)
        conn.commit()
        elapsed = time.perf_counter() - started
        written = conn.execute(
            "SELECT count(*) FROM wallets_earnedpromotion WHERE promotion_id = %s", [promotion.pk]
        ).fetchone()[0]
    if written != expected:
        fail(f"COPY wrote {written} rows, expected {expected}")
    return elapsed


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
# How often CpuMeter looks at the PostgreSQL server's backends between samples (seconds).
CPU_WATCH_INTERVAL = 0.2


def _stat(pid: int, tick: int) -> tuple[int, int, float, float] | None:
    """(parent pid, start time, utime + stime, cutime + cstime) of a process, in seconds; None when it is
    gone or unreadable."""
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
        )

    @staticmethod
    def spent(before: CpuSample, after: CpuSample, generator: float = 0.0) -> Counter:
        """CPU seconds per CPU_GROUPS entry between the samples; `generator` the load generator's CPU
        outside this process (wrk's). Also "ended elsewhere": how many backends of other databases
        exited meanwhile (what they used after they were last seen is in PostgreSQL's figure)."""
        server = after.server.spent_since(before.server)
        elsewhere = after.elsewhere - before.elsewhere
        database = max(0.0, after.database.spent_since(before.database) - elsewhere)
        generator += after.own - before.own
        other = max(0.0, (after.machine - before.machine) - server - database - generator)
        spent = Counter(dict(zip(CPU_GROUPS, (server, database, generator, other), strict=True)))
        spent["ended elsewhere"] = after.elsewhere_ended - before.elsewhere_ended
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
