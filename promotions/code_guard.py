"""Throttling of promo-code guesses (docs/code-link.md, "Guessing codes").

A look-up that names a code the org does not have (`GET /promotions/code` with an unknown code, a
link of an unknown code, later evaluate's `promoCodes`) is a failure. Failures are counted per API
client and per customer (when the call names one) in sliding windows (promotions_site/throttling.py)
whose limits are settings (`CODE_GUESS_LIMIT_PER_CLIENT`, `CODE_GUESS_LIMIT_PER_CUSTOMER`); while
either window is full, `code_guess_check` refuses the call with 429 and `Retry-After`, before any
code is looked up. Failures are counted in the `promotions_code_guess_failures` metric and logged,
never with a code in clear: at most its first characters and a keyed hash (`code_fingerprint`).

A call that found every code records 0 failures: the counters are written all the same (an
increment by 0), so a hit and a miss take the same round trips to the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled

from promotions_site.metrics import code_guess_failures_count, code_guess_refused_count
from promotions_site.throttling import Rate, SlidingWindow, check_all

logger = logging.getLogger(__name__)

# How many leading characters of a code a log line may show.
CODE_LOG_PREFIX = 2


class CodeGuessLocked(Throttled):
    """Too many unknown promo codes looked up by this API client or for this customer: 429."""

    default_detail = "Too many unknown promo codes were looked up; retry later."

    def __init__(self, wait: float):
        super().__init__(wait=math.ceil(wait), detail=self.default_detail)


def _windows(api_client, customer_id: int | None) -> list[tuple[str, SlidingWindow, str]]:
    """(scope, window, identity) of each counter a call is checked against and counted in; a scope
    whose limit is off (or, for `customer`, a call without a customer) is left out."""
    windows = []
    client_rate = Rate.parse(settings.CODE_GUESS_LIMIT_PER_CLIENT)
    if client_rate is not None and api_client is not None:
        client_id = getattr(api_client, "pk", api_client)
        windows.append(("client", SlidingWindow("code-guess:client", client_rate), str(client_id)))
    customer_rate = Rate.parse(settings.CODE_GUESS_LIMIT_PER_CUSTOMER)
    if customer_rate is not None and customer_id is not None:
        # Per customer of the client's org: a client of another org naming the same id (another org's
        # customer, or none) cannot use up this customer's budget.
        ident = f"{getattr(api_client, 'org_id', '')}:{customer_id}"
        windows.append(("customer", SlidingWindow("code-guess:customer", customer_rate), ident))
    return windows


def code_guess_check(api_client, customer_id: int | None = None) -> None:
    """Raise `CodeGuessLocked` (429, Retry-After) while this API client, or this customer, has used up
    its failed code look-ups; else nothing. Counts nothing. `api_client`: the ApiClient (or its id)."""
    windows = _windows(api_client, customer_id)
    if not windows:
        return
    waits = check_all([(window, ident) for _, window, ident in windows])
    refused = [(scope, wait) for (scope, _, _), wait in zip(windows, waits, strict=True) if wait is not None]
    if refused:
        for scope, _ in refused:
            code_guess_refused_count(scope=scope)
        logger.warning(
            "promo-code look-ups refused: too many failures",
            extra={"api_client_id": _client_id(api_client), "customer_id": customer_id},
        )
        raise CodeGuessLocked(max(wait for _, wait in refused))


def code_guess_record(api_client, customer_id: int | None, failures: int, *, codes=()) -> None:
    """Count `failures` failed code look-ups for this API client and this customer (when known).

    Called once per call that looked codes up, with 0 when every code was found: the counters are
    written either way (see the module). `codes`: the unknown codes, for the log line only, which
    shows each as its first characters and a keyed hash."""
    failures = max(0, int(failures))
    now = time.time()
    for scope, window, ident in _windows(api_client, customer_id):
        _add(window._keys(ident, now)[0], failures, 2 * window.rate.seconds + 1)
        code_guess_failures_count(failures, scope=scope)
    if failures:
        logger.info(
            "promo-code look-up failed",
            extra={
                "api_client_id": _client_id(api_client),
                "customer_id": customer_id,
                "failures": failures,
                "codes": [code_fingerprint(code) for code in codes],
            },
        )


def _add(key: str, amount: int, timeout: int) -> None:
    """Add `amount` (0 included) to a window's counter, creating it when missing."""
    try:
        cache.incr(key, amount)
    except ValueError:  # the window's first event
        if not cache.add(key, amount, timeout=timeout):
            with contextlib.suppress(ValueError):
                cache.incr(key, amount)


def _client_id(api_client):
    return getattr(api_client, "pk", api_client)


def code_fingerprint(code: str) -> str:
    """What a log may say of a code: its first characters and a keyed hash (HMAC-SHA256 under the
    SECRET_KEY, 12 hex digits), so the same guess can be followed across lines but not read back."""
    text = str(code)
    digest = hmac.new(
        settings.SECRET_KEY.encode(), text.encode("utf-8", "surrogatepass"), hashlib.sha256
    ).hexdigest()[:12]
    return f"{text[:CODE_LOG_PREFIX]}…#{digest}"
