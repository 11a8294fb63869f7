"""The evaluate-then-redeem round trip under REDEMPTION_WITH_CART_EVALUATION (cart locks on), under
gunicorn, loaded by wrk, next to the bare redemption and the reference write.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/evaluate_redeem.py

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_evaluate_redeem`), created and migrated at the start and dropped at the end
(only one this script created: it carries a marker comment). wrk drives the load (BENCH_WRK, default
/usr/bin/wrk: `apt-get install -y wrk`).

Two orgs in one database:

    round trip  an org on REDEMPTION_WITH_CART_EVALUATION with cart locks on (TTL 300 s, one open cart
                per customer): one CUSTOMER promotion (100 off a cart over 1) with a Customer
                REDEMPTION limit of 1 and a Promotion REDEMPTION limit of the whole pool; BENCH_ROUNDTRIPS
                customers (default 20,000), each holding one earned instance of it. A round trip is
                POST /api_gateway/v1/promotions/evaluate of the customer's cart (one line of 1000: the
                promotion applies with 100 off, opening a cart that reserves a unit of both limits and
                the instance), then POST /api_gateway/v1/promotions/redemptions carrying the answer's
                `evaluationId` as `promotionEvaluationId` and its `identifier`s as
                `appliedPromotionIdentifiers`, with the same line bench/redeem.py sends (the evaluated
                instance, 100 off): the cart's reservation becomes the redemption.
    redeem      bench/redeem.py's org and requests (the default strategy, the one-statement redemption:
                BENCH_POOL instances, default 30,000), the bare redemption
    reference   POST /reference/write (bench/_app/reference_settings.py), the minimal write every HTTP
                bench compares with

One app server serves both orgs and a second serves the reference (BENCH_WORKERS sync workers, default
one per core, or gthread workers with BENCH_THREADS > 1; DEBUG off).

A round trip is two dependent requests, so its wrk script carries state, and wrk's `response()` cannot
tell a thread's connections apart: the round trip runs one connection per wrk thread (`-t` and `-c`
BENCH_CLIENTS, default 8), each thread going through its own customers (each at most once over all the
runs, so a cart wrk left open when it stopped is never met again: a customer's second open cart would
be refused), evaluating, then redeeming the evaluated cart (the ids taken from the answer with Lua
string patterns, put into a template prepared before the clock with its own transactionIdentifier).
The thread's next evaluation waits for the redemption's answer. Each request and each round trip is
timed in the script (LuaJIT's FFI, the monotonic clock). redeem and reference run as in bench/redeem.py
(`-t` one thread per core, `-c` BENCH_CLIENTS): the same number of requests in flight.

Each endpoint is warmed up for BENCH_WARMUP_SECONDS (default 3), then BENCH_ROUNDS (default 5) rounds of
BENCH_SECONDS / BENCH_ROUNDS (default 10 s in all, whole seconds per slice) per endpoint in turn.

Prints round trips/s (the median of the slices), the round trip's p50 and p99 and each request's
(medians of the slices'), CPU per round trip (gunicorn, PostgreSQL, wrk), then the bare redemption and
the reference as bench/redeem.py prints them, and the ratios: round trips/s over redemptions/s and over
reference writes/s, and CPU per round trip over CPU per bare redemption. No speed target: the figures
are for reading. The checks: no non-2xx answer nor socket error; in the round trip's org one
redemption per round trip answered 200 (up to the redemptions wrk left in flight), every redemption
bound to its own evaluation and its cart REDEEMED by it, open carts only those wrk left in flight
(evaluated, never redeemed), no cart cancelled or expired, the counters' `reserved` equal to the open
carts' units and `used` to the redemptions (redemptions/invariants.py); bench/redeem.py's checks of the
bare redemption; the reference's writes. Exits 1 on any FAIL, 2 when the bench cannot run.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    BENCH_ORG_ID,
    CPU_GROUPS,
    REFERENCE_PATH,
    REFERENCE_SETTINGS,
    CpuMeter,
    Endpoint,
    RequestPool,
    WrkRun,
    alternate,
    bench_api_client,
    bench_database,
    bench_org,
    bench_promotion,
    endpoint_report,
    fail,
    gunicorn,
    gunicorn_description,
    load_settings,
    paired_ratio,
    percentile,
    reference_pool,
    reference_problems,
    run_main,
    verdict,
    wrk_command,
    wrk_execute,
    wrk_threads,
)

CLIENTS, SECONDS, WARMUP_SECONDS, WORKERS, THREADS = load_settings(seconds=10, warmup_seconds=3)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
ROUNDTRIPS = int(os.environ.get("BENCH_ROUNDTRIPS", "20000"))  # customers prepared, one round trip each
MARKER = "scratch database of bench/evaluate_redeem.py"
EVALUATE_PATH = "/api_gateway/v1/promotions/evaluate"
REDEEM_PATH = "/api_gateway/v1/promotions/redemptions"
CART_ORG_ID = BENCH_ORG_ID + 1
DISCOUNT = 100
# Placeholders of the redemption template, replaced by the evaluate answer's ids in the wrk script.
EVALUATION_PLACEHOLDER = "@EVALUATION@"
IDENTIFIERS_PLACEHOLDER = "@IDENTIFIERS@"


# --- Fixtures ------------------------------------------------------------------------------------------


@dataclass
class CartFixtures:
    org_id: int
    auth: str
    promotion_id: str
    roundtrips: list[tuple[str, str]]  # (evaluate body, redemption template), one per customer


def make_cart_fixtures(count: int = ROUNDTRIPS) -> CartFixtures:
    """The round trip's org (REDEMPTION_WITH_CART_EVALUATION, cart locks on), its promotion and limits,
    its `count` customers with an instance each, and per customer the cart and the redemption template."""
    from django.utils import timezone

    from promotions.models import PromotionRestriction, PromotionType
    from promotions_site.timefmt import to_epoch_ms
    from wallets.models import Customer, EarnedPromotion

    now = timezone.now()
    org = bench_org(CART_ORG_ID, "Bench cart-evaluation org")
    org.redemption_strategy = "REDEMPTION_WITH_CART_EVALUATION"
    org.cart_locking_enabled = True
    org.save(update_fields=["redemption_strategy", "cart_locking_enabled"])
    auth = bench_api_client(org, "bench.cart.till")
    wallet = bench_promotion(
        org,
        "Bench cart-evaluation promotion",
        PromotionType.CUSTOMER,
        discount=DISCOUNT,
        max_issuance_per_customer=-1,
    )
    Level, Kpi = PromotionRestriction.Level, PromotionRestriction.Kpi
    PromotionRestriction.objects.bulk_create(
        [
            PromotionRestriction(promotion=wallet, level=Level.CUSTOMER, kpi=Kpi.REDEMPTION, limit=1),
            PromotionRestriction(promotion=wallet, level=Level.PROMOTION, kpi=Kpi.REDEMPTION, limit=count),
        ]
    )
    customers = Customer.objects.bulk_create(
        [Customer(org=org, mobile=f"8{n:09d}") for n in range(count)], batch_size=5000
    )
    instances = EarnedPromotion.objects.bulk_create(
        [
            EarnedPromotion(
                org=org,
                customer=customer,
                promotion=wallet,
                kind=EarnedPromotion.Kind.ISSUED,
                earned_from_type=EarnedPromotion.EarnedFromType.BULK_ISSUE,
                earned_from_id="bench",
                seq=1,
                event_time=now,
                valid_till=wallet.end_date,
            )
            for customer in customers
        ],
        batch_size=5000,
    )
    when = to_epoch_ms(now - dt.timedelta(minutes=1))
    roundtrips = []
    for n, instance in enumerate(instances):
        cart = {
            "amount": "1000.00",
            "customerId": instance.customer_id,
            "cartItems": [{"sku": "SKU-1", "amount": "1000.00", "qty": "1"}],
        }
        redemption = {
            "customerId": str(instance.customer_id),
            "transactionIdentifier": f"BENCH-RT-{n}",
            "transactionNumber": f"BILL-RT-{n}",
            "transactionDate": when,
            "amount": 1000,
            "promotionEvaluationId": EVALUATION_PLACEHOLDER,
            "appliedPromotionIdentifiers": [IDENTIFIERS_PLACEHOLDER],
            "lineItems": [
                {
                    "sku": "SKU-1",
                    "promotionId": wallet.pk,
                    "earnedPromotionId": instance.pk,
                    "redemptionCount": 1,
                    "discount": DISCOUNT,
                    "discountAppliedOnQuantity": 1,
                    "promotionAppliedOnQuantity": 1,
                }
            ],
        }
        roundtrips.append((json.dumps(cart), json.dumps(redemption)))
    return CartFixtures(org.pk, auth, wallet.pk, roundtrips)


class RoundTripPool(RequestPool):
    """The round trips for wrk: one file per thread, a line `evaluate body<TAB>redemption template` each
    (thread t gets round trips t, t + threads, ...), each sent at most once over all the runs (a thread
    that uses up its file stops and the run reports the pool exhausted)."""

    def __init__(self, directory: Path, roundtrips: list[tuple[str, str]], *, threads: int):
        self.prefix = str(Path(directory) / "roundtrip")
        self.once = True
        self.offsets = []
        self.used = [0] * threads
        for thread in range(threads):
            offsets = [0]
            with open(f"{self.prefix}.{thread}", "wb") as out:
                for evaluate_body, template in roundtrips[thread::threads]:
                    line = f"{evaluate_body}\t{template}"
                    if line.count("\t") != 1 or "\n" in line:
                        raise ValueError(f"not a round trip line: {line[:120]!r}")
                    offsets.append(offsets[-1] + out.write(f"{line}\n".encode()))
            self.offsets.append(offsets)


# --- The round trip under wrk ----------------------------------------------------------------------------

# One Lua state per wrk thread, one connection each (`-t N -c N`), so `response()` answers the request
# this thread's `request()` sent last. A thread reads a round trip from its file (`init` opens it at the
# byte offset the run starts from), sends the evaluation, and on its answer 200 takes `evaluationId` and
# the `identifier`s (the cart has no tender: every `identifier` of the answer is an applied promotion's)
# and sends the redemption built from the template; any other answer, or a redemption's answer, moves
# it to the next round trip. Times in microseconds of the monotonic clock (LuaJIT's FFI). `done` (main
# state) prints every thread's counts and timings as one JSON line.
ROUNDTRIP_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000000 + tonumber(clock.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  evaluate_path, redeem_path = args[1], args[2]
  headers = {["Content-Type"] = "application/json", ["Authorization"] = args[4]}
  file = assert(io.open(args[3] .. "." .. id, "rb"))
  file:seek("set", tonumber(args[5 + id]))
  phase, template, ids = "evaluate", nil, nil
  lines, exhausted, samples = 0, false, {}
  -- Flat tables only: wrk's thread:get crashes on a table inside a table.
  sent_evaluate, sent_redeem = 0, 0
  statuses_evaluate, statuses_redeem = {}, {}
  us_evaluate, us_redeem, us_roundtrip = {}, {}, {}
  started, sent_at = 0, 0
end

local function fill(text, placeholder, value)
  local first, last = text:find(placeholder, 1, true)
  if first == nil then return text end
  return text:sub(1, first - 1) .. value .. text:sub(last + 1)
end

function request()
  if file == nil then return wrk.format("GET", "/") end
  sent_at = now_us()
  if phase == "redeem" then
    sent_redeem = sent_redeem + 1
    local body = fill(fill(template, '"@EVALUATION@"', '"' .. ids.evaluation .. '"'), '"@IDENTIFIERS@"', ids.identifiers)
    return wrk.format("POST", redeem_path, headers, body)
  end
  local line = file:read("*l")
  if line == nil then
    exhausted = true
    wrk.thread:stop()
    return wrk.format("GET", "/bench-pool-exhausted")
  end
  lines = lines + 1
  local body
  body, template = line:match("^([^\t]*)\t([^\t]*)$")
  started = sent_at
  sent_evaluate = sent_evaluate + 1
  return wrk.format("POST", evaluate_path, headers, body)
end

local function sample(kind, status, body)
  if #samples < 3 then samples[#samples + 1] = kind .. " " .. status .. ": " .. string.sub(body or "", 1, 300) end
end

function response(status, headers, body)
  if file == nil or exhausted then return end
  local answered = now_us()
  local kind = phase
  local statuses, spent = statuses_evaluate, us_evaluate
  if kind == "redeem" then statuses, spent = statuses_redeem, us_redeem end
  statuses[status] = (statuses[status] or 0) + 1
  spent[#spent + 1] = math.floor(answered - sent_at)
  phase = "evaluate"
  if status ~= 200 then sample(kind, status, body); return end
  if kind == "redeem" then
    us_roundtrip[#us_roundtrip + 1] = math.floor(answered - started)
    return
  end
  local evaluation = body:match('"evaluationId"%s*:%s*"([^"]+)"')
  local seen, list = {}, {}
  for identifier in body:gmatch('"identifier"%s*:%s*"([^"]+)"') do
    if not seen[identifier] then
      seen[identifier] = true
      list[#list + 1] = '"' .. identifier .. '"'
    end
  end
  if evaluation == nil or #list == 0 then sample("evaluate (no evaluationId or identifier)", status, body); return end
  ids = {evaluation = evaluation, identifiers = table.concat(list, ",")}
  phase = "redeem"
end

local function quote(text)
  return '"' .. (text:gsub('[%c"\\\128-\255]', function(c) return string.format("\\u%04x", c:byte()) end)) .. '"'
end

local function counts(map)
  local parts = {}
  for status, n in pairs(map) do parts[#parts + 1] = string.format('"%d":%d', status, n) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local parts = {}
  for _, thread in ipairs(threads) do
    local texts = {}
    for _, text in ipairs(thread:get("samples")) do texts[#texts + 1] = quote(text) end
    parts[#parts + 1] = string.format(
      '{"lines":%d,"exhausted":%s,"sent":{"evaluate":%d,"redeem":%d},"statuses":{"evaluate":%s,"redeem":%s},'
        .. '"us":{"evaluate":[%s],"redeem":[%s],"roundtrip":[%s]},"samples":[%s]}',
      thread:get("lines"), tostring(thread:get("exhausted")), thread:get("sent_evaluate"),
      thread:get("sent_redeem"), counts(thread:get("statuses_evaluate")), counts(thread:get("statuses_redeem")),
      table.concat(thread:get("us_evaluate"), ","), table.concat(thread:get("us_redeem"), ","),
      table.concat(thread:get("us_roundtrip"), ","), table.concat(texts, ","))
  end
  local errors = summary.errors
  io.write(string.format('BENCH {"duration_us":%d,"socket_errors":%d,"threads":[%s]}\n',
    summary.duration, errors.connect + errors.read + errors.write + errors.timeout, table.concat(parts, ",")))
end
"""


