"""`/health/live` while clients flood the API with bad credentials, and what a failed sign-in costs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/auth_flood.py

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_auth_flood`), created and migrated at the start and dropped at the end.

The app runs under gunicorn on 127.0.0.1 (BENCH_WORKERS sync workers, default 4, or gthread workers
with BENCH_THREADS > 1) with the production settings, and the default cache: with REDIS_URL set (as
in production) every worker shares the sign-in counts, else each counts for itself. BENCH_CLIENTS
connections (default 16) are driven by `wrk` (2 threads, a Lua script setting `Authorization`; with
no `wrk` on the PATH, by Python threads in this process, which then share its CPU and its GIL with
the health timer, so the figures are pessimistic), GET-ting a promotion, while BENCH_HEALTH_CLIENTS
probes (default 25) time `GET /health/live`, BENCH_HEALTH_RATE times a second together (default 50,
open loop: each probe sends on its own schedule, and a late answer's delay to its probe's next one
counts) for BENCH_SECONDS (default 10) after BENCH_WARMUP_SECONDS (default 2) of flood. Phases:

- health alone: no flood;
- good credentials: the flood is a real client's reads, the cost of a served request;
- bad credentials, throttled: random usernames and secrets from one address, the sign-in throttle
  on as in production (most are refused unchecked once the address is locked);
- bad credentials, throttle off: the same with every sign-in limit off, as an attack from many
  addresses sees it: every request looks its username up and checks its secret;
- a not-yet-upgraded client, throttle off: wrong secrets for a client whose secret is still a PBKDF2
  hash (before the keyed hash), under `LEGACY_SECRET_CHECK_LIMIT`.

Prints, per phase, the flood's rate and answers, the CPU the server (gunicorn and PostgreSQL) spent
per flood request, and /health/live's p50, p99 and max. Targets: health p99 under 50 ms in every
bad-credentials phase, and a failed sign-in (throttle off) costing less CPU than a served request.
Exits 1 when one is missed, 2 when the bench cannot run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    Call,
    CpuMeter,
    bench_api_client,
    bench_database,
    bench_org,
    bench_promotion,
    gunicorn,
    gunicorn_description,
    http_load,
    load_settings,
    percentile,
    run_main,
)

TARGET_HEALTH_P99_MS = 50.0
_, SECONDS, WARMUP_SECONDS, WORKERS, THREADS = load_settings(seconds=10, warmup_seconds=2, workers=4)
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
HEALTH_RATE = float(os.environ.get("BENCH_HEALTH_RATE", "50"))
# Probes in parallel, each on its own schedule: one answer slower than the interval then delays only
# its own probe's next ones, as with a real prober's independent checks.
HEALTH_CLIENTS = int(os.environ.get("BENCH_HEALTH_CLIENTS", "25"))
MARKER = "scratch database of bench/auth_flood.py"
THROTTLE_OFF = {
    "LOGIN_FAILURE_LIMIT_PER_USERNAME": "off",
    "LOGIN_FAILURE_LIMIT_PER_IP": "off",
    "LOGIN_FAILURE_CEILING_PER_USERNAME": "off",
}
HEADERS_PER_PHASE = 2000  # distinct Authorization headers a flood cycles through


@dataclass
class Phase:
    name: str
    headers: list[str]  # Authorization values the flood cycles through; empty: no flood
    bad_credentials: bool = True


@dataclass
class Result:
    phase: Phase
    flood_rate: float
    flood_statuses: Counter
    cpu_ms_per_request: float
    health_ms: list[float]
    health_errors: int


def basic(username: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()


# --- The flood ---------------------------------------------------------------------------------------

WRK_SCRIPT = """
headers = {%(headers)s}
path = "%(path)s"
counter = 0
statuses = {}
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  return wrk.format("GET", path, {["Authorization"] = headers[(counter %% #headers) + 1]})
end

function response(status, hdrs, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %%d %%d\\n", status, count))
  end
  io.write(string.format("requests %%d seconds %%f\\n", summary.requests, summary.duration / 1e6))
end
"""


class Flood:
    """BENCH_CLIENTS connections sending `headers` in turn for `seconds`: `wrk`, else Python threads."""

    def __init__(self, port: int, path: str, headers: list[str], seconds: float):
        self.port, self.path, self.headers, self.seconds = port, path, headers, seconds
        self.statuses: Counter = Counter()
        self.requests, self.elapsed = 0, 0.0

    def __enter__(self) -> Flood:
        if shutil.which("wrk"):
            quoted = ", ".join(f'"{header}"' for header in self.headers)
            self.script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
            self.script.write(WRK_SCRIPT % {"headers": quoted, "path": self.path})
            self.script.close()
            threads = min(2, CLIENTS)
            command = ["wrk", "-t", str(threads), "-c", str(CLIENTS), "-d", f"{self.seconds:.0f}s"]
            command += ["--timeout", "30s", "-s", self.script.name, f"http://127.0.0.1:{self.port}"]
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        else:
            self.process = None
            calls = [Call("flood", "GET", self.path, headers={"Authorization": h}) for h in self.headers]
            sent = [0] * CLIENTS

            def next_call(client: int) -> Call:
                sent[client] += 1
                return calls[(sent[client] * CLIENTS + client) % len(calls)]

            def run() -> None:
                load = http_load(
                    self.port, clients=CLIENTS, seconds=self.seconds, next_call=next_call,
                    expected=lambda *_: True,
                )  # fmt: skip
                self.statuses = load.tally.statuses["flood"]
                self.requests, self.elapsed = sum(self.statuses.values()), load.elapsed

            self.thread = threading.Thread(target=run, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.process is None:
            self.thread.join()
            return
        output, _ = self.process.communicate(timeout=self.seconds + 60)
        os.unlink(self.script.name)
        for status, count in re.findall(r"^status (\d+) (\d+)$", output, re.M):
            self.statuses[int(status)] += int(count)
        found = re.search(r"^requests (\d+) seconds ([\d.]+)$", output, re.M)
        if not found:
            raise RuntimeError(f"wrk said:\n{output}")
        self.requests, self.elapsed = int(found.group(1)), float(found.group(2))


def generator() -> str:
    if shutil.which("wrk"):
        return f"wrk, {CLIENTS} connections on 2 threads"
    return f"no wrk on the PATH: {CLIENTS} Python threads in this process (pessimistic)"


# --- A phase -----------------------------------------------------------------------------------------


def run_phase(phase: Phase, port: int, master_pid: int, bench_url: str, path: str) -> Result:
    health = Call("health", "GET", "/health/live")

    def probes():
        return http_load(
            port, clients=HEALTH_CLIENTS, seconds=SECONDS, next_call=lambda _: health, rate=HEALTH_RATE
        )

    meter = CpuMeter(master_pid, bench_url)
    try:
        before = meter.sample()
        if not phase.headers:
            flood = None
            load = probes()
        else:
            with Flood(port, path, phase.headers, WARMUP_SECONDS + SECONDS + 1) as flood:
                time.sleep(WARMUP_SECONDS)
                load = probes()
        spent = CpuMeter.spent(before, meter.sample())
    finally:
        meter.close()
    statuses = load.tally.statuses["health"]
    server_cpu = spent["gunicorn"] + spent["PostgreSQL"]
    return Result(
        phase=phase,
        flood_rate=flood.requests / flood.elapsed if flood and flood.elapsed else 0.0,
        flood_statuses=flood.statuses if flood else Counter(),
        cpu_ms_per_request=1000 * server_cpu / flood.requests if flood and flood.requests else 0.0,
        health_ms=[1000 * latency for latency in load.tally.latencies["health"]],
        health_errors=sum(count for status, count in statuses.items() if status != 200),
    )


def warm_up(port: int, path: str, good: str) -> None:
    """A few requests on every worker first: the first request a process serves is slower (lazy imports)."""
    calls = [
        Call("warm-up", "GET", "/health/live"),
        Call("warm-up", "GET", path, headers={"Authorization": good}),
    ]
    http_load(port, clients=WORKERS, seconds=1, next_call=lambda n: calls[n % 2], expected=lambda *_: True)


# --- Main --------------------------------------------------------------------------------------------


def main() -> int:
    with bench_database("promotions_bench_auth_flood", marker=MARKER) as bench_url:
        from django.contrib.auth.hashers import make_password

        from promotions.models import ApiClient
        from promotions.services import api_client_create

        org = bench_org()
        promotion = bench_promotion(org, "Flooded", "POS")
        path = f"/api_gateway/v1/promotions/{promotion.pk}"
        good = bench_api_client(org, "bench.till")
        legacy, _ = api_client_create(org=org, username="bench.legacy.till")
        # As an earlier release stored it: the production password hasher's hash of the digest.
        legacy.secret_hash = make_password(hashlib.md5(b"the-real-secret").hexdigest())
        legacy.save()
        assert ApiClient.objects.filter(secret_hash__startswith="pbkdf2_sha256$").count() == 1
        random_bad = [basic(f"till.{n}", f"wrong-{n}") for n in range(HEADERS_PER_PHASE)]
        legacy_bad = [basic(legacy.username, f"wrong-{n}") for n in range(HEADERS_PER_PHASE)]

        print(f"bench/auth_flood.py: {gunicorn_description(WORKERS, THREADS)}; {generator()};")
        print(
            f"  /health/live {HEALTH_RATE:g}/s from {HEALTH_CLIENTS} probes for {SECONDS:g} s "
            f"after {WARMUP_SECONDS:g} s of flood; "
            f"REDIS_URL {'set' if os.environ.get('REDIS_URL') else 'unset (each worker counts apart)'}; "
            f"load average before: {os.getloadavg()[0]:.2f}"
        )
        results = []
        # A run's sign-in counts in Redis are its own: a previous run's lock on 127.0.0.1 would refuse
        # the good credentials.
        env = {"CACHE_KEY_PREFIX": f"bench-auth-flood-{uuid.uuid4().hex}"}
        with gunicorn(bench_url, workers=WORKERS, threads=THREADS, ready_path="/health/live", env=env) as (
            port,
            pid,
        ):
            warm_up(port, path, good)
            for phase in (
                Phase("health alone", []),
                Phase("good credentials (a served read)", [good], bad_credentials=False),
                Phase("bad credentials, throttled", random_bad),
            ):
                results.append(run_phase(phase, port, pid, bench_url, path))
        with gunicorn(
            bench_url,
            workers=WORKERS,
            threads=THREADS,
            ready_path="/health/live",
            env={**env, **THROTTLE_OFF},
        ) as (port, pid):
            warm_up(port, path, good)
            for phase in (
                Phase("bad credentials, throttle off", random_bad),
                Phase("not-yet-upgraded client, throttle off", legacy_bad),
            ):
                results.append(run_phase(phase, port, pid, bench_url, path))
        return report(results)


def report(results: list[Result]) -> int:
    print()
    print(
        f"{'phase':<40} {'flood req/s':>11} {'server CPU ms/req':>17} "
        f"{'health p50':>10} {'p99':>7} {'max':>7}  flood answers"
    )
    for result in results:
        answers = ", ".join(f"{status}: {count}" for status, count in sorted(result.flood_statuses.items()))
        health = result.health_ms
        print(
            f"{result.phase.name:<40} {result.flood_rate:>11.0f} {result.cpu_ms_per_request:>17.2f} "
            f"{percentile(health, 50):>8.1f}ms {percentile(health, 99):>5.1f}ms {max(health):>5.1f}ms  "
            f"{answers or '-'}" + (f"  health errors: {result.health_errors}" if result.health_errors else "")
        )
    print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores: above 2 the machine was busy)")
    failed = False
    print()
    for result in results:
        if not result.phase.bad_credentials or not result.phase.headers:
            continue
        p99 = percentile(result.health_ms, 99)
        ok = p99 < TARGET_HEALTH_P99_MS and not result.health_errors
        failed |= not ok
        print(
            f"{'PASS' if ok else 'FAIL'}: /health/live p99 {p99:.1f} ms under '{result.phase.name}' "
            f"(target < {TARGET_HEALTH_P99_MS:g} ms)"
        )
    by_name = {result.phase.name: result for result in results}
    failed_cost = by_name["bad credentials, throttle off"].cpu_ms_per_request
    served_cost = by_name["good credentials (a served read)"].cpu_ms_per_request
    ok = failed_cost < served_cost
    failed |= not ok
    print(
        f"{'PASS' if ok else 'FAIL'}: a failed sign-in costs {failed_cost:.2f} ms of server CPU, a served "
        f"request {served_cost:.2f} ms (ratio {failed_cost / served_cost:.2f}, target < 1)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
