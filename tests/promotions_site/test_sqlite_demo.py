"""The embedded SQLite default serves the demo while a bulk job runs (WAL, a busy timeout, BEGIN
IMMEDIATE, short chunks). The cases in `tests/promotions_site/sqlite_demo_cases.py` need a file SQLite
database; they run here in a subprocess on a temporary one, so they run in every suite, CI's
PostgreSQL one included."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CASES = "tests/promotions_site/sqlite_demo_cases.py"


def test_the_sqlite_demo_answers_while_a_bulk_job_runs(tmp_path):
    # given: the suite's environment, on a SQLite file of its own instead of the suite's database
    env = {
        key: value for key, value in os.environ.items() if key not in {"REQUIRE_POSTGRES", "PYTEST_ADDOPTS"}
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "insecure-test-only-key",
        "LOG_LEVEL": "WARNING",
    }
    # when
    result = subprocess.run(
        [sys.executable, "-m", "pytest", CASES, "-q", "-p", "no:cacheprovider", "-rA"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # then: every case ran and passed
    report = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    assert re.search(r"(?m)^3 passed", result.stdout) and "skipped" not in result.stdout, report
