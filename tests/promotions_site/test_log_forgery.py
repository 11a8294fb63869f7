"""No input can write a log line of its own: a path with `%0a`, a header with a control character and an
exception's message are escaped in the plain format (the JSON format escapes them as JSON does)."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re

import pytest
from django.test import Client

from promotions_site.logs import RequestContextFilter, logging_config

# What a forged record would look like: a line of its own, in the plain format.
FORGED = "2030-01-01 00:00:00,000 INFO promotions_site.access [forged] GET /admin/ 200 1.00ms"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \[")


def configured_formatter(log_format: str) -> logging.Formatter:
    """The formatter `settings.LOGGING` gives the console handler for `log_format`."""
    config = logging_config(log_format=log_format, level="INFO")
    configurator = logging.config.DictConfigurator(config)
    return configurator.configure_formatter(config["formatters"][log_format])


@pytest.fixture(params=["plain", "json"])
def log_output(request):
    """What the production console handler writes while the test runs, in each format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configured_formatter(request.param))
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield request.param, stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def assert_one_record_per_line(log_format: str, text: str) -> None:
    lines = text.splitlines()
    assert lines
    for line in lines:
        if log_format == "json":
            json.loads(line)
        else:
            assert RECORD_START.match(line) or line.startswith("    "), line
        assert not line.startswith(FORGED)


def test_a_line_feed_in_the_path_writes_no_line(db, log_output):
    # given
    log_format, stream = log_output
    # when: `%0a` in the path, which the access log and Django's 404 warning both name
    Client().get(f"/admin/no-such-page%0a{FORGED.replace(' ', '%20')}")
    # then
    assert_one_record_per_line(log_format, stream.getvalue())
    assert "GET /admin/no-such-page\\n2030-01-01" in stream.getvalue()


def test_a_control_character_in_a_header_writes_no_line(db, log_output):
    # given
    log_format, stream = log_output
    # when: an Origin header Django's CSRF check names in its warning, with a carriage return and a line
    # feed (Django escapes its own warning's arguments; the plain format must hold whatever it is given)
    response = Client(enforce_csrf_checks=True).post(
        "/admin/login/", {"username": "x", "password": "y"}, HTTP_ORIGIN=f"https://evil.example\r\n{FORGED}"
    )
    # then
    assert response.status_code == 403
    assert_one_record_per_line(log_format, stream.getvalue())
    assert "https://evil.example" in stream.getvalue()


def test_an_exception_message_cannot_pass_for_a_record(log_output):
    # given
    log_format, stream = log_output
    # when
    try:
        raise ValueError(f"bad value\n{FORGED}\x1b[2K")
    except ValueError:
        logging.getLogger("promotions_site.requests").exception("unhandled error\n%s", FORGED)
    # then: the record's line escaped, each traceback line indented, controls escaped
    assert_one_record_per_line(log_format, stream.getvalue())
    if log_format == "plain":
        assert f"    {FORGED}\\x1b[2K" in stream.getvalue().splitlines()
