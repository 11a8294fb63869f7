"""`bench/evaluate.py --http`: the evaluate API under gunicorn, loaded by wrk, against a bare endpoint.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/evaluate.py --http

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_evaluate`), created and migrated at the start and dropped at the end.

Fixtures: an org with 250 active promotions of the `--core` mode's mix (product, cart, free product,
per-unit, combo at a fixed price, buy X get Y, tender and payment-mode kinds; POS, CUSTOMER and EARNING
types, a fifth exclusive), each created through the create service (so each is one the engine
evaluates), running from yesterday for 30 days; a customer holding an earned instance of every wallet
promotion; BENCH_CARTS (default 200) distinct carts of 50 lines over the `--core` catalogue, each with
one tender (CreditCard, DebitCard or POINTS) for half its amount.

Two servers, both gunicorn with BENCH_WORKERS sync workers (default 4, or gthread with BENCH_THREADS
> 1) and the production settings: the app (`POST /api_gateway/v1/promotions/evaluate`, Basic auth of a
read-only API client, the customer named) and the bare reference (bench/_app/bare_settings.py:
Django and DRF with no middleware, no authentication and no database, one view doing the same JSON
work: parse and validate the cart, render an answer of the same keys and size). wrk (BENCH_WRK, default
/usr/bin/wrk; a Lua script sends the carts in turn) keeps BENCH_CLIENTS connections (default 4) busy
for BENCH_SECONDS (default 10) per endpoint, after BENCH_WARMUP_SECONDS (default 3), in BENCH_ROUNDS
(default 5) alternating slices so both endpoints see the same machine; only one server is loaded at a
time.

Prints requests/s, p50 and p99 per endpoint (requests/s over all slices; p50 the median of the slices',
p99 the worst slice's), the ratio evaluate/bare (target >= 0.5) and the evaluate p99 (target < 50 ms);
then checks that every answer was a 200 and that one Evaluation was stored per answered evaluation.
Exits 1 when a target is missed, 2 when the bench cannot run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench._common import (
    bench_database,
    fail,
    gunicorn,
    gunicorn_description,
)

MARKER = "scratch database of bench/evaluate.py --http"
EVALUATE_PATH = "/api_gateway/v1/promotions/evaluate"
BARE_PATH = "/bare/evaluate"
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "3"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
THREADS = int(os.environ.get("BENCH_THREADS", "1"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CARTS = int(os.environ.get("BENCH_CARTS", "200"))
WRK = os.environ.get("BENCH_WRK", "/usr/bin/wrk")


# --- Fixtures ------------------------------------------------------------------------------------------


@dataclass
class Fixtures:
    auth: str
    customer_id: int
    cart_bodies: list[str] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def make_fixtures(promotions: int, lines: int, seed: int) -> Fixtures:
    """The org, its promotions (bench/evaluate.py's mix, stored through the create service, running
    from yesterday for 30 days), the customer holding an instance of each wallet promotion, a
    read-only API client, and the carts as JSON bodies."""
    from django.utils import timezone

    from bench._common import basic_auth, bench_org
    from bench.evaluate import Catalogue, promotion
    from promotions.audit import Actor
    from promotions.services import api_client_create, promotion_create
    from wallets.models import Customer, EarnedPromotion

    rng = random.Random(seed)
    catalogue = Catalogue(rng)
    org = bench_org()
    client, secret = api_client_create(org=org, username="bench.evaluate", access="READ")
    customer = Customer.objects.create(org=org, mobile="919900000001")
    now = timezone.now()
    kinds: dict[str, int] = {}
    for number in range(promotions):
        body = promotion(number, rng, catalogue)
        created = promotion_create(
            org=org,
            fields={
                "name": body["name"], "type": body["type"], "priority": body["priority"],
                "is_stackable": body["isStackable"], "message_label": f"bench {number}",
                "start_date": now - dt.timedelta(days=1), "end_date": now + dt.timedelta(days=30),
                "condition": body["condition"], "action": body["action"],
            },
            restrictions=[],
            actor=Actor.system(),
        )  # fmt: skip
        kind = f"{body['condition']['type']}/{body['action']['type']}"
        kinds[kind] = kinds.get(kind, 0) + 1
        if created.type != "POS":  # an earned (unlocked) instance: EARNING and CUSTOMER alike apply
            EarnedPromotion.objects.create(
                org=org, customer=customer, promotion=created, kind="EARNED", earned_from_type="ACTIVITY",
                earned_from_id=f"bench-{number}", event_time=now, valid_till=now + dt.timedelta(days=30),
            )  # fmt: skip
    carts = []
    for _ in range(CARTS):
        items = []
        for _ in range(lines):
            sku, price, category, brand = rng.choice(catalogue.products)
            qty = rng.choice((1, 1, 1, 2, 3))
            items.append(
                {"sku": sku, "amount": f"{price * qty:.2f}", "qty": str(qty), "categoryList": [category], "brandList": [brand]}
            )  # fmt: skip
        total = sum(Decimal(item["amount"]) for item in items)
        tender = rng.choice(("CreditCard", "DebitCard", "POINTS"))
        body = {
            "amount": f"{total:.2f}",
            "customerId": customer.pk,
            "cartItems": items,
            "cartTenders": [{"identifier": tender, "amount": f"{total / 2:.2f}"}],
        }
        carts.append(json.dumps(body, separators=(",", ":")))
    return Fixtures(basic_auth(client.username, secret), customer.pk, carts, kinds)


# --- wrk ---------------------------------------------------------------------------------------------

LUA = """
local bodies = {%(bodies)s}
local headers = {["Content-Type"] = "application/json", ["Authorization"] = %(auth)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", %(path)s, headers, bodies[(counter %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "BENCH {\\"requests\\":%%d,\\"duration_us\\":%%d,\\"p50_us\\":%%d,\\"p99_us\\":%%d,\\"status_errors\\":%%d,\\"socket_errors\\":%%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def lua_script(directory: Path, name: str, path: str, auth: str, bodies: list[str]) -> Path:
    script = directory / f"{name}.lua"
    script.write_text(
        LUA
        % {
            "bodies": ",\n".join(_lua_string(body) for body in bodies),
            "auth": _lua_string(auth),
            "path": _lua_string(path),
        }
    )
    return script


@dataclass
class Slice:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Phase:
    slices: list[Slice] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.slices)

    @property
    def rate(self) -> float:
        return self.requests / sum(s.seconds for s in self.slices)

    @property
    def p50_ms(self) -> float:
        return statistics.median(s.p50_ms for s in self.slices)

    @property
    def p99_ms(self) -> float:
        return max(s.p99_ms for s in self.slices)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.slices)


