"""`manage.py issue_promotion` of 1,000,000 customers from a file, against COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/issue_from_file.py

DATABASE_URL names the PostgreSQL server (its database is only used to create and drop the bench
database). The bench runs in its own database, BENCH_DATABASE_NAME (default
`promotions_bench_issue_file`), which it creates and migrates at the start and drops at the end. It only
ever drops a database it created itself (marked with a comment), never another of that name.

Setup (untimed): BENCH_CUSTOMERS (default 1,000,000) customers are COPYed into the bench database and
their ids written to a file, one per line. Then:

- reference: psycopg 3 `COPY ... FROM STDIN` of the rows the command writes (same columns, same
  shape of values, one fresh promotion) into wallets_earnedpromotion, from COPY text prepared before
  the clock starts (a file), plus the commit: the bare database write. Run twice (before and after
  the command, on an emptied table each time, as the command sees it) and the faster run is kept.
  Each time the same file is also COPYed into an empty lean table of the same columns with no index,
  key or check, and the two rates are printed side by side.
- the command: `python manage.py issue_promotion` as a child process (Python and Django start-up
  included) on a fresh CUSTOMER promotion (maxIssuancePerCustomer 1, so the limit is checked), with
  its wall time and its own peak RSS (getrusage of a small launcher's children).
- the resumed re-run: the same command again, same contextId: every customer is already held.

Targets: the command's rate at least 0.5 of the COPY rate, and its peak RSS under 300 MB.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    EARNED_PROMOTION_COLUMNS,
    ROOT,
    bench_database,
    bench_org,
    bench_promotion,
    copy_seconds,
    django_env,
    earned_promotions_copy,
    earned_promotions_copy_text,
    fail,
    lean_table_create,
    run_main,
)

TARGET_RATIO = 0.5
TARGET_RSS_MB = 300
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1000000"))
FIRST_CUSTOMER_ID = 564332013
MARKER = "scratch database of bench/issue_from_file.py"
SCRIPT = "bench/issue_from_file.py"

# --- fixtures ---------------------------------------------------------------------------------------


def make_customers(bench_url: str, org_id: int, ids_path: Path) -> None:
    """COPY the customers in and write their ids to `ids_path`, one per line."""
    import psycopg

    now = dt.datetime.now(dt.UTC)
    columns = "id, org_id, mobile, email, external_id, first_name, last_name, source, created_at"
    with psycopg.connect(bench_url) as conn, conn.cursor() as cursor:
        with cursor.copy(f"COPY wallets_customer ({columns}) FROM STDIN") as copy:
            for n in range(CUSTOMERS):
                copy.write_row(
                    (FIRST_CUSTOMER_ID + n, org_id, f"91{n:010d}", None, None, "Asha", "Rao", "INSTORE", now)
                )
        conn.commit()
        conn.autocommit = True
        cursor.execute("VACUUM ANALYZE wallets_customer")
    with ids_path.open("w") as handle:
        for n in range(CUSTOMERS):
            handle.write(f"{FIRST_CUSTOMER_ID + n}\n")


def new_promotion(org, label: str):
    """A CUSTOMER promotion with maxIssuancePerCustomer 1, so that the limit is checked."""
    from promotions.models import PromotionType

    return bench_promotion(org, label, PromotionType.CUSTOMER, max_issuance_per_customer=1)


def empty_table(bench_url: str, table: str = "wallets_earnedpromotion") -> None:
    """Every writer starts from an empty table (nothing else references its rows in the bench database)."""
    import psycopg

    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {table} CASCADE")
        conn.execute(f"VACUUM ANALYZE {table}")
        conn.execute("CHECKPOINT")


# --- the two writers ------------------------------------------------------------------------------


def copy_once(bench_url: str, org, promotion, work: Path, lean: str) -> tuple[float, float]:
    """Seconds to COPY the rows the command would write (fresh promotion) and commit, into the app's
    table, then into the emptied lean table, from one file written before either clock starts."""
    data = work / "copy.txt"
    customer_ids = range(FIRST_CUSTOMER_ID, FIRST_CUSTOMER_ID + CUSTOMERS)
    with data.open("w") as handle:
        for start in range(0, CUSTOMERS, 100_000):
            handle.write(
                earned_promotions_copy_text(
                    org_id=org.pk,
                    promotion=promotion,
                    customer_ids=customer_ids[start : start + 100_000],
                    earned_from_id="copy",
                )
            )
    into_table = earned_promotions_copy(bench_url, promotion, data, CUSTOMERS)
    empty_table(bench_url, lean)
    into_lean = copy_seconds(bench_url, lean, EARNED_PROMOTION_COLUMNS, data)
    data.unlink()
    return into_table, into_lean


# The command runs under this small launcher, which reports its child's peak RSS. Measuring it
# from the bench process itself would not do: a child's max RSS starts from that of the process
# it was forked from (Linux carries the high-water mark across exec), and the bench holds more.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def command_once(bench_url: str, promotion, ids_path: Path, context_id: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one `manage.py issue_promotion` child process."""
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "issue_promotion",
        promotion.pk,
        "--customers",
        str(ids_path),
        "--context-id",
        context_id,
        "--no-progress",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rss_path = Path(tmp) / "maxrss"
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(rss_path), *command],
            cwd=ROOT,
            env=django_env(bench_url),
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - started
        max_rss_kib = int(rss_path.read_text()) if rss_path.exists() else 0
    if child.returncode != 0:
        fail(f"issue_promotion exited {child.returncode}:\n{child.stdout}\n{child.stderr}")
    return elapsed, max_rss_kib / 1024, child.stdout  # ru_maxrss: KiB on Linux


