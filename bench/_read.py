"""A read endpoint of the app against the reference write, wrk-driven: the shared main of the read benches
(`bench/wallet.py`, `bench/code_lookup.py`). Shared code, not a benchmark."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench._common import (
    REFERENCE_PATH,
    REFERENCE_SETTINGS,
    CpuMeter,
    Endpoint,
    RequestPool,
    alternate,
    analyze,
    bench_database,
    endpoint_report,
    gunicorn,
    gunicorn_description,
    load_settings,
    paired_ratio,
    reference_pool,
    reference_problems,
    verdict,
    wrk_command,
    wrk_threads,
)

TARGET_P99_MS = 50.0


def read_bench(
    *,
    name: str,
    database: str,
    marker: str,
    make_fixtures: Callable[[], tuple[str, list, int]],
    path: str,
    description: str,
    target_ratio: float | None,
) -> int:
    """Run the read endpoint `path` (formatted with each item `make_fixtures` returns, asked for in that
    order, again and again) and the reference in alternating slices; print the figures and verdicts.

    `make_fixtures` runs in the scratch database and returns (the Authorization header, the items, the
    reference's counter id). `target_ratio` None prints the ratio for comparison only. Returns the exit
    status: 1 when a target is missed."""
    clients, seconds, warmup_seconds, workers, threads_per_worker = load_settings(
        seconds=10, warmup_seconds=3
    )
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    wrk_command()  # before the fixtures: stops here when wrk is missing
    threads = wrk_threads(clients)
    with bench_database(database, marker=marker) as bench_url:
        from django.db import connection

        auth, items, counter_id = make_fixtures()
        analyze()
        connection.close()
        requests = [("GET", path.format(item), "") for item in items]
        with (
            tempfile.TemporaryDirectory() as directory,
            gunicorn(
                bench_url, workers=workers, threads=threads_per_worker, settings=REFERENCE_SETTINGS,
                ready_path=REFERENCE_PATH,
            ) as (reference_port, reference_pid),
            gunicorn(
                bench_url, workers=workers, threads=threads_per_worker, ready_path=path.format(items[0])
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
            endpoint = Endpoint(
                name,
                app_port,
                app_pid,
                RequestPool(work, name, requests, threads=threads, once=False),
                auth=auth,
            )
            meter = CpuMeter(app_pid, bench_url)
            try:
                alternate(
                    [reference, endpoint],
                    clients=clients, seconds=seconds, warmup_seconds=warmup_seconds, rounds=rounds, meter=meter,
                )  # fmt: skip
            finally:
                meter.close()
        problems = reference_problems(reference, counter_id)
        connection.close()

    ratio = paired_ratio(endpoint, reference)
    errors = reference.non_2xx + reference.socket_errors + endpoint.non_2xx + endpoint.socket_errors
    verdicts = {
        "p99": endpoint.p99_ms < TARGET_P99_MS,
        "errors": errors == 0,
        "reference": not problems,
    }
    if target_ratio is not None:
        verdicts["ratio"] = ratio >= target_ratio
    print(
        f"{description} against a minimal UPDATE + INSERT outside the app's stack:"
        f" {gunicorn_description(workers, threads_per_worker)} per server, wrk -t{threads} -c{clients},"
        f" {seconds:g} s per endpoint in {rounds} alternating slices after {warmup_seconds:g} s warm-up"
        f" ({os.cpu_count()} cores shared by the servers, PostgreSQL and wrk)"
    )
    endpoint_report(reference)
    endpoint_report(endpoint)
    target = "printed for comparison" if target_ratio is None else (
        f"{verdict(verdicts['ratio'])} (target >= {target_ratio})"
    )  # fmt: skip
    print(f"  ratio {name}/reference: {ratio:.3f}  {target}")
    print(
        f"  {name} p99: {endpoint.p99_ms:.1f} ms  {verdict(verdicts['p99'])} (target < {TARGET_P99_MS:g} ms;"
        " the median of the slices')"
    )
    print(
        f"  errors (non-2xx or socket, warm-up included): {errors}  {verdict(verdicts['errors'])} (target 0)"
    )
    print(f"  reference writes: {'; '.join(problems) or 'one row and one counter unit per answer 200'}"
          f"  {verdict(verdicts['reference'])}")  # fmt: skip
    return 0 if all(verdicts.values()) else 1
