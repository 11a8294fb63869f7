"""The wallet API under gunicorn, loaded by wrk, against the minimal write outside the app's stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/wallet.py

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_wallet`), created and migrated at the start and dropped at the end (only one
this script created: it carries a marker comment). wrk drives the load (BENCH_WRK, default
/usr/bin/wrk: `apt-get install -y wrk`).

Fixtures: an org with three wallet promotions (two CUSTOMER, one EARNING; each with a Customer
REDEMPTION limit, so the wallet shows what is left of it), BENCH_CUSTOMERS customers (default 2,000)
each holding BENCH_INSTANCES instances (default 4, issued and earned, over the three promotions), and
a read-only API client.

Two gunicorn servers with the same settings (BENCH_WORKERS sync workers, default one per core, or
gthread workers with BENCH_THREADS > 1; DEBUG off, persistent database connections):

    reference   POST /reference/write (bench/_app/reference_settings.py): no middleware, no
                authentication, one DRF view doing one conditional UPDATE of a hot counter row and
                one INSERT ... ON CONFLICT DO NOTHING keyed by the request, in one transaction
    wallet      GET /api_gateway/v1/promotions/customer/{customerId}, the app with its production
                settings, Basic auth of the read-only client, the customers in a shuffled order

wrk (`-t` one thread per core, `-c` BENCH_CLIENTS connections, default 8) drives one endpoint at a
time: BENCH_WARMUP_SECONDS (default 3) each, then BENCH_ROUNDS (default 5) rounds of BENCH_SECONDS /
BENCH_ROUNDS (default 10 s in all) per endpoint in turn.

Prints, per endpoint, requests/s (the median of the slices), p50 and p99 (the medians of the slices';
the worst slice's p99 too), non-2xx answers and socket errors, and CPU per request (gunicorn,
PostgreSQL, wrk); then the ratio wallet/reference (the median of the rounds' ratios; target >= 0.5),
the wallet p99 (target < 50 ms) and the errors (target 0), and checks the reference's writes. Exits 1
when a target is missed, 2 when the bench cannot run.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
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
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "2000"))
INSTANCES = int(os.environ.get("BENCH_INSTANCES", "4"))  # per customer
MARKER = "scratch database of bench/wallet.py"
WALLET_PATH = "/api_gateway/v1/promotions/customer/{}"


def make_fixtures() -> tuple[str, list[int], int]:
    """(the read-only client's Authorization header, the customers' ids, the reference's counter id)."""
    from django.utils import timezone

    from bench._common import basic_auth
    from promotions.models import PromotionRestriction, PromotionType
    from promotions.services import api_client_create
    from wallets.models import Customer, EarnedPromotion

    now = timezone.now()
    org = bench_org()
    client, secret = api_client_create(org=org, username="bench.wallet", access="READ")
    Kind, Source = EarnedPromotion.Kind, EarnedPromotion.EarnedFromType
    promotions = [
        (bench_promotion(org, "Bench wallet A", PromotionType.CUSTOMER, max_issuance_per_customer=-1), Kind.ISSUED, Source.BULK_ISSUE),
        (bench_promotion(org, "Bench wallet B", PromotionType.CUSTOMER, max_issuance_per_customer=-1), Kind.ISSUED, Source.BULK_ISSUE),
        (bench_promotion(org, "Bench wallet C", PromotionType.EARNING, max_issuance_per_customer=-1), Kind.EARNED, Source.ACTIVITY),
    ]  # fmt: skip
    PromotionRestriction.objects.bulk_create(
        PromotionRestriction(
            promotion=promotion,
            level=PromotionRestriction.Level.CUSTOMER,
            kpi=PromotionRestriction.Kpi.REDEMPTION,
            limit=INSTANCES,
        )
        for promotion, _, _ in promotions
    )
    customers = Customer.objects.bulk_create(
        [Customer(org=org, mobile=f"9{n:09d}") for n in range(CUSTOMERS)], batch_size=5000
    )
    EarnedPromotion.objects.bulk_create(
        [
            EarnedPromotion(
                org=org,
                customer=customer,
                promotion=promotion,
                kind=kind,
                earned_from_type=source,
                earned_from_id=f"bench-{n}",
                seq=n + 1,
                event_time=now,
                valid_till=promotion.end_date,
            )
            for customer in customers
            for n, (promotion, kind, source) in (
                (n, promotions[n % len(promotions)]) for n in range(INSTANCES)
            )
        ],
        batch_size=5000,
    )
    ids = [customer.pk for customer in customers]
    random.Random(1).shuffle(ids)
    return basic_auth(client.username, secret), ids, reference_counter(org)


def main() -> int:
    wrk_command()  # before the fixtures: stops here when wrk is missing
    threads = wrk_threads(CLIENTS)
    with bench_database("promotions_bench_wallet", marker=MARKER) as bench_url:
        from django.db import connection

        auth, customers, counter_id = make_fixtures()
        analyze()
        connection.close()
        requests = [("GET", WALLET_PATH.format(customer), "") for customer in customers]
        with (
            tempfile.TemporaryDirectory() as directory,
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, settings=REFERENCE_SETTINGS, ready_path=REFERENCE_PATH
            ) as (reference_port, reference_pid),
            gunicorn(
                bench_url, workers=WORKERS, threads=THREADS, ready_path=WALLET_PATH.format(customers[0])
            ) as (app_port, app_pid),
        ):  # fmt: skip
            work = Path(directory)
            reference = Endpoint(
                "reference",
                reference_port,
                reference_pid,
                reference_pool(work, counter_id, threads=threads),
                pool_setting="BENCH_REFERENCE_POOL",
            )
            wallet = Endpoint(
                "wallet", app_port, app_pid, RequestPool(work, "wallet", requests, threads=threads, once=False),
                auth=auth,
            )  # fmt: skip
            meter = CpuMeter(app_pid, bench_url)
            try:
                alternate(
                    [reference, wallet],
                    clients=CLIENTS, seconds=SECONDS, warmup_seconds=WARMUP_SECONDS, rounds=ROUNDS, meter=meter,
                )  # fmt: skip
            finally:
                meter.close()
        problems = reference_problems(reference, counter_id)
        connection.close()

    ratio = paired_ratio(wallet, reference)
    errors = reference.non_2xx + reference.socket_errors + wallet.non_2xx + wallet.socket_errors
    verdicts = {
        "ratio": ratio >= TARGET_RATIO,
        "p99": wallet.p99_ms < TARGET_P99_MS,
        "errors": errors == 0,
        "reference": not problems,
    }
    print(
        f"wallet ({CUSTOMERS:,} customers holding {INSTANCES} instances each) against a minimal UPDATE + INSERT"
        f" outside the app's stack: {gunicorn_description(WORKERS, THREADS)} per server, wrk -t{threads}"
        f" -c{CLIENTS}, {SECONDS:g} s per endpoint in {ROUNDS} alternating slices after {WARMUP_SECONDS:g} s"
        f" warm-up ({os.cpu_count()} cores shared by the servers, PostgreSQL and wrk)"
    )
    endpoint_report(reference)
    endpoint_report(wallet)
    print(f"  ratio wallet/reference: {ratio:.3f}  {verdict(verdicts['ratio'])} (target >= {TARGET_RATIO})")
    print(
        f"  wallet p99: {wallet.p99_ms:.1f} ms  {verdict(verdicts['p99'])} (target < {TARGET_P99_MS:g} ms;"
        " the median of the slices')"
    )
    print(
        f"  errors (non-2xx or socket, warm-up included): {errors}  {verdict(verdicts['errors'])} (target 0)"
    )
    print(f"  reference writes: {'; '.join(problems) or 'one row and one counter unit per answer 200'}"
          f"  {verdict(verdicts['reference'])}")  # fmt: skip
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    run_main(main)