def wrk(port: int, path: str, script: Path, seconds: float) -> Slice:
    threads = max(1, min(2, CLIENTS))
    command = [
        WRK, "-t", str(threads), "-c", str(CLIENTS), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^BENCH (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        fail(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    figures = json.loads(found.group(1))
    return Slice(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["status_errors"] + figures["socket_errors"],
    )


def report(label: str, phase: Phase) -> None:
    print(
        f"  {label:<9} {phase.rate:>7,.0f} req/s   p50 {phase.p50_ms:6.1f} ms   p99 {phase.p99_ms:6.1f} ms"
        f"   {phase.requests:>7,} requests, {phase.errors} errors"
    )


def http_main(*, promotions: int = 250, lines: int = 50, seed: int = 1) -> int:
    if not shutil.which(WRK):
        fail(f"wrk not found at {WRK}: install it or set BENCH_WRK")
    with bench_database("promotions_bench_evaluate", marker=MARKER) as bench_url:
        from django.db import connection

        from redemptions.models import Evaluation

        fixtures = make_fixtures(promotions, lines, seed)
        connection.close()
        evaluate, bare = Phase(), Phase()
        with tempfile.TemporaryDirectory() as directory:
            scripts = {
                "evaluate": lua_script(Path(directory), "evaluate", EVALUATE_PATH, fixtures.auth, fixtures.cart_bodies),
                "bare": lua_script(Path(directory), "bare", BARE_PATH, fixtures.auth, fixtures.cart_bodies),
            }  # fmt: skip
            with (
                gunicorn(bench_url, workers=WORKERS, threads=THREADS, ready_path=EVALUATE_PATH) as (app_port, _),
                gunicorn(
                    bench_url, workers=WORKERS, threads=THREADS, settings="bench._app.bare_settings",
                    ready_path=BARE_PATH,
                ) as (bare_port, _),
            ):  # fmt: skip
                # Warm-up: each worker compiles the org's rules once (then cached per process by
                # rules_version, as in production), checks the client's secret, opens its connection.
                warm = wrk(app_port, EVALUATE_PATH, scripts["evaluate"], WARMUP_SECONDS)
                wrk(bare_port, BARE_PATH, scripts["bare"], WARMUP_SECONDS)
                for _ in range(ROUNDS):
                    bare.slices.append(wrk(bare_port, BARE_PATH, scripts["bare"], SECONDS / ROUNDS))
                    evaluate.slices.append(
                        wrk(app_port, EVALUATE_PATH, scripts["evaluate"], SECONDS / ROUNDS)
                    )
        stored = Evaluation.objects.count()
        connection.close()
    answered = warm.requests - warm.errors + evaluate.requests - evaluate.errors
    ratio = evaluate.rate / bare.rate
    verdicts = {
        "ratio": ratio >= TARGET_RATIO,
        "p99": evaluate.p99_ms < TARGET_P99_MS,
        "errors": evaluate.errors + bare.errors + warm.errors == 0,
        # wrk stops each run with up to one request per connection in flight: stored, not counted.
        "stored": answered <= stored <= answered + CLIENTS * (ROUNDS + 1),
    }
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(fixtures.kinds.items()))
    print(
        f"evaluate ({promotions} active promotions: {kinds}; carts of {lines} lines) against a bare JSON "
        f"endpoint outside the app's stack: {gunicorn_description(WORKERS, THREADS)} each, wrk with {CLIENTS} "
        f"connections, {SECONDS:g} s per endpoint in {ROUNDS} alternating slices after {WARMUP_SECONDS:g} s "
        f"warm-up ({os.cpu_count()} cores shared by the servers, PostgreSQL and wrk)"
    )
    report("bare", bare)
    report("evaluate", evaluate)
    print(
        f"  ratio evaluate/bare: {ratio:.3f}  {'PASS' if verdicts['ratio'] else 'FAIL'} (target >= {TARGET_RATIO})"
    )
    print(
        f"  evaluate p99: {evaluate.p99_ms:.1f} ms  {'PASS' if verdicts['p99'] else 'FAIL'} "
        f"(target < {TARGET_P99_MS:g} ms)"
    )
    print(f"  errors (non-2xx or socket): {evaluate.errors + bare.errors + warm.errors}  "
          f"{'PASS' if verdicts['errors'] else 'FAIL'}")  # fmt: skip
    print(
        f"  evaluations stored: {stored:,} for {answered:,} answers  {'PASS' if verdicts['stored'] else 'FAIL'}"
    )
    return 0 if all(verdicts.values()) else 1
