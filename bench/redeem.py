"""The redeem API under gunicorn, loaded by wrk, against a minimal write outside the app's stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/redeem.py

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_redeem`), created and migrated at the start and dropped at the end (only
one this script created: it carries a marker comment). wrk drives the load (BENCH_WRK, default
/usr/bin/wrk: `apt-get install -y wrk`).

Two gunicorn servers with the same settings (BENCH_WORKERS sync workers, default one per core, or
gthread workers with BENCH_THREADS > 1; DEBUG off, persistent database connections):

    reference   POST /reference/write (bench/_app/reference_settings.py): no middleware, no
                authentication, one DRF view doing one conditional UPDATE of a hot counter row and
                one INSERT ... ON CONFLICT DO NOTHING keyed by the request, in one transaction
    redeem      POST /api_gateway/v1/promotions/redemptions, the app with its production settings
                (bench/_app/settings.py: the app's URLs plus the next one), Basic auth of an API client
    app stack   POST /api_gateway/v1/bench/bare: the same UPDATE and an INSERT (an audit event) behind
                the app's whole stack (middleware, authentication, throttles); BENCH_STACK=0 leaves
                it out. What it costs beyond the reference is the stack; redeem beyond it, the
                redemption's own work.

wrk (`-t` one thread per core, `-c` BENCH_CLIENTS connections, default 8) drives one endpoint at a
time: BENCH_WARMUP_SECONDS (default 3) each, then BENCH_ROUNDS (default 5) rounds of BENCH_SECONDS /
BENCH_ROUNDS (default 10 s in all, whole seconds per slice) per endpoint in turn, so all see the same
machine. Every request sends a body prepared before the clock and never sent before (bench/_common.py
`RequestPool`): each redemption a distinct transaction of its own customer, redeeming one of that
customer's ACTIVE earned instances of a CUSTOMER promotion with a Customer REDEMPTION limit (2, the
customer's two instances: the second redemption fills it) and a Promotion REDEMPTION limit (the whole
pool), so both counters are taken on every request. Customers come in blocks of 100: the block's first
redemptions, then its second ones. BENCH_POOL (default 30,000) instances are prepared; the bench stops
if a run uses up its share of them.

Prints, per endpoint: requests/s (the median of the slices), p50 and p99 (the medians of the slices'
wrk latency percentiles; the worst slice's p99 too), non-2xx answers and socket errors, and CPU per
request of the gunicorn workers, PostgreSQL and wrk (bench/_common.py `CpuMeter`), and the other
processes' load. Then the ratio redeem/reference (the median of the rounds' ratios; target >= 0.5),
the redeem p99 (target < 50 ms), the errors (target 0), and the database checks: no counter over its
limit, no instance redeemed more than its limit (1), counters that agree with the recorded
redemptions, one Redemption per answer 200 (wrk stops with requests in flight: they may be recorded
unanswered, so up to that many more), and the reference's and app stack's rows likewise. Exits 1 on
any FAIL, 2 when the bench itself cannot run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    REFERENCE_PATH,
    REFERENCE_SETTINGS,
    CpuMeter,
    Endpoint,
    RequestPool,
    alternate,
    analyze,
    bench_api_client,
    bench_database,
    bench_org,
    bench_promotion,
    endpoint_report,
    gunicorn,
    gunicorn_description,
    load_settings,
    paired_ratio,
    reference_counter,
    reference_pool,
    reference_problems,
    run_main,
    verdict,
    wrk_command,
    wrk_threads,
)

TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
CLIENTS, SECONDS, WARMUP_SECONDS, WORKERS, THREADS = load_settings(seconds=10, warmup_seconds=3)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))  # alternating slices of SECONDS / ROUNDS per endpoint
POOL = int(os.environ.get("BENCH_POOL", "30000"))  # earned instances prepared (2 per customer)
STACK = os.environ.get("BENCH_STACK", "1") != "0"  # the app-stack endpoint too
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
    reference_counter_id: int
    redeem_requests: list[tuple[str, str, str]]
    bare_request: tuple[str, str, str]


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
    # The app-stack endpoint's counter: one row every request updates, as every redemption updates
    # the Promotion counter; its limit is out of reach.
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
        )
        for n, instance in enumerate(instances)
    ]
    return Fixtures(
        org_id=org.pk,
        auth=auth,
        promotion_id=wallet.pk,
        bare_counter_id=bare_counter.pk,
        reference_counter_id=reference_counter(org),
        redeem_requests=[("POST", REDEEM_PATH, body) for body in bodies],
        bare_request=("POST", BARE_PATH, json.dumps({"counterId": bare_counter.pk})),
    )


# --- The check ----------------------------------------------------------------------------------------


def over_redemption_problems(fixtures: Fixtures, redeem: Endpoint, stack: Endpoint | None) -> list[str]:
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
    # wrk stops with requests in flight: the server may record them, unanswered.
    if not redeem.ok <= recorded <= redeem.ok + redeem.unanswered:
        problems.append(
            f"{recorded} redemptions recorded for {redeem.ok} answers 200 and {redeem.unanswered} unanswered"
        )
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
    if stack is not None:
        used = RedemptionCounter.objects.get(pk=fixtures.bare_counter_id).used
        events = AuditEvent.objects.filter(action="bench.bare").count()
        if used != events or not stack.ok <= used <= stack.ok + stack.unanswered:
            problems.append(
                f"app stack: counter {used}, {events} events, {stack.ok} answers 200, {stack.unanswered} unanswered"
            )
    return problems


# --- Main ----------------------------------------------------------------------------------------------


def main() -> int:
    wrk_command()  # before the fixtures: stops here when wrk is missing
    threads = wrk_threads(CLIENTS)
    with bench_database("promotions_bench_redeem", marker=MARKER) as bench_url:
        from django.db import connection

        fixtures = make_fixtures()
        analyze()
        connection.close()
        with (
            tempfile.TemporaryDirectory() as directory,
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, settings=REFERENCE_SETTINGS, ready_path=REFERENCE_PATH
            ) as (reference_port, reference_pid),
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, settings="bench._app.settings", ready_path=BARE_PATH
            ) as (app_port, app_pid),
        ):  # fmt: skip
            pool = reference_pool(Path(directory), fixtures.reference_counter_id, threads=threads)
            reference = Endpoint(
                "reference", reference_port, reference_pid, pool, pool_setting="BENCH_REFERENCE_POOL"
            )
            redeem = Endpoint(
                "redeem", app_port, app_pid,
                RequestPool(Path(directory), "redeem", fixtures.redeem_requests, threads=threads, once=True),
                auth=fixtures.auth,
            )  # fmt: skip
            stack = None
            if STACK:
                pool = RequestPool(
                    Path(directory), "stack", [fixtures.bare_request] * threads, threads=threads, once=False
                )
                stack = Endpoint("app stack", app_port, app_pid, pool, auth=fixtures.auth)
            meter = CpuMeter(app_pid, bench_url)
            try:
                # The warm-up: each worker checks the client's secret once (then cached per process, as
                # in production), opens its database connection and warms its code paths.
                alternate(
                    [reference, *([stack] if stack else []), redeem],
                    clients=CLIENTS, seconds=SECONDS, warmup_seconds=WARMUP_SECONDS, rounds=ROUNDS, meter=meter,
                )  # fmt: skip
            finally:
                meter.close()
        problems = over_redemption_problems(fixtures, redeem, stack)
        problems += reference_problems(reference, fixtures.reference_counter_id)
        connection.close()

    endpoints = [reference, *([stack] if stack else []), redeem]
    ratio = paired_ratio(redeem, reference)
    errors = sum(e.non_2xx + e.socket_errors for e in endpoints)
    verdicts = {
        "ratio": ratio >= TARGET_RATIO,
        "p99": redeem.p99_ms < TARGET_P99_MS,
        "errors": errors == 0,
        "over-redemption": not problems,
    }
    print(
        f"redeem against a minimal UPDATE + INSERT outside the app's stack: {gunicorn_description(WORKERS, THREADS)}"
        f" per server, wrk -t{threads} -c{CLIENTS}, {SECONDS:g} s per endpoint in {ROUNDS} alternating slices"
        f" after {WARMUP_SECONDS:g} s warm-up (PostgreSQL, {os.cpu_count()} cores shared by the servers, the"
        " database and wrk)"
    )
    for endpoint in endpoints:
        endpoint_report(endpoint)
    if stack:
        print(
            f"  ratio app stack/reference: {paired_ratio(stack, reference):.3f} (what the app's stack alone leaves of the reference's rate)"
        )
    print(f"  ratio redeem/reference: {ratio:.3f}  {verdict(verdicts['ratio'])} (target >= {TARGET_RATIO})")
    print(
        f"  redeem p99: {redeem.p99_ms:.1f} ms  {verdict(verdicts['p99'])} (target < {TARGET_P99_MS:g} ms;"
        " the median of the slices')"
    )
    print(
        f"  errors (non-2xx or socket, warm-up included): {errors}  {verdict(verdicts['errors'])} (target 0)"
    )
    if problems:
        print(f"  over-redemption check: FAIL: {'; '.join(problems)}")
    else:
        print(
            f"  over-redemption check: PASS ({redeem.ok:,} answers 200, {redeem.unanswered} unanswered when wrk"
            " stopped; one redemption recorded per answer 200; no counter over its limit; no instance redeemed"
            " twice; counters agree with the redemptions; the reference's and app stack's writes likewise)"
        )
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    run_main(main)
