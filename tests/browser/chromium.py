"""Which Chromium the browser tests drive, and what happens without one: on a laptop the tests skip
saying how to get it; in CI (`REQUIRE_BROWSER=1`, set by `.ci/run`) they fail, so a CI image that
lost its browser cannot pass with the browser tests silently skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Debian's and Ubuntu's package names for the binary, then Google's build.
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
# How the tests launch it, and where their screenshots go.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
INSTALL_HINT = (
    "install Chromium (Debian/Ubuntu: `sudo apt-get install chromium`; macOS: `brew install --cask chromium`) "
    "or point CHROMIUM_PATH at a Chromium or Chrome binary"
)


def find_chromium() -> str | None:
    """CHROMIUM_PATH when set (it must exist), else the first candidate on PATH."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str):
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {reason}: {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"browser test: {reason}; to run it, {INSTALL_HINT}")


def chromium_or_skip() -> str:
    """The Chromium binary to drive; skips (or, with REQUIRE_BROWSER=1, fails) the test without one."""
    path = find_chromium()
    if path is None:
        configured = os.environ.get("CHROMIUM_PATH")
        _unavailable(
            f"CHROMIUM_PATH={configured} is not an executable" if configured else "no Chromium found"
        )
    return path


def playwright_or_skip():
    """Playwright's sync API (a dev dependency); skips (or fails in CI) when it is not installed."""
    try:
        from playwright import sync_api
    except ImportError:
        _unavailable("Playwright is not installed (`make install` installs it)")
    return sync_api