def redemption_body(template: str, evaluate_answer: str) -> str | None:
    """What ROUNDTRIP_SCRIPT sends after an evaluation answered `evaluate_answer` (its raw JSON text):
    the template with the answer's `evaluationId` and `identifier`s (the same patterns as the Lua
    script's, first seen first, each once); None when the answer has no evaluationId or no identifier.
    The script's twin, for tests/redemptions/test_evaluate_redeem_bench.py."""
    evaluation = re.search(r'"evaluationId"\s*:\s*"([^"]+)"', evaluate_answer)
    identifiers = list(dict.fromkeys(re.findall(r'"identifier"\s*:\s*"([^"]+)"', evaluate_answer)))
    if evaluation is None or not identifiers:
        return None
    body = template.replace(f'"{EVALUATION_PLACEHOLDER}"', f'"{evaluation.group(1)}"', 1)
    return body.replace(f'"{IDENTIFIERS_PLACEHOLDER}"', ",".join(f'"{i}"' for i in identifiers), 1)


@dataclass
class RoundTripRun(WrkRun):
    """A run of the round trip: `requests` the round trips answered 200 twice, `p50_ms`/`p99_ms`/`max_ms`
    theirs, `statuses` and `sent` both requests' together; per request kind below."""

    kinds: dict[str, Counter] = field(default_factory=dict)  # "evaluate"/"redeem" -> status -> answers
    kind_sent: Counter = field(default_factory=Counter)
    kind_ms: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (p50, p99)

    def answered(self, kind: str) -> int:
        return sum(self.kinds[kind].values())

    def unanswered_of(self, kind: str) -> int:
        return self.kind_sent[kind] - self.answered(kind)


