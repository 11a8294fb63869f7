"""The promo-code look-up under gunicorn, loaded by wrk, against the minimal write outside the app's stack.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/code_lookup.py

DATABASE_URL names the PostgreSQL server; the bench runs in its own database, BENCH_DATABASE_NAME
(default `promotions_bench_code_lookup`), created and migrated at the start and dropped at the end
(only one this script created: it carries a marker comment). wrk drives the load (BENCH_WRK, default
/usr/bin/wrk: `apt-get install -y wrk`).

Fixtures: an org with one CODE promotion (a Code REDEMPTION limit of 1: single-use codes) holding
BENCH_CODES codes (default 200,000, written by COPY), and a read-only API client.

Two gunicorn servers with the same settings (BENCH_WORKERS sync workers, default one per core, or
gthread workers with BENCH_THREADS > 1; DEBUG off, persistent database connections):

    reference   POST /reference/write (bench/_app/reference_settings.py): no middleware, no
                authentication, one DRF view doing one conditional UPDATE of a hot counter row and
                one INSERT ... ON CONFLICT DO NOTHING keyed by the request, in one transaction
    look-up     GET /api_gateway/v1/promotions/code?codes=<code>&mode=DISCOUNT, the app with its
                production settings, Basic auth of the read-only client, existing codes in a shuffled
                order typed in lower case (a look-up is case-insensitive)

Every looked-up code exists: the guess throttle counts only unknown codes, so it never answers here.
wrk (`-t` one thread per core, `-c` BENCH_CLIENTS connections, default 8) drives one endpoint at a
time: BENCH_WARMUP_SECONDS (default 3) each, then BENCH_ROUNDS (default 5) rounds of BENCH_SECONDS /
BENCH_ROUNDS (default 10 s in all) per endpoint in turn.

Prints, per endpoint, requests/s (the median of the slices), p50 and p99 (the medians of the slices';
the worst slice's p99 too), non-2xx answers and socket errors, and CPU per request (gunicorn,
PostgreSQL, wrk); then the look-up p99 (target < 50 ms, as for the other reads), the ratio
look-up/reference (printed for comparison with the other endpoints) and the errors (target 0), and
checks the reference's writes. Exits 1 when a target is missed, 2 when the bench cannot run.
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
    copy_line,
    reference_counter,
    run_main,
)
from bench._read import read_bench

CODES = int(os.environ.get("BENCH_CODES", "200000"))
LOOKUPS = 20_000  # distinct codes in the request pool
MARKER = "scratch database of bench/code_lookup.py"
LOOKUP_PATH = "/api_gateway/v1/promotions/code?codes={}&mode=DISCOUNT"


def make_fixtures() -> tuple[str, list[str], int]:
    """(the read-only client's Authorization header, the codes to look up, the reference's counter id)."""
    import secrets

    from django.db import connection, transaction

    from bench._common import basic_auth
    from promotions.models import PromotionRestriction, PromotionType
    from promotions.services import api_client_create

    org = bench_org()
    client, secret = api_client_create(org=org, username="bench.codes", access="READ")
    promotion = bench_promotion(org, "Bench codes", PromotionType.CODE)
    PromotionRestriction.objects.create(
        promotion=promotion,
        level=PromotionRestriction.Level.CODE,
        kpi=PromotionRestriction.Kpi.REDEMPTION,
        limit=1,
    )
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    codes = list({"".join(secrets.choice(alphabet) for _ in range(10)) for _ in range(CODES)})
    payload = "".join(copy_line((org.pk, promotion.pk, code)) for code in codes)
    copy_sql = "COPY promotions_promocode (org_id, promotion_id, code) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
        copy.write(payload)
    lookups = random.Random(1).sample(codes, min(LOOKUPS, len(codes)))
    return basic_auth(client.username, secret), [code.lower() for code in lookups], reference_counter(org)


def main() -> int:
    return read_bench(
        name="look-up",
        database="promotions_bench_code_lookup",
        marker=MARKER,
        make_fixtures=make_fixtures,
        path=LOOKUP_PATH,
        description=f"code look-up ({CODES:,} codes in the promotion, {LOOKUPS:,} looked up)",
        target_ratio=None,
    )


if __name__ == "__main__":
    run_main(main)
