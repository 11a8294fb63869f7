"""`manage.py generate_codes` of 1,000,000 promo codes, against COPY of the same number of rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/codes.py

DATABASE_URL names the PostgreSQL server (its database is only used to create and drop the bench
database). The bench runs in its own database, BENCH_DATABASE_NAME (default `promotions_bench_codes`),
which it creates and migrates at the start and drops at the end (only one it created itself).

- reference: psycopg 3 `COPY ... FROM STDIN` into promotions_promocode of BENCH_CODES (default
  1,000,000) rows shaped as the generator writes them (org, promotion, a 12-symbol code, the batch),
  from COPY text drawn and written to a file before the clock starts, plus the commit: the bare
  database write with the table's unique (org, code) index and its checks. Run twice, on an emptied
  table each time; the faster run is kept.
- the real path: `python manage.py generate_codes PROMOTION --count N --length 12` as a child process
  (Python and Django start-up included): the service draws each chunk of 50,000 codes from the
  CSPRNG, COPYs it into the staging table and moves it with INSERT ... ON CONFLICT DO NOTHING, one
  transaction per chunk with its progress. Its wall time, the batch's own time (created to finished)
  and the child's peak RSS (getrusage of a small launcher's children).
- the resumed re-run: the same command, same --request-id: nothing left to write.

Targets: the command's rate at least 0.5 of the COPY rate, and its peak RSS under 300 MB.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import (
    ROOT,
    bench_database,
    bench_org,
    bench_promotion,
    copy_seconds,
    django_env,
    fail,
    run_main,
)

TARGET_RATIO = 0.5
TARGET_RSS_MB = 300
CODES = int(os.environ.get("BENCH_CODES", "1000000"))
LENGTH = 12
MARKER = "scratch database of bench/codes.py"
COLUMNS = ("org_id", "promotion_id", "code", "batch_id")

# As in bench/issue_from_file.py: the child's peak RSS, measured by a launcher that holds nothing.
LAUNCHER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def empty_table(bench_url: str) -> None:
    import psycopg

    with psycopg.connect(bench_url, autocommit=True) as conn:
        # Redemption lines name their code (none in this scratch database): truncated with it.
        conn.execute("TRUNCATE promotions_promocode, redemptions_redemptionline")
        conn.execute("VACUUM ANALYZE promotions_promocode")
        conn.execute("CHECKPOINT")


def copy_text(path: Path, *, org_id: int, promotion_id: str, batch_id: int) -> None:
    """The reference's rows, drawn as the generator draws them, written before the clock starts."""
    from promotions.codegen.spec import spec_build

    spec = spec_build(length=LENGTH)
    with path.open("w") as handle:
        for start in range(0, CODES, 100_000):
            codes = spec.draw(min(100_000, CODES - start))
            handle.write("".join(f"{org_id}\t{promotion_id}\t{code}\t{batch_id}\n" for code in codes))


def copy_once(bench_url: str, path: Path) -> float:
    import psycopg

    elapsed = copy_seconds(bench_url, "promotions_promocode", COLUMNS, path)
    with psycopg.connect(bench_url) as conn:
        written = conn.execute("SELECT count(*) FROM promotions_promocode").fetchone()[0]
    if written != CODES:
        fail(f"COPY wrote {written} rows, expected {CODES} (a repeated code?)")
    return elapsed


def command_once(bench_url: str, promotion_id: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of one `manage.py generate_codes` child process."""
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "generate_codes",
        promotion_id,
        "--count",
        str(CODES),
        "--length",
        str(LENGTH),
        "--request-id",
        "bench",
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
        fail(f"generate_codes exited {child.returncode}:\n{child.stdout}\n{child.stderr}")
    return elapsed, max_rss_kib / 1024, child.stdout


def main() -> int:
    with bench_database("promotions_bench_codes", marker=MARKER) as bench_url:
        from django.db import connection

        from promotions.models import PromoCode, PromoCodeBatch, PromotionType

        org = bench_org()
        promotion = bench_promotion(org, "codes", PromotionType.CODE)
        reference_promotion = bench_promotion(org, "copy", PromotionType.CODE)
        reference_batch = PromoCodeBatch.objects.create(
            org=org, promotion=reference_promotion, kind="GENERATE", request_id="copy", total=CODES
        )
        connection.close()
        copy_times = []
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "codes.txt"
            copy_text(data, org_id=org.pk, promotion_id=reference_promotion.pk, batch_id=reference_batch.pk)
            for _ in range(2):
                empty_table(bench_url)
                copy_times.append(copy_once(bench_url, data))
        empty_table(bench_url)

        generate_time, generate_rss, _ = command_once(bench_url, promotion.pk)
        batch = PromoCodeBatch.objects.get(request_id="bench")
        codes = PromoCode.objects.filter(batch=batch)
        if batch.status != "DONE" or batch.done != CODES or codes.count() != CODES:
            fail(f"the command left the batch {batch.status} with {batch.done} codes, expected {CODES}")
        if codes.values("code").distinct().count() != CODES:
            fail("repeated codes")
        in_app = (batch.finished_at - batch.created_at).total_seconds()
        rerun_time, rerun_rss, _ = command_once(bench_url, promotion.pk)
        if PromoCode.objects.filter(promotion=promotion).count() != CODES:
            fail("the re-run wrote codes")
        connection.close()

    copy_time = min(copy_times)
    generate_rate, copy_rate = CODES / generate_time, CODES / copy_time
    ratio = generate_rate / copy_rate
    print(f"generate_codes of {CODES:,} codes of {LENGTH} symbols (PostgreSQL, {os.cpu_count()} cores)")
    print(
        f"  command: {generate_rate:>9,.0f} codes/s  ({generate_time:.1f} s wall, process start-up included;"
        f" the batch itself {in_app:.1f} s; peak RSS {generate_rss:.0f} MiB)"
    )
    print(
        f"  COPY into promotions_promocode: {copy_rate:>9,.0f} rows/s  (best of {len(copy_times)}:"
        f" {', '.join(f'{t:.1f} s' for t in copy_times)}; rows prepared before the clock)"
    )
    print(f"  resumed re-run (nothing left): {rerun_time:.1f} s; peak RSS {rerun_rss:.0f} MiB")
    ratio_ok = ratio >= TARGET_RATIO
    memory_ok = max(generate_rss, rerun_rss) < TARGET_RSS_MB
    print(
        f"  ratio command/COPY: {ratio:.2f}  {'PASS' if ratio_ok else 'FAIL'} (target >= {TARGET_RATIO});"
        f" the batch alone/COPY: {copy_time / in_app:.2f}"
    )
    print(
        f"  peak RSS: {max(generate_rss, rerun_rss):.0f} MiB  {'PASS' if memory_ok else 'FAIL'}"
        f" (target < {TARGET_RSS_MB} MB)"
    )
    return 0 if ratio_ok and memory_ok else 1


if __name__ == "__main__":
    run_main(main)