_script: list[str] = []


def _roundtrip_script() -> str:
    if not _script:
        handle, path = tempfile.mkstemp(prefix="bench-roundtrip-", suffix=".lua")
        with os.fdopen(handle, "w") as out:
            out.write(ROUNDTRIP_SCRIPT)
        atexit.register(os.unlink, path)
        _script.append(path)
    return _script[0]


def _ms(values: list[int]) -> tuple[float, float, float]:
    """(p50, p99, max) in ms of microsecond timings; zeros when there are none."""
    if not values:
        return 0.0, 0.0, 0.0
    return percentile(values, 50) / 1000, percentile(values, 99) / 1000, max(values) / 1000


def roundtrip_run(
    port: int, pool: RoundTripPool, seconds: float, *, auth: str, meter: CpuMeter, server_pid: int
) -> RoundTripRun:
    """wrk with one connection per thread (`pool.threads` of each) for `seconds` (whole, at least one),
    each thread running its round trips; the CPU measured around it."""
    threads = pool.threads
    command = [
        wrk_command(), "-t", str(threads), "-c", str(threads), "-d", f"{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", _roundtrip_script(), f"http://127.0.0.1:{port}/", "--",
        EVALUATE_PATH, REDEEM_PATH, pool.prefix, auth,
        *map(str, (offsets[used] for offsets, used in zip(pool.offsets, pool.used, strict=True))),
    ]  # fmt: skip
    figures, cpu, wall = wrk_execute(command, meter=meter, server_pid=server_pid)
    per_thread = figures["threads"]
    pool.sent([thread["lines"] for thread in per_thread])
    kinds = {kind: Counter() for kind in ("evaluate", "redeem")}
    kind_sent: Counter = Counter()
    us: dict[str, list[int]] = {"evaluate": [], "redeem": [], "roundtrip": []}
    for thread in per_thread:
        for kind in kinds:
            kinds[kind].update({int(code): n for code, n in thread["statuses"][kind].items()})
            kind_sent[kind] += thread["sent"][kind]
        for kind, values in thread["us"].items():
            us[kind] += values
    p50, p99, worst = _ms(us["roundtrip"])
    return RoundTripRun(
        requests=len(us["roundtrip"]),
        seconds=figures["duration_us"] / 1e6,
        p50_ms=p50,
        p99_ms=p99,
        max_ms=worst,
        statuses=kinds["evaluate"] + kinds["redeem"],
        socket_errors=figures["socket_errors"],
        sent=sum(kind_sent.values()),
        exhausted=any(thread["exhausted"] for thread in per_thread),
        samples=[sample for thread in per_thread for sample in thread["samples"]],
        cpu=cpu,
        wall=wall,
        kinds=kinds,
        kind_sent=kind_sent,
        kind_ms={kind: _ms(us[kind])[:2] for kind in ("evaluate", "redeem")},
    )


