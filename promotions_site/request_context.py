"""The id of the request (or of the task it enqueued) being served, readable from anywhere.

One context variable, set by `RequestIdMiddleware` for a request and by the Celery signals in
`promotions_site.logs` for a task; the logs, the audit trail and the task headers read it. It lives
apart from both so neither the middleware nor the logs need the other to reach it.
"""

from __future__ import annotations

import re
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="")

# An id a client (`X-Request-ID`) or a task message may carry; anything else is replaced by our own.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_valid(value: str) -> bool:
    return bool(_REQUEST_ID_RE.match(value))


def current_request_id() -> str:
    return request_id_var.get()
