"""import_customers of 1,000,000 new customers, against a plain COPY of the same rows into the same table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/import_customers.py

DATABASE_URL names the PostgreSQL server (its database is only used to create and drop the bench
database). The bench runs in its own database, BENCH_DATABASE_NAME (default
`promotions_bench_import`), which it creates and migrates at the start and drops at the end; it only
ever drops a database it created itself (marked with a comment).

It writes a CSV of BENCH_CUSTOMERS (default 1,000,000) customers to a temporary file, streamed (every
row has a mobile, half of them with a leading +; most have an email, in mixed case; many an
externalId; names and a source). The reference is a plain psycopg 3 `COPY ... FROM STDIN` of the
file's rows, as they are, into wallets_customer for a fresh org (same columns: org, the three
identifiers, names, source, created_at), in one transaction: the COPY text is written to a file from
the CSV before the clock starts, so the reference times the database write and the commit, not
Python parsing the CSV. The same text is also COPYed into a lean table of the same columns with no
index, key or check, and the two rates are printed side by side. Then `manage.py import_customers`
imports the file for another fresh org, in a child process whose peak memory (max RSS) is read with
os.wait4; its rate is the rows read over the command's own elapsed time (file check, all chunks,
commits; not the interpreter's start-up). They alternate BENCH_RUNS times (default 3) and the
medians are compared. Last, the file is imported again into the last org (every row unchanged).
Targets: import at least 0.5 of the rate of COPY into wallets_customer, peak memory under 300 MB.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import csv
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    BENCH_ORG_ID,
    ROOT,
    bench_database,
    bench_org,
    copy_comparison,
    copy_line,
    copy_seconds,
    django_env,
    fail,
    lean_table_create,
    run_main,
)

TARGET_RATIO = 0.5
TARGET_RSS_MB = 300
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "1000000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CHUNK_SIZE = os.environ.get("BENCH_CHUNK_SIZE", "")
MARKER = "scratch database of bench/import_customers.py"
COPY_COLUMNS = ("org_id", "mobile", "email", "external_id", "first_name", "last_name", "source", "created_at")
FIRST_NAMES = ["Asha", "Ravi", "Meera", "Arjun", "Priya", "Kiran", "Neha", "Vikram", "Anita", "Rahul"]
LAST_NAMES = ["Sharma", "Iyer", "Patel", "Khan", "Reddy", "Das", "Nair", "Gupta", "Mehta", "Rao"]
SOURCES = ["INSTORE", "WEBSITE", "MOBILE_APP", "ECOMMERCE"]


def write_csv(path: Path) -> None:
    """BENCH_CUSTOMERS new customers, streamed to `path`."""
    pick = random.Random(6).choice
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customerId", "mobile", "email", "externalId", "firstName", "lastName", "source"])
        for n in range(CUSTOMERS):
            first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
            writer.writerow(
                [
                    "",
                    f"{'+' if n % 2 else ''}91{9000000000 + n}",
                    f"{first}.{last}{n}@Example.com" if n % 5 else "",
                    f"EXT-{n:08d}" if n % 3 else "",
                    first,
                    last,
                    pick(SOURCES),
                ]
            )


def copy_text_write(org_id: int, path: Path, out: Path) -> None:
    """The CSV's rows, as they are, for `org_id` as COPY text (COPY_COLUMNS) in `out`."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    with path.open(encoding="utf-8", newline="") as handle, out.open("w", encoding="utf-8") as text:
        reader = csv.reader(handle)
        next(reader)
        for _, mobile, email, external_id, first, last, source in reader:
            text.write(
                copy_line((org_id, mobile, email or None, external_id or None, first, last, source, now))
            )


def copy_reference(bench_url: str, org_id: int, path: Path, lean: str) -> tuple[float, float]:
    """Seconds to COPY the file's rows, as they are, into wallets_customer for `org_id` and commit,
    and the same into the lean table; the COPY text is written before either clock starts."""
    import psycopg

    text = path.with_suffix(".copy")
    copy_text_write(org_id, path, text)
    into_table = copy_seconds(bench_url, "wallets_customer", COPY_COLUMNS, text)
    into_lean = copy_seconds(bench_url, lean, COPY_COLUMNS, text)
    text.unlink()
    with psycopg.connect(bench_url) as conn:
        written = conn.execute(
            "SELECT count(*) FROM wallets_customer WHERE org_id = %s", [org_id]
        ).fetchone()[0]
    if written != CUSTOMERS:
        fail(f"COPY wrote {written} rows, expected {CUSTOMERS}")
    return into_table, into_lean


