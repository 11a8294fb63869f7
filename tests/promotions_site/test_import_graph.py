"""The apps depend one way (redemptions -> wallets -> promotions -> promotions_site): import-linter's
contracts in pyproject.toml hold, so `make test` and CI fail when a wrong-way import comes back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_import_contracts_of_pyproject_are_kept():
    # given: the contracts in pyproject.toml, the installed apps
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"]
    # when
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    # then
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
