"""Without Chromium (or Playwright, or axe-core) the browser tests skip on a laptop, saying how to
install it, and fail in CI."""

from __future__ import annotations

import os

import pytest

from tests.browser import chromium


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.delenv("CHROMIUM_PATH", raising=False)
    monkeypatch.setattr(chromium.shutil, "which", lambda name: None)


def test_without_chromium_a_laptop_skips_with_how_to_install_it(no_chromium, monkeypatch):
    # given
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    # when
    with pytest.raises(pytest.skip.Exception) as skipped:
        chromium.chromium_or_skip()
    # then
    assert "no Chromium found" in str(skipped.value)
    assert "apt-get install chromium" in str(skipped.value)
    assert "CHROMIUM_PATH" in str(skipped.value)


def test_without_chromium_ci_fails(no_chromium, monkeypatch):
    # given
    monkeypatch.setenv("REQUIRE_BROWSER", "1")
    # when / then
    with pytest.raises(pytest.fail.Exception, match="REQUIRE_BROWSER=1 but no Chromium found"):
        chromium.chromium_or_skip()


def test_a_chromium_path_that_is_not_a_binary_is_reported(monkeypatch, tmp_path):
    # given
    monkeypatch.delenv("REQUIRE_BROWSER", raising=False)
    monkeypatch.setenv("CHROMIUM_PATH", str(tmp_path / "missing"))
    # when / then
    with pytest.raises(pytest.skip.Exception, match="is not an executable"):
        chromium.chromium_or_skip()


def test_chromium_is_found_on_the_path(monkeypatch, tmp_path):
    # given: an executable named chromium on PATH (Debian installs /usr/bin/chromium)
    binary = tmp_path / "chromium"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    monkeypatch.delenv("CHROMIUM_PATH", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    # when / then
    assert chromium.chromium_or_skip() == str(binary)


def test_without_playwright_ci_fails(monkeypatch):
    # given: the import fails
    import builtins

    real_import = builtins.__import__

    def no_playwright(name, *args, **kwargs):
        if name.startswith("playwright"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_playwright)
    monkeypatch.setenv("REQUIRE_BROWSER", "1")
    # when / then
    with pytest.raises(pytest.fail.Exception, match="Playwright is not installed"):
        chromium.playwright_or_skip()


def test_without_axe_core_ci_fails(monkeypatch):
    # given: the axe-playwright-python package is not installed
    from tests.browser import checks

    monkeypatch.setattr(checks.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setenv("REQUIRE_BROWSER", "1")
    # when / then
    with pytest.raises(pytest.fail.Exception, match=r"axe-playwright-python \(axe-core\) is not installed"):
        checks.axe_path()


def test_axe_core_is_the_dev_dependency_s_own_file_with_its_licence():
    # given the dev dependency installed (CI: pip install -e '.[dev]'), when its file is looked up
    from tests.browser import checks

    head = checks.axe_path().read_text()[:600]
    # then it is axe-core 4, its MPL-2.0 header intact
    assert head.startswith("/*! axe v4") and "Mozilla Public" in head and "Deque Systems" in head