@dataclass
class RoundTrip(Endpoint):
    """The round trip as an endpoint `alternate` drives: its runs are `roundtrip_run`s (one connection
    per prepared thread file: `clients` is the pool's thread count)."""

    def run(self, seconds: float, *, clients: int, meter: CpuMeter, warm: bool = False) -> WrkRun:
        done = roundtrip_run(
            self.port, self.pool, seconds, auth=self.auth, meter=meter, server_pid=self.server_pid
        )
        if done.exhausted:
            fail(f"{self.label}: its prepared round trips ran out during a run (raise {self.pool_setting})")
        (self.warm if warm else self.slices).append(done)
        return done

    def kind_total(self, kind: str, status: int | None = None) -> int:
        """Answers of `kind` (with `status` when given), warm-up included."""
        return sum(run.kinds[kind][status] if status is not None else run.answered(kind) for run in self.runs)

    def kind_unanswered(self, kind: str) -> int:
        return sum(run.unanswered_of(kind) for run in self.runs)

    def kind_ms(self, kind: str) -> tuple[float, float]:
        return (
            statistics.median(run.kind_ms[kind][0] for run in self.slices),
            statistics.median(run.kind_ms[kind][1] for run in self.slices),
        )


def roundtrip_report(endpoint: RoundTrip, width: int = 10) -> None:
    """Round trips/s, the round trip's and each request's p50/p99, answers, CPU per round trip."""
    print(
        f"  {endpoint.label:<{width}} {endpoint.rate:>7,.0f} round trips/s   p50 {endpoint.p50_ms:6.1f} ms"
        f"   p99 {endpoint.p99_ms:6.1f} ms (worst slice {endpoint.worst_p99_ms:.1f}; evaluate sent to"
        f" redemption answered)   {endpoint.requests:>7,} round trips; {endpoint.non_2xx} non-2xx,"
        f" {endpoint.socket_errors} socket errors (warm-up included)"
    )
    for kind in ("evaluate", "redeem"):
        p50, p99 = endpoint.kind_ms(kind)
        print(f"  {'':<{width}}   {kind + ' alone':<14} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
    cpu, count = endpoint.cpu, max(1, endpoint.requests)
    wall = sum(s.wall for s in endpoint.slices)
    per_request = ", ".join(f"{group} {cpu[group] / count * 1000:.2f}" for group in CPU_GROUPS[:3])
    print(
        f"  {'':<{width}} CPU per round trip (ms): {per_request}; other processes {cpu['other'] / wall:.2f} cores;"
        f" WAL per round trip {cpu['WAL bytes'] / count:,.0f} B"
    )
    for sample in [sample for run in endpoint.runs for sample in run.samples][:3]:
        print(f"  {'':<{width}} {sample}")


def cpu_per(endpoint: Endpoint) -> float:
    """CPU seconds of gunicorn, PostgreSQL and wrk together per counted request (or round trip)."""
    cpu = endpoint.cpu
    return sum(cpu[group] for group in CPU_GROUPS[:3]) / max(1, endpoint.requests)


# --- The check ----------------------------------------------------------------------------------------


def roundtrip_problems(fixtures: CartFixtures, roundtrip: RoundTrip) -> list[str]:
    """What the database says against the round trips' answers: [] when every round trip left one
    redemption bound to its evaluation and nothing else is held."""
    from django.db.models import F

    from redemptions.invariants import violations
    from redemptions.models import CartLock, Redemption, RedemptionCounter
    from wallets.models import EarnedPromotion

    problems = []
    done = roundtrip.kind_total("redeem", 200)
    in_flight = roundtrip.kind_unanswered("redeem")
    redemptions = Redemption.objects.filter(org_id=fixtures.org_id)
    recorded = redemptions.count()
    if not done <= recorded <= done + in_flight:
        problems.append(
            f"{recorded} redemptions for {done} round trips and {in_flight} redemptions unanswered"
        )
    unbound = redemptions.filter(evaluation__isnull=True).count()
    if unbound:
        problems.append(f"{unbound} redemptions not bound to an evaluation")
    locks = CartLock.objects.filter(org_id=fixtures.org_id)
    statuses = Counter(locks.values_list("status", flat=True))
    redeemed = locks.filter(
        status=CartLock.Status.REDEEMED, redemption__evaluation_id=F("evaluation_id")
    ).count()
    if not statuses[CartLock.Status.REDEEMED] == redeemed == recorded:
        problems.append(
            f"{statuses[CartLock.Status.REDEEMED]} carts REDEEMED, {redeemed} by the redemption bound to their"
            f" evaluation, {recorded} redemptions"
        )
    # Left open: carts evaluated whose redemption did not answer 200 (in flight when wrk stopped), and
    # evaluations in flight.
    allowed = roundtrip.kind_total("evaluate", 200) - done + roundtrip.kind_unanswered("evaluate")
    if statuses[CartLock.Status.OPEN] > allowed:
        problems.append(f"{statuses[CartLock.Status.OPEN]} carts open, at most {allowed} left in flight")
    others = {status: n for status, n in statuses.items() if status not in ("OPEN", "REDEEMED")}
    if others:
        problems.append(f"carts neither open nor redeemed: {others}")
    counter = RedemptionCounter.objects.get(restriction__promotion_id=fixtures.promotion_id, scope="")
    if counter.used != recorded or counter.reserved != statuses[CartLock.Status.OPEN]:
        problems.append(
            f"Promotion counter used {counter.used} reserved {counter.reserved} for {recorded} redemptions and"
            f" {statuses[CartLock.Status.OPEN]} open carts"
        )
    used_up = EarnedPromotion.objects.filter(promotion_id=fixtures.promotion_id, redemption_count=1).count()
    if used_up != recorded:
        problems.append(f"{used_up} instances redeemed for {recorded} redemptions")
    problems += violations([fixtures.org_id])[:5]
    return problems


# --- Main ----------------------------------------------------------------------------------------------


def main() -> int:
    wrk_command()  # before the fixtures: stops here when wrk is missing
    from bench import redeem as bare

    threads = wrk_threads(CLIENTS)
    with bench_database("promotions_bench_evaluate_redeem", marker=MARKER) as bench_url:
        from django.db import connection

        redeem_fixtures = bare.make_fixtures()  # the org BENCH_ORG_ID, its redemptions and the reference
        cart_fixtures = make_cart_fixtures()
        connection.close()
        with (
            tempfile.TemporaryDirectory() as directory,
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, settings=REFERENCE_SETTINGS, ready_path=REFERENCE_PATH
            ) as (reference_port, reference_pid),
            gunicorn(bench_url, workers=WORKERS, threads=THREADS, ready_path=REDEEM_PATH) as (app_port, app_pid),
        ):  # fmt: skip
            work = Path(directory)
            reference = Endpoint(
                "reference", reference_port, reference_pid,
                reference_pool(work, redeem_fixtures.reference_counter_id, threads=threads),
                pool_setting="BENCH_REFERENCE_POOL",
            )  # fmt: skip
            redeem = Endpoint(
                "redeem", app_port, app_pid,
                RequestPool(work, "redeem", redeem_fixtures.redeem_requests, threads=threads, once=True),
                auth=redeem_fixtures.auth,
            )  # fmt: skip
            roundtrip = RoundTrip(
                "round trip", app_port, app_pid,
                RoundTripPool(work, cart_fixtures.roundtrips, threads=CLIENTS),
                auth=cart_fixtures.auth, pool_setting="BENCH_ROUNDTRIPS",
            )  # fmt: skip
            meter = CpuMeter(app_pid, bench_url)
            try:
                alternate(
                    [reference, redeem, roundtrip],
                    clients=CLIENTS, seconds=SECONDS, warmup_seconds=WARMUP_SECONDS, rounds=ROUNDS, meter=meter,
                )  # fmt: skip
            finally:
                meter.close()
        problems = roundtrip_problems(cart_fixtures, roundtrip)
        bare_problems = bare.over_redemption_problems(redeem_fixtures, redeem, None)
        bare_problems += reference_problems(reference, redeem_fixtures.reference_counter_id)
        connection.close()

    endpoints = [reference, redeem, roundtrip]
    errors = sum(e.non_2xx + e.socket_errors for e in endpoints)
    verdicts = {"errors": errors == 0, "round trips": not problems, "bare": not bare_problems}
    print(
        f"evaluate-then-redeem round trip (REDEMPTION_WITH_CART_EVALUATION, cart locks on) against the bare"
        f" redemption and the minimal write: {gunicorn_description(WORKERS, THREADS)} per server; round trip"
        f" wrk -t{CLIENTS} -c{CLIENTS} (one connection per thread), redeem and reference wrk -t{threads}"
        f" -c{CLIENTS}; {SECONDS:g} s per endpoint in {ROUNDS} alternating slices after {WARMUP_SECONDS:g} s"
        f" warm-up ({os.cpu_count()} cores shared by the servers, PostgreSQL and wrk)"
    )
    endpoint_report(reference)
    endpoint_report(redeem)
    roundtrip_report(roundtrip)
    print(
        f"  ratio round trips/redemptions: {paired_ratio(roundtrip, redeem):.3f};"
        f" round trips/reference writes: {paired_ratio(roundtrip, reference):.3f}"
        " (medians of the rounds' ratios)"
    )
    print(
        f"  CPU per round trip / CPU per bare redemption (gunicorn + PostgreSQL + wrk):"
        f" {cpu_per(roundtrip) * 1000:.2f} / {cpu_per(redeem) * 1000:.2f} ms ="
        f" {cpu_per(roundtrip) / max(cpu_per(redeem), 1e-9):.2f}"
    )
    print(
        f"  round trip p99 / redeem p99: {roundtrip.p99_ms:.1f} / {redeem.p99_ms:.1f} ms"
        f" = {roundtrip.p99_ms / max(redeem.p99_ms, 1e-9):.2f}"
    )
    print(
        f"  errors (non-2xx or socket, warm-up included): {errors}  {verdict(verdicts['errors'])} (target 0)"
    )
    if problems:
        print(f"  round trip check: FAIL: {'; '.join(problems)}")
    else:
        print(
            f"  round trip check: PASS ({roundtrip.kind_total('redeem', 200):,} round trips answered 200,"
            f" {roundtrip.kind_unanswered('evaluate')} evaluations and {roundtrip.kind_unanswered('redeem')}"
            " redemptions sent and never answered; one redemption per round trip, bound to its evaluation,"
            " its cart REDEEMED; open carts only those left in flight; counters' reserved equal to the open"
            " carts' units)"
        )
    if bare_problems:
        print(f"  bare redemption and reference check: FAIL: {'; '.join(bare_problems)}")
    else:
        print("  bare redemption and reference check: PASS (bench/redeem.py's checks)")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    run_main(main)
