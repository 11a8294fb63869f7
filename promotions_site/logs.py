"""Structured logs: one JSON object per line, every record tagged with the request id.

`settings.LOGGING` puts `RequestContextFilter` on the console handler, so every record (Django's,
Celery's, ours) carries `request_id` and, inside a request, `method`, `path`, `org` and `client`.
`JsonFormatter` writes them as one JSON object per line (`LOG_FORMAT=json`, the default when DEBUG
is off); `LOG_FORMAT=plain` (`PlainFormatter`) keeps a readable line with the request id in it. Neither
lets a value in a record (a path, a header) write a line of its own.

The request id reaches Celery tasks through a message header (`before_task_publish`) and is made
current while the task runs (`task_prerun` / `task_postrun`), so the task's logs and the audit
events it writes carry the id of the request that enqueued it.

Nothing here touches Django settings at import time: the Celery app imports this module while the
settings are being loaded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import traceback
from contextvars import ContextVar, Token
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun
from django.utils.functional import empty

from promotions_site.request_context import current_request_id, request_id_valid, request_id_var

# The HttpRequest being served (set by AccessLogMiddleware): the filter reads its method, path and,
# once authentication has run, its org and API client.
request_var: ContextVar[Any] = ContextVar("log_request", default=None)
# The Celery task being run: (task name, task id).
task_var: ContextVar[tuple[str, str] | None] = ContextVar("log_task", default=None)

REQUEST_ID_HEADER = "request_id"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is written out.
_RECORD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request",  # Django's HttpRequest (or the dev server's socket) in `extra`: its fields are taken
}
_CONTEXT_FIELDS = ("request_id", "method", "path", "org", "client", "user", "task", "task_id")


def request_actor(request) -> dict[str, Any]:
    """`org` and `client` (an API client's username) or `user` (an admin user), when already known.

    Never triggers authentication: DRF sets `request.user` to the API client once it has
    authenticated; the admin's lazy user is read only if something already evaluated it.
    """
    user = request.__dict__.get("user")
    if user is None:
        return {}
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or wrapped is empty:  # the admin's lazy user, not evaluated yet
        return {}
    from promotions.models import ApiClient

    if isinstance(wrapped, ApiClient):
        return {"org": wrapped.org_id, "client": wrapped.username}
    if getattr(wrapped, "is_authenticated", False):
        fields: dict[str, Any] = {"user": wrapped.get_username()}
        if getattr(wrapped, "org_id", None) is not None:
            fields["org"] = wrapped.org_id
        return fields
    return {}


class RequestContextFilter(logging.Filter):
    """Adds `request_id` to every record, and the request's or task's context when there is one."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a 4xx/5xx answer (`django.request`) after the middleware has finished, with
        # the request itself as `extra`: its id and path come from it.
        logged_request = getattr(record, "request", None)
        if getattr(logged_request, "META", None) is None:
            logged_request = None
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id() or getattr(logged_request, "request_id", "")
        request = request_var.get() or logged_request
        if request is not None:
            if not hasattr(record, "method"):
                record.method = request.method
            if not hasattr(record, "path"):
                record.path = request.path
            for name, value in request_actor(request).items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        task = task_var.get()
        if task is not None and not hasattr(record, "task"):
            record.task, record.task_id = task
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, any `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or "",
        }
        for name in _CONTEXT_FIELDS[1:]:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        for name, value in record.__dict__.items():
            if name not in _RECORD_ATTRIBUTES and name not in entry and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


# Characters that end a line (or redraw one on a terminal) in a log file or viewer: the C0 and C1
# controls, DEL and Unicode's line and paragraph separators. A path (`%0a` decodes to a line feed) or a
# header holding one could otherwise write a line that reads as a record of its own.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_characters_escaped(text: str) -> str:
    """`text` with each control character written as its Python escape (`\\n`, `\\x1b`, `\\u2028`)."""
    return _CONTROL_CHARACTERS.sub(lambda match: repr(match.group())[1:-1], text)


class PlainFormatter(logging.Formatter):
    """`LOG_FORMAT=plain`: one readable line per record, whatever its message holds.

    The line (message and context) has its control characters escaped. A traceback or stack follows
    it on lines of its own, each indented: so every line starting in the first column starts a
    record, and text inside an exception's message cannot pass for one.
    """

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        lines = [control_characters_escaped(self.formatMessage(record))]
        # Not `record.exc_text`, which another handler's formatter may have cached unindented.
        if record.exc_info:
            lines.append(_indented(self.formatException(record.exc_info)))
        elif record.exc_text:
            lines.append(_indented(record.exc_text))
        if record.stack_info:
            lines.append(_indented(self.formatStack(record.stack_info)))
        return "\n".join(lines)


def _indented(text: str) -> str:
    return "\n".join(f"    {control_characters_escaped(line)}" for line in text.splitlines())


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The `LOGGING` dict: one console handler, JSON or plain, with the request context filter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_context": {"()": "promotions_site.logs.RequestContextFilter"}},
        "formatters": {
            "json": {"()": "promotions_site.logs.JsonFormatter"},
            "plain": {
                "()": "promotions_site.logs.PlainFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if log_format == "json" else "plain",
                "filters": ["request_context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # The access log (AccessLogMiddleware) has a line for every request already.
            "django.server": {"level": "WARNING"},
        },
    }


# --- The request id in Celery tasks -----------------------------------------------------------------

_task_tokens: dict[str, tuple[Token, Token]] = {}


@before_task_publish.connect(dispatch_uid="promotions_site.logs.request_id_publish")
def _request_id_to_task_headers(headers: dict | None = None, **_: Any) -> None:
    """A task enqueued while a request (or a task) runs carries its request id in a header."""
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def task_request_id(task) -> str:
    """The request id a task message carries: a worker exposes message headers as request
    attributes; an eager run (`apply_async(headers=...)`) keeps them in `request.headers`."""
    request = task.request
    value = getattr(request, REQUEST_ID_HEADER, None) or (request.headers or {}).get(REQUEST_ID_HEADER)
    return value if isinstance(value, str) else ""


@task_prerun.connect(dispatch_uid="promotions_site.logs.request_id_prerun")
def _request_id_for_task(task_id: str = "", task=None, **_: Any) -> None:
    """Make the enqueuing request's id current while the task runs. A task run eagerly without one
    keeps the caller's; a task with none (beat, a shell) uses its task id."""
    request_id = task_request_id(task) if task is not None else ""
    if not request_id_valid(request_id):
        eager = bool(task is not None and task.request.is_eager)
        request_id = (current_request_id() if eager else "") or task_id
    _task_tokens[task_id] = (
        request_id_var.set(request_id),
        task_var.set((getattr(task, "name", ""), task_id)),
    )


@task_postrun.connect(dispatch_uid="promotions_site.logs.request_id_postrun")
def _request_id_after_task(task_id: str = "", **_: Any) -> None:
    tokens = _task_tokens.pop(task_id, None)
    if tokens is not None:
        request_id_token, task_token = tokens
        try:
            task_var.reset(task_token)
            request_id_var.reset(request_id_token)
        except ValueError:  # not the context prerun ran in: nothing of ours to undo here
            pass
