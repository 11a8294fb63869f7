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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    bench_org,
    bench_promotion,
    reference_counter,
    run_main,
)
from bench._read import read_bench

TARGET_RATIO = 0.5
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
    return read_bench(
        name="wallet",
        database="promotions_bench_wallet",
        marker=MARKER,
        make_fixtures=make_fixtures,
        path=WALLET_PATH,
        description=f"wallet ({CUSTOMERS:,} customers holding {INSTANCES} instances each)",
        target_ratio=TARGET_RATIO,
    )


if __name__ == "__main__":
    run_main(main)
