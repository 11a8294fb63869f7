"""Counts the cases the fuzzer sent, per operation, phase and mode, and prints them after the run."""

from __future__ import annotations

import collections

CASES: collections.Counter = collections.Counter()
STATUSES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def record_case(case, status_code: int) -> None:
    meta = case.meta
    phase = meta.phase.name.value if meta else "explicit"
    mode = meta.generation.mode.value if meta else "positive"
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    CASES[(operation, phase, mode)] += 1
    STATUSES[operation][status_code] += 1


def pytest_terminal_summary(terminalreporter):
    if not CASES:
        return
    per_operation: collections.Counter = collections.Counter()
    per_phase: collections.Counter = collections.Counter()
    for (operation, phase, mode), count in CASES.items():
        per_operation[operation] += count
        per_phase[f"{phase} {mode}"] += count
    terminalreporter.write_sep("-", f"fuzz: {sum(CASES.values())} cases on {len(per_operation)} operations")
    terminalreporter.write_line("  " + ", ".join(f"{name}: {n}" for name, n in sorted(per_phase.items())))
    if terminalreporter.verbosity > 0:
        for operation, count in sorted(per_operation.items()):
            statuses = " ".join(f"{code}x{n}" for code, n in sorted(STATUSES[operation].items()))
            terminalreporter.write_line(f"  {count:6d}  {operation}  [{statuses}]")
