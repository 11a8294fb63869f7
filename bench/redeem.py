"""The redeem API under gunicorn and concurrent clients, against a bare DRF write on the same server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/redeem.py

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_redeem`), created and migrated at the start and dropped at the end (only
one this script created: it carries a marker comment).

The app runs under gunicorn on 127.0.0.1 (a free port; BENCH_WORKERS sync workers, default 4, or
gthread workers with BENCH_THREADS > 1) with the production settings (DEBUG off, real password
hashing, persistent database connections) plus one route from bench/_app/urls.py: a bare DRF
endpoint with the app's authentication and permission classes that does one conditional UPDATE of
a limit counter and one INSERT (an audit event) in one transaction. BENCH_CLIENTS threads (default
8), each with its own HTTP/1.1 connection and Basic auth of a real API client, drive each endpoint
for BENCH_SECONDS (default 10) after a BENCH_WARMUP_SECONDS (default 3) warm-up, in BENCH_ROUNDS
(default 5) alternating slices so both endpoints see the same machine.

Every redeem request is a distinct transaction of its own customer, redeeming one of that
customer's ACTIVE earned instances of a CUSTOMER promotion with a Customer REDEMPTION limit (2, the
customer's two instances: the second redemption fills it) and a Promotion REDEMPTION limit (the
whole pool), so both counters are taken on every request. Customers come in blocks of 100: the
block's first redemptions, then its second ones, so a customer's two are about 100 requests apart.
BENCH_POOL (default 30,000) instances are prepared; the bench stops if a run uses them up.

Prints requests/s, p50 and p99 latency and errors (any non-200) per endpoint, and where the CPU went
(gunicorn workers, the bench database's PostgreSQL backends, this process as the load generator,
and other processes: the machine may be shared), the WAL written per request (the server's, every
database's: exact only on a quiet server), the ratio of the redeem rate to the bare rate
(target >= 0.5) and the redeem p99 (target < 100 ms); then checks the database: no counter over its
limit, no instance redeemed more than its limit (1), counters that agree with the recorded
redemptions, and exactly one Redemption per 200 answer. Exits 1 on any FAIL, 2 when the bench itself
cannot run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    CPU_GROUPS,
    TARGET_P99_MS,
    Call,
    CpuMeter,
    bench_api_client,
    bench_database,
    bench_org,
    bench_promotion,
    fail,
    gunicorn,
    gunicorn_description,
    http_load,
    load_settings,
    percentile,
    run_main,
)

TARGET_RATIO = 0.5
CLIENTS, SECONDS, WARMUP_SECONDS, WORKERS, THREADS = load_settings(seconds=10, warmup_seconds=3)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))  # alternating slices of SECONDS / ROUNDS per endpoint
POOL = int(os.environ.get("BENCH_POOL", "30000"))  # earned instances prepared (2 per customer)
MARKER = "scratch database of bench/redeem.py"
REDEEM_PATH = "/api_gateway/v1/promotions/redemptions"
BARE_PATH = "/api_gateway/v1/bench/bare"
INSTANCES_PER_CUSTOMER = 2
BLOCK = 100  # customers whose first redemptions come before their second ones


# --- Fixtures ----------------------------------------------------------------------------------------


@dataclass
class Fixtures:
    org_id: int
    auth: str
    promotion_id: str
    bare_counter_id: int
    redeem_bodies: list[bytes]
    bare_body: bytes


def make_fixtures() -> Fixtures:
    from django.utils import timezone

    from promotions.models import Promotion, PromotionRestriction, PromotionType
    from promotions_site.timefmt import to_epoch_ms
    from redemptions.models import RedemptionCounter
    from wallets.models import Customer, EarnedPromotion

    now = timezone.now()
    org = bench_org()
    auth = bench_api_client(org, "bench.till")

    def promotion(name: str, kind: str) -> Promotion:
        return bench_promotion(org, name, kind, discount=100, max_issuance_per_customer=-1)

    Level, Kpi = PromotionRestriction.Level, PromotionRestriction.Kpi
    wallet = promotion("Bench wallet promotion", PromotionType.CUSTOMER)
    PromotionRestriction.objects.bulk_create(
        [
            PromotionRestriction(
                promotion=wallet, level=Level.CUSTOMER, kpi=Kpi.REDEMPTION, limit=INSTANCES_PER_CUSTOMER
            ),
            PromotionRestriction(promotion=wallet, level=Level.PROMOTION, kpi=Kpi.REDEMPTION, limit=POOL),
        ]
    )
    # The bare endpoint's counter: one row every request updates, as every redemption updates the
    # Promotion counter; its limit is out of reach.
    bare_limit = PromotionRestriction.objects.create(
        promotion=promotion("Bench bare counter", PromotionType.POS),
        level=Level.PROMOTION,
        kpi=Kpi.REDEMPTION,
        limit=10**9,
    )
    bare_counter = RedemptionCounter.objects.create(org=org, restriction=bare_limit, scope="", limit=10**9)

    customers = Customer.objects.bulk_create(
        [Customer(org=org, mobile=f"9{n:09d}") for n in range(POOL // INSTANCES_PER_CUSTOMER)],
        batch_size=5000,
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
                seq=seq,
                event_time=now,
                valid_till=wallet.end_date,
            )
            for block in range(0, len(customers), BLOCK)
            for seq in range(1, INSTANCES_PER_CUSTOMER + 1)
            for customer in customers[block : block + BLOCK]
        ],
        batch_size=5000,
    )
    when = to_epoch_ms(now - dt.timedelta(minutes=1))
    bodies = [
        json.dumps(
            {
                "customerId": str(instance.customer_id),
                "transactionIdentifier": f"BENCH-{n}",
                "transactionNumber": f"BILL-{n}",
                "transactionDate": when,
                "amount": 1000,
                "lineItems": [
                    {
                        "sku": "SKU-1",
                        "promotionId": wallet.pk,
                        "earnedPromotionId": instance.pk,
                        "redemptionCount": 1,
                        "discount": 100,
                        "discountAppliedOnQuantity": 1,
                        "promotionAppliedOnQuantity": 1,
                    }
                ],
            }
        ).encode()
        for n, instance in enumerate(instances)
    ]
    return Fixtures(
        org_id=org.pk,
        auth=auth,
        promotion_id=wallet.pk,
        bare_counter_id=bare_counter.pk,
        redeem_bodies=bodies,
        bare_body=json.dumps({"counterId": bare_counter.pk}).encode(),
    )


# --- The load ------------------------------------------------------------------------------------------


@dataclass
class Phase:
    """What one endpoint answered while it was driven (one or several timed slices, added up)."""

    latencies: list[float] = field(default_factory=list)  # seconds, every request started in time
    statuses: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)  # a few error answers, to show
    elapsed: float = 0.0  # from each slice's start to its last answer
    cpu: Counter = field(default_factory=Counter)  # CPU seconds per CPU_GROUPS entry
    wal_bytes: int = 0  # the server's WAL written meanwhile (every database's: others' writes included)
    exhausted: bool = False

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def errors(self) -> int:
        return sum(self.statuses.values()) - self.ok

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile_ms(self, percent: float) -> float:
        return percentile(self.latencies, percent) * 1000

    def add(self, other: Phase) -> None:
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.samples += other.samples
        self.elapsed += other.elapsed
        self.cpu.update(other.cpu)
        self.wal_bytes += other.wal_bytes
        self.exhausted |= other.exhausted


def drive(
    port: int,
    auth: str,
    path: str,
    next_body: Callable[[], bytes | None],
    seconds: float,
    meter: CpuMeter,
) -> Phase:
    """CLIENTS threads, each with its own keep-alive connection, send requests for `seconds`."""
    headers = {"Authorization": auth, "Content-Type": "application/json"}

    def next_call(client: int) -> Call | None:
        body = next_body()
        return None if body is None else Call(path, "POST", path, body, headers)

    def wal_position() -> int:
        return meter.database.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()[0]

    before = []
    load = http_load(
        port,
        clients=CLIENTS,
        seconds=seconds,
        next_call=next_call,
        before_start=lambda: before.append((meter.sample(), wal_position())),
    )
    return Phase(
        latencies=load.tally.latencies[path],
        statuses=load.tally.statuses[path],
        samples=load.tally.samples,
        elapsed=load.elapsed,
        cpu=CpuMeter.spent(before[0][0], meter.sample()),
        wal_bytes=int(wal_position() - before[0][1]),
        exhausted=load.exhausted,
    )


def redeem_bodies(bodies: list[bytes]) -> Callable[[], bytes | None]:
    """Each body once, to whichever client asks next; None when the pool is used up."""
    source = iter(bodies)
    lock = threading.Lock()

    def next_body() -> bytes | None:
        with lock:
            return next(source, None)

    return next_body


# --- The check ----------------------------------------------------------------------------------------


def over_redemption_problems(fixtures: Fixtures, redeem_ok: int, bare_ok: int) -> list[str]:
    """What the database says against the answers: [] when nothing was over-redeemed or lost."""
    from django.db.models import Count, F

    from promotions.models import AuditEvent, PromotionRestriction
    from redemptions.models import Redemption, RedemptionCounter, RedemptionLine
    from wallets.models import EarnedPromotion

    problems = []
    over = RedemptionCounter.objects.filter(used__gt=F("limit")).count()
    if over:
        problems.append(f"{over} counters over their limit")
    instances = EarnedPromotion.objects.filter(promotion_id=fixtures.promotion_id)
    overused = instances.filter(redemption_count__gt=1).count()  # no Earn limit: single-use
    if overused:
        problems.append(f"{overused} earned instances redeemed more than once")
    recorded = Redemption.objects.filter(org_id=fixtures.org_id).count()
    if recorded != redeem_ok:
        problems.append(f"{recorded} redemptions recorded for {redeem_ok} answers 200")
    used_instances = instances.filter(redemption_count=1, status=EarnedPromotion.Status.REDEEMED).count()
    lines = RedemptionLine.objects.filter(promotion_id=fixtures.promotion_id).count()
    if not used_instances == lines == recorded:
        problems.append(f"{used_instances} instances used up, {lines} lines, {recorded} redemptions")
    per_customer = dict(
        Redemption.objects.filter(org_id=fixtures.org_id)
        .values_list("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
    )
    counters = RedemptionCounter.objects.filter(restriction__promotion_id=fixtures.promotion_id)
    for restriction_level, scope, used in counters.values_list("restriction__level", "scope", "used"):
        expected = (
            recorded
            if restriction_level == PromotionRestriction.Level.PROMOTION
            else per_customer.get(int(scope), 0)
        )
        if used != expected:
            problems.append(f"{restriction_level} counter {scope or '-'} used {used}, recorded {expected}")
            break
    customer_counters = counters.filter(restriction__level=PromotionRestriction.Level.CUSTOMER).count()
    if customer_counters != len(per_customer):
        problems.append(f"{customer_counters} Customer counters for {len(per_customer)} customers")
    bare_used = RedemptionCounter.objects.get(pk=fixtures.bare_counter_id).used
    bare_events = AuditEvent.objects.filter(action="bench.bare").count()
    if not bare_used == bare_events == bare_ok:
        problems.append(f"bare: counter {bare_used}, {bare_events} events, {bare_ok} answers 200")
    return problems


# --- Main ----------------------------------------------------------------------------------------------


def report(label: str, phase: Phase) -> None:
    print(
        f"  {label:<7} {phase.rate:>7,.0f} req/s   p50 {phase.percentile_ms(50):6.1f} ms"
        f"   p99 {phase.percentile_ms(99):6.1f} ms   {len(phase.latencies):>6,} requests, {phase.errors} errors"
    )
    cores = ", ".join(f"{group} {phase.cpu[group] / phase.elapsed:.2f}" for group in CPU_GROUPS)
    per_request = (phase.cpu["gunicorn"] + phase.cpu["PostgreSQL"]) / max(1, len(phase.latencies)) * 1000
    print(f"          CPU in cores: {cores}; gunicorn + PostgreSQL {per_request:.1f} ms per request")
    # The server's WAL, not only the bench database's: exact on a quiet server, an upper bound otherwise.
    print(f"          WAL: {phase.wal_bytes / max(1, len(phase.latencies)) / 1000:.1f} kB per request")
    for sample in phase.samples[:3]:
        print(f"          {sample}")


def main() -> int:
    with bench_database("promotions_bench_redeem", marker=MARKER) as bench_url:
        from django.db import connection

        fixtures = make_fixtures()
        connection.close()
        take_redeem_body = redeem_bodies(fixtures.redeem_bodies)

        def bare_body() -> bytes:
            return fixtures.bare_body

        warm_bare, warm_redeem, bare, redeem = Phase(), Phase(), Phase(), Phase()
        with gunicorn(
            bench_url, workers=WORKERS, threads=THREADS, settings="bench._app.settings", ready_path=BARE_PATH
        ) as (port, pid):
            meter = CpuMeter(pid, bench_url)
            try:
                # Warm-up: each worker checks the client's secret once (the slow password hash, then
                # cached per process, as in production) and warms its code paths and connection.
                warm_bare = drive(port, fixtures.auth, BARE_PATH, bare_body, WARMUP_SECONDS, meter)
                warm_redeem = drive(port, fixtures.auth, REDEEM_PATH, take_redeem_body, WARMUP_SECONDS, meter)
                # Alternating slices: both endpoints see the same machine (other load comes and goes).
                for _ in range(ROUNDS):
                    bare.add(drive(port, fixtures.auth, BARE_PATH, bare_body, SECONDS / ROUNDS, meter))
                    redeem.add(
                        drive(port, fixtures.auth, REDEEM_PATH, take_redeem_body, SECONDS / ROUNDS, meter)
                    )
            finally:
                meter.close()
        if warm_redeem.exhausted or redeem.exhausted:
            fail(f"the pool of {POOL:,} earned instances ran out: raise BENCH_POOL")
        problems = over_redemption_problems(
            fixtures, redeem_ok=warm_redeem.ok + redeem.ok, bare_ok=warm_bare.ok + bare.ok
        )

    ratio = redeem.rate / bare.rate
    p99 = redeem.percentile_ms(99)
    errors = warm_bare.errors + warm_redeem.errors + bare.errors + redeem.errors
    verdicts = {
        "ratio": ratio >= TARGET_RATIO,
        "p99": p99 < TARGET_P99_MS,
        "errors": errors == 0,
        "over-redemption": not problems,
    }
    print(
        f"redeem against a bare UPDATE + INSERT endpoint: {gunicorn_description(WORKERS, THREADS)}, {CLIENTS} client threads,"
        f" {SECONDS:g} s each in {ROUNDS} alternating slices after {WARMUP_SECONDS:g} s warm-up"
        f" (PostgreSQL, {os.cpu_count()} cores shared by server, database and load generator)"
    )
    report("bare", bare)
    report("redeem", redeem)
    print(
        f"  ratio redeem/bare: {ratio:.3f}  {'PASS' if verdicts['ratio'] else 'FAIL'} (target >= {TARGET_RATIO})"
    )
    print(
        f"  redeem p99: {p99:.1f} ms  {'PASS' if verdicts['p99'] else 'FAIL'} (target < {TARGET_P99_MS:g} ms)"
    )
    print(
        f"  errors (non-200, warm-up included): {errors}  {'PASS' if verdicts['errors'] else 'FAIL'} (target 0)"
    )
    recorded = warm_redeem.ok + redeem.ok
    if problems:
        print(f"  over-redemption check: FAIL: {'; '.join(problems)}")
    else:
        print(
            f"  over-redemption check: PASS ({recorded:,} redemptions recorded, one per answer 200; no counter"
            " over its limit; no instance redeemed twice; counters agree with the redemptions)"
        )
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    run_main(main)