def summary_count(stdout: str, label: str) -> int:
    match = re.search(rf"{re.escape(label)}:\s+([\d,]+)", stdout)
    if match is None:
        fail(f"no {label!r} in the command's summary:\n{stdout}")
    return int(match.group(1).replace(",", ""))


def main() -> int:
    with bench_database("promotions_bench_issue_file", marker=MARKER) as bench_url:
        from django.db import connection

        from wallets.models import EarnedPromotion

        org = bench_org()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            ids_path = work / "customers.txt"
            make_customers(bench_url, org.pk, ids_path)
            lean = lean_table_create(bench_url, "wallets_earnedpromotion")
            connection.close()

            copy_times, lean_times = [], []

            def reference(label: str) -> None:
                into_table, into_lean = copy_once(bench_url, org, new_promotion(org, label), work, lean)
                copy_times.append(into_table)
                lean_times.append(into_lean)

            reference("copy 1")
            empty_table(bench_url)

            promotion = new_promotion(org, "from file")
            issue_time, issue_rss, first = command_once(bench_url, promotion, ids_path, "bench")
            written = EarnedPromotion.objects.filter(promotion=promotion).count()
            if written != CUSTOMERS or summary_count(first, "issued (new)") != CUSTOMERS:
                fail(f"the command wrote {written} instances, expected {CUSTOMERS}:\n{first}")
            rerun_time, rerun_rss, second = command_once(bench_url, promotion, ids_path, "bench")
            if summary_count(second, "already held") != CUSTOMERS:
                fail(f"the re-run did not find every customer already holding the promotion:\n{second}")
            if EarnedPromotion.objects.filter(promotion=promotion).count() != CUSTOMERS:
                fail("the re-run wrote instances")
            connection.close()

            empty_table(bench_url)
            reference("copy 2")

    copy_time = min(copy_times)
    issue_rate, copy_rate = CUSTOMERS / issue_time, CUSTOMERS / copy_time
    ratio = issue_rate / copy_rate
    print(f"issue_promotion of {CUSTOMERS:,} customers from a file (PostgreSQL, {os.cpu_count()} cores)")
    print(
        f"  command: {issue_rate:>9,.0f} customers/s  ({issue_time:.1f} s wall, process start-up included;"
        f" peak RSS {issue_rss:.0f} MiB)"
    )
    print(
        f"  COPY into wallets_earnedpromotion: {copy_rate:>9,.0f} rows/s  (best of {len(copy_times)}:"
        f" {', '.join(f'{t:.1f} s' for t in copy_times)})"
    )
    lean_rate = CUSTOMERS / min(lean_times)
    print(
        f"  COPY into a lean table: {lean_rate:>9,.0f} rows/s  (best of {len(lean_times)}:"
        f" {', '.join(f'{t:.1f} s' for t in lean_times)}; same columns and rows, no index, key or check)"
    )
    print(
        f"  the table's indexes, keys and checks: COPY into it at {copy_rate / lean_rate:.2f} of the lean rate"
    )
    print(
        f"  resumed re-run (all already held): {CUSTOMERS / rerun_time:,.0f} customers/s"
        f" ({rerun_time:.1f} s; peak RSS {rerun_rss:.0f} MiB)"
    )
    ratio_ok = ratio >= TARGET_RATIO
    memory_ok = max(issue_rss, rerun_rss) < TARGET_RSS_MB
    print(
        f"  ratio command/COPY into the table: {ratio:.2f}  {'PASS' if ratio_ok else 'FAIL'}"
        f" (target >= {TARGET_RATIO})"
    )
    print(f"  ratio command/COPY into the lean table: {issue_rate / lean_rate:.2f}  (no target)")
    print(
        f"  peak RSS: {max(issue_rss, rerun_rss):.0f} MiB  {'PASS' if memory_ok else 'FAIL'}"
        f" (target < {TARGET_RSS_MB} MB)"
    )
    return 0 if ratio_ok and memory_ok else 1


if __name__ == "__main__":
    run_main(main)