def run_import(bench_url: str, org_id: int, path: Path) -> dict:
    """Run the command in a child process: its summary figures, wall time and max RSS (MiB)."""
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "import_customers",
        str(path),
        "--org",
        str(org_id),
    ]
    command += ["--no-progress", *(["--chunk-size", CHUNK_SIZE] if CHUNK_SIZE else [])]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=django_env(bench_url), stdout=out, stderr=err)
        # os.wait4 rather than Popen.wait: it also answers the child's own resource usage (max RSS).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        fail(f"import_customers failed:\n{stderr[-2000:]}")
    figures = {key: value for key, value in re.findall(r"^([a-z/ ]+): ([0-9.]+)", stdout, re.M)}
    return {
        "read": int(figures["rows read"]),
        "inserted": int(figures["inserted"]),
        "updated": int(figures["updated"]),
        "unchanged": int(figures["unchanged"]),
        "rejected": int(figures["rejected"]),
        "elapsed": float(figures["elapsed"]),
        "wall": wall,
        "max_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def main() -> int:
    with (
        bench_database("promotions_bench_import", marker=MARKER) as bench_url,
        tempfile.TemporaryDirectory(prefix="bench-import-customers-") as workdir,
    ):
        from django.db import connection

        orgs = [bench_org(BENCH_ORG_ID + n, f"bench {n}").pk for n in range(2 * RUNS)]
        lean = lean_table_create(bench_url, "wallets_customer")
        connection.close()
        path = Path(workdir) / "customers.csv"
        started = time.perf_counter()
        write_csv(path)
        generated = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6

        # Alternate, so that both see the table at the same sizes (each run adds a fresh org's rows).
        copy_times, lean_times, imports = [], [], []
        for run in range(RUNS):
            into_table, into_lean = copy_reference(bench_url, orgs[2 * run], path, lean)
            copy_times.append(into_table)
            lean_times.append(into_lean)
            imports.append(run_import(bench_url, orgs[2 * run + 1], path))
            if imports[-1]["inserted"] != CUSTOMERS or imports[-1]["read"] != CUSTOMERS:
                fail(f"the import read and inserted {imports[-1]}, expected {CUSTOMERS} rows")
        again = run_import(bench_url, orgs[-1], path)
        if again["unchanged"] != CUSTOMERS:
            fail(f"the re-run left {again['unchanged']} rows unchanged, expected all {CUSTOMERS}: {again}")

    copy_time = statistics.median(copy_times)
    import_time = statistics.median(run["elapsed"] for run in imports)
    ratio = copy_time / import_time
    peak = max(run["max_rss_mib"] for run in [*imports, again])
    print(
        f"import_customers of {CUSTOMERS:,} new customers, {RUNS} runs (PostgreSQL, {os.cpu_count()} cores,"
        f" chunk size {CHUNK_SIZE or 'default'}); CSV of {size_mb:.0f} MB generated in {generated:.1f} s"
    )
    copy_comparison("wallets_customer", copy_times, lean_times, CUSTOMERS)
    print(
        f"  import:  {CUSTOMERS / import_time:>9,.0f} rows/s  (median {import_time:.1f} s in the command,"
        f" best {min(run['elapsed'] for run in imports):.1f} s; with start-up"
        f" {statistics.median(run['wall'] for run in imports):.1f} s)"
    )
    print(
        f"  re-run of the same file (all unchanged): {CUSTOMERS / again['elapsed']:,.0f} rows/s"
        f" ({again['elapsed']:.1f} s)"
    )
    print(
        "  peak memory (max RSS of the command): "
        + ", ".join(f"{run['max_rss_mib']:.0f}" for run in imports)
        + f" MiB; re-run {again['max_rss_mib']:.0f} MiB"
    )
    ratio_ok, memory_ok = ratio >= TARGET_RATIO, peak < TARGET_RSS_MB
    print(
        f"  ratio import/COPY into the table: {ratio:.2f}  {'PASS' if ratio_ok else 'FAIL'}"
        f" (target >= {TARGET_RATIO})"
    )
    print(
        f"  ratio import/COPY into the lean table: {statistics.median(lean_times) / import_time:.2f}  (no target)"
    )
    print(f"  peak memory: {peak:.0f} MiB  {'PASS' if memory_ok else 'FAIL'} (target < {TARGET_RSS_MB} MB)")
    return 0 if ratio_ok and memory_ok else 1


if __name__ == "__main__":
    run_main(main)
