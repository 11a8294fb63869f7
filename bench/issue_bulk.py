"""issueBulk of 10,000 customers in one HTTP request, against COPY of the same rows into the same table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/issue_bulk.py

DATABASE_URL names the PostgreSQL server (its database is only used to create and drop the bench
database). The bench runs in its own database, BENCH_DATABASE_NAME (default `promotions_bench`),
which it creates and migrates at the start and drops at the end. It only ever drops a database it
created itself (marked with a comment), never another of that name.

Each run issues one fresh CUSTOMER promotion to BENCH_CUSTOMERS (default 10,000) customers through
the whole request path: Basic auth, JSON parsing, the service (locks, limits, insert, audit event)
and rendering, via Django's test client. The reference writes the same rows, same columns and same
shape of values, with psycopg 3 `COPY ... FROM STDIN` into the same table (for another fresh
promotion), timed the same way: the COPY text is prepared before the clock starts, so the reference
is the bare database write plus commit. The same text is also COPYed into a lean table of the same
columns with no index, key or check, and the two COPY rates are printed side by side: what the
table's guarantees cost any writer. Runs alternate so all see the same table size; the medians are
compared. Target: issueBulk at least 0.5 of the rate of COPY into the app's table. Exits 1 when the
target is missed.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    EARNED_PROMOTION_COLUMNS,
    bench_api_client,
    bench_database,
    bench_org,
    bench_promotion,
    copy_comparison,
    copy_seconds,
    earned_promotions_copy,
    earned_promotions_copy_text,
    fail,
    lean_table_create,
    run_main,
)

TARGET_RATIO = 0.5
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
MARKER = "scratch database of bench/issue_bulk.py"


def make_fixtures():
    from wallets.models import Customer

    org = bench_org()
    auth = bench_api_client(org, "bench.till")
    customers = Customer.objects.bulk_create(
        [Customer(org=org, mobile=f"9{n:09d}") for n in range(CUSTOMERS)], batch_size=5000
    )
    return org, auth, [c.pk for c in customers]


def new_promotion(org, label: str):
    from promotions.models import PromotionType

    return bench_promotion(org, label, PromotionType.CUSTOMER, max_issuance_per_customer=-1)


def issue_once(http, auth: str, promotion, body: bytes, context_id: str) -> float:
    """Seconds for one issueBulk request; checks it answered every customer."""
    path = f"/api_gateway/v1/promotions/{promotion.pk}/issueBulk?contextId={context_id}"
    started = time.perf_counter()
    response = http.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=auth)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        fail(f"issueBulk answered {response.status_code}: {response.content[:300]!r}")
    answered = len(json.loads(response.content)["data"])
    if answered != CUSTOMERS:
        fail(f"issueBulk answered {answered} customers, expected {CUSTOMERS}")
    return elapsed


def copy_once(bench_url: str, org, promotion, customer_ids: list[int], lean: str) -> tuple[float, float]:
    """Seconds to COPY the rows issueBulk would write (fresh promotion) and commit: into the app's
    table, then the same text into the lean table. The text is prepared before either clock starts."""
    text = earned_promotions_copy_text(
        org_id=org.pk, promotion=promotion, customer_ids=customer_ids, earned_from_id="copy"
    ).encode()
    into_table = earned_promotions_copy(bench_url, promotion, text, len(customer_ids))
    return into_table, copy_seconds(bench_url, lean, EARNED_PROMOTION_COLUMNS, text)


def memory_of_one_request(http, auth: str, org, body: bytes) -> tuple[float, float]:
    """(peak of the Python allocations one request makes, in MiB; the process's max RSS, in MiB).

    tracemalloc slows Python down, so it runs on a request of its own, after the timed ones. The
    max RSS is the whole process's high-water mark (Django, the fixtures, every run), for scale.
    """
    promotion = new_promotion(org, "memory")
    tracemalloc.start()
    issue_once(http, auth, promotion, body, "memory")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return peak / 2**20, max_rss_kib / 1024


def main() -> int:
    with bench_database("promotions_bench", marker=MARKER) as bench_url:
        from django.test import Client

        org, auth, customer_ids = make_fixtures()
        lean = lean_table_create(bench_url, "wallets_earnedpromotion")
        http = Client()
        body = json.dumps(customer_ids).encode()
        # Warm-up: the first check of a secret runs the slow password hash, later ones hit the cache
        # (as in production, once per client per process); it also warms the code paths.
        issue_once(http, auth, new_promotion(org, "warm-up"), body, "warm-up")
        copy_once(bench_url, org, new_promotion(org, "warm-up copy"), customer_ids, lean)

        issue_times, copy_times, lean_times = [], [], []
        for run in range(RUNS):
            issue_times.append(issue_once(http, auth, new_promotion(org, f"issue {run}"), body, f"run-{run}"))
            into_table, into_lean = copy_once(
                bench_url, org, new_promotion(org, f"copy {run}"), customer_ids, lean
            )
            copy_times.append(into_table)
            lean_times.append(into_lean)
        replay_promotion = new_promotion(org, "replay")
        issue_once(http, auth, replay_promotion, body, "replay")
        replay_time = min(issue_once(http, auth, replay_promotion, body, "replay") for _ in range(3))
        peak_mib, max_rss_mib = memory_of_one_request(http, auth, org, body)

    issue_rate = CUSTOMERS / statistics.median(issue_times)
    print(
        f"issueBulk of {CUSTOMERS:,} customers in one request, {RUNS} runs (PostgreSQL, {os.cpu_count()} cores)"
    )
    print(
        f"  issueBulk: {issue_rate:>9,.0f} customers/s  (median {statistics.median(issue_times) * 1000:.0f} ms,"
        f" best {min(issue_times) * 1000:.0f} ms)"
    )
    copy_rate = copy_comparison("wallets_earnedpromotion", copy_times, lean_times, CUSTOMERS)
    print(
        f"  replay (same contextId, creates nothing): {CUSTOMERS / replay_time:,.0f} customers/s (best of 3)"
    )
    print(
        f"  memory: {peak_mib:.1f} MiB allocated at the peak of one request (tracemalloc);"
        f" process max RSS {max_rss_mib:.0f} MiB"
    )
    ratio = issue_rate / copy_rate
    lean_ratio = issue_rate / (CUSTOMERS / statistics.median(lean_times))
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"  ratio issueBulk/COPY into the table: {ratio:.2f}  {verdict} (target >= {TARGET_RATIO})")
    print(f"  ratio issueBulk/COPY into the lean table: {lean_ratio:.2f}  (no target)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    run_main(main)
