"""The browser tests' fixtures: a live server with plain-HTTP settings and a Chromium page driven by
Playwright (tests/browser/chromium.py says which Chromium, and what happens without one)."""

from __future__ import annotations

import pytest
from django.db import connections

from tests.browser.chromium import CHROMIUM_ARGS, OUTPUT, chromium_or_skip, playwright_or_skip


@pytest.fixture
def browser_settings(settings, monkeypatch):
    # Plain HTTP to the live server; the job runs in the background thread so the page can watch it.
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    settings.ALLOWED_HOSTS = ["*"]
    settings.BULK_JOBS_IN_PROCESS = "thread"
    settings.BULK_JOB_INLINE_MAX = 1000
    settings.MEDIA_ROOT = str(OUTPUT / "media")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    return settings


@pytest.fixture
def server(browser_settings, monkeypatch):
    """A live server started after the test settings apply (its middleware reads them once, at start).
    Its static files say the browser may keep them for an hour, as a production server's do: without
    that, every page load asked again for its thirty-odd stylesheets and scripts, a third of the
    browser tests' time."""
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from pytest_django.live_server_helper import LiveServer

    serve = StaticFilesHandler.serve

    def serve_cacheable(handler, request):
        response = serve(handler, request)
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    monkeypatch.setattr(StaticFilesHandler, "serve", serve_cacheable)
    live = LiveServer("localhost")
    yield live
    live.stop()


@pytest.fixture
def page(browser_settings):
    executable = chromium_or_skip()
    sync_api = playwright_or_skip()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        yield context.new_page()
        context.close()
        browser.close()
        # Under Playwright's sync API the test's ORM calls open a connection of their own (a context
        # apart from pytest-django's); closed here, so the test database can be dropped at the end.
        connections.close_all()
