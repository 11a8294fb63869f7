"""Rate limits per API client, and sign-in throttles against password guessing.

Both count in the default cache: Redis when `REDIS_URL` is set (shared by every process), else local
memory (each process counts on its own). A limit is "N/period" (`6000/m`, `10/5m`); see docs/api.md,
"Limits and rate limiting".
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework.throttling import BaseThrottle

_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: int

    @staticmethod
    @lru_cache(maxsize=32)
    def parse(text: str) -> Rate | None:
        """`"6000/m"`, `"10/5m"`, `"100/h"` -> Rate; `""`, `"off"` or `"none"` -> None (no limit)."""
        if text.strip().lower() in {"", "off", "none"}:
            return None
        match = _RATE_RE.match(text.lower())
        if not match or match.group(3) not in _UNITS or int(match.group(1)) < 1:
            raise ImproperlyConfigured(f"Invalid rate {text!r}: expected N/period, e.g. 6000/m or 10/5m.")
        seconds = int(match.group(2) or 1) * _UNITS[match.group(3)]
        if seconds < 1:
            raise ImproperlyConfigured(f"Invalid rate {text!r}: the period must be at least one second.")
        return Rate(int(match.group(1)), seconds)


class SlidingWindow:
    """Events of one kind per identity over the last `rate.seconds`, estimated from two counters.

    The estimate is this window's count plus the previous window's, weighted by the share of the
    previous window still inside the last `rate.seconds` (the sliding-window counter). Two small
    integers per identity, whatever the rate; DRF's SimpleRateThrottle keeps every request's
    timestamp in one cache value instead, which at thousands of requests a minute is read and
    rewritten whole on every request.
    """

    def __init__(self, name: str, rate: Rate):
        self.name = name
        self.rate = rate

    def _keys(self, ident: str, now: float) -> tuple[str, str, float]:
        window, offset = divmod(now, self.rate.seconds)
        prefix = f"throttle:{self.name}:{ident}:"
        return f"{prefix}{int(window)}", f"{prefix}{int(window) - 1}", offset

    def _wait(self, current: int, previous: int, offset: float) -> float | None:
        """None when one more event fits; else the seconds until it does (at least 1)."""
        limit, period = self.rate.limit, self.rate.seconds
        remaining = period - offset  # of the current window
        if current + previous * remaining / period + 1 <= limit:
            return None
        if current + 1 <= limit:  # fits once enough of the previous window has slid out
            wait = remaining - period * (limit - 1 - current) / previous
        else:  # fits only once this window is the previous one and has partly slid out
            wait = remaining + period * (1 - (limit - 1) / current)
        return max(1.0, wait)

    def _increment(self, key: str) -> int:
        try:
            return cache.incr(key)
        except ValueError:  # first event of the window (the key outlives the window: 2 periods)
            if cache.add(key, 1, timeout=2 * self.rate.seconds + 1):
                return 1
            return cache.incr(key)

    def check(self, ident: str) -> float | None:
        """None when one more event fits now, else the seconds to wait. Counts nothing."""
        return check_all([(self, ident)])[0]

    def record(self, ident: str) -> None:
        """Count one event."""
        self._increment(self._keys(ident, time.time())[0])

    def take(self, ident: str, now: float | None = None) -> float | None:
        """Count one event if it fits (None); else count nothing and return the seconds to wait.

        The counter is incremented first and given back on refusal, so concurrent requests cannot
        all see the last free unit.
        """
        current_key, previous_key, offset = self._keys(ident, time.time() if now is None else now)
        current = self._increment(current_key)
        wait = self._wait(current - 1, cache.get(previous_key, 0), offset)
        if wait is not None:
            cache.decr(current_key)
        return wait

    def give_back(self, ident: str, *, taken_at: float) -> None:
        """Uncount an event `take` counted at `taken_at` (`now`), once it turned out not to count."""
        # ValueError: the window's counter has expired, nothing is left to give back.
        with contextlib.suppress(ValueError):
            cache.decr(self._keys(ident, taken_at)[0])


def check_all(checks: list[tuple[SlidingWindow, str]]) -> list[float | None]:
    """`window.check(ident)` for each pair, reading every counter in one cache round trip."""
    now = time.time()
    keys = [window._keys(ident, now) for window, ident in checks]
    values = cache.get_many([key for current, previous, _ in keys for key in (current, previous)])
    return [
        window._wait(values.get(current, 0), values.get(previous, 0), offset)
        for (window, _), (current, previous, offset) in zip(checks, keys, strict=True)
    ]


class ApiClientRateThrottle(BaseThrottle):
    """Scope `api_client`: every API call of one API client counts against `API_RATE_LIMIT`.

    Requests without an API client (the token endpoint, the schema) are not counted here; failed
    sign-ins are limited by `sign_in_check`.
    """

    scope = "api_client"

    def allow_request(self, request, view) -> bool:
        from promotions.models import ApiClient

        self._wait = None
        rate = Rate.parse(settings.API_RATE_LIMIT)
        if rate is None or not isinstance(request.user, ApiClient):
            return True
        self._wait = SlidingWindow(self.scope, rate).take(str(request.user.pk))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


# --- Sign-in throttle ---------------------------------------------------------------------------------


class SignInLocked(Exception):
    """Too many failed sign-ins for this username or from this address: refuse before checking."""

    message = "Too many failed sign-in attempts for this username or from this address."

    def __init__(self, wait: float):
        self.wait = math.ceil(wait)
        super().__init__(self.message)


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, unless the operator named the proxies in front of the app.

    With `NUM_PROXIES` = n, the X-Forwarded-For entry the n-th nearest proxy appended (DRF's rule);
    with `TRUSTED_PROXIES`, the nearest hop that is not one of them. Anything further left was written
    by the client and is never read.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = [
        hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()
    ]
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    if trusted:
        address = remote
        for hop in reversed(forwarded):
            if not _is_in(address, trusted):
                break
            address = hop
        return address
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES") or 0
    if num_proxies and forwarded:
        return forwarded[-min(num_proxies, len(forwarded))]
    return remote


@lru_cache(maxsize=8)
def _networks(texts: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def _is_in(address: str, networks) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _fingerprint(value: str) -> str:
    # Cache keys stay short and safe whatever a client sends as a username.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _sign_in_windows(realm: str, username: str, ip: str) -> dict[str, tuple[SlidingWindow, str]]:
    """The failure counts a sign-in is checked against and counted in, by scope: `pair` (this username
    from this address), `address` (any username from this address), `ceiling` (this username from every
    address). A scope whose limit is off is left out."""
    windows = {}
    for scope, setting, value in (
        ("pair", settings.LOGIN_FAILURE_LIMIT_PER_USERNAME, f"{username}\0{ip}"),
        ("address", settings.LOGIN_FAILURE_LIMIT_PER_IP, ip),
        ("ceiling", settings.LOGIN_FAILURE_CEILING_PER_USERNAME, username),
    ):
        rate = Rate.parse(setting)
        if rate is not None:
            windows[scope] = (SlidingWindow(f"sign-in-failures:{realm}:{scope}", rate), _fingerprint(value))
    return windows


def sign_in_check(*, realm: str, username: str, ip: str) -> None:
    """Raise SignInLocked while this username or address has used up its failed sign-ins.

    `realm` keeps API clients (`api`) and admin users (`admin`) apart. A username is locked per
    address (`LOGIN_FAILURE_LIMIT_PER_USERNAME`), so failures from one address never lock the right
    user out from another; an address is locked for every username (`LOGIN_FAILURE_LIMIT_PER_IP`).
    Once a username has failed `LOGIN_FAILURE_CEILING_PER_USERNAME` times from all addresses together,
    only addresses that have not failed for it are still checked: guessing from many addresses gets
    one try per address, while the right user, from an address of their own, still signs in.
    A locked sign-in is refused even with the right secret, so guessing cannot go on behind the lock.
    """
    checks = _sign_in_windows(realm, username, ip)
    if "pair" in checks:
        # The pair's own counters read against a limit of one: no wait exactly when this address has
        # no failure for this username inside the pair's window.
        window, ident = checks["pair"]
        checks["pair_clean"] = (SlidingWindow(window.name, Rate(1, window.rate.seconds)), ident)
    waits = dict(zip(checks, check_all(list(checks.values())), strict=True))
    refusals = [wait for scope in ("pair", "address") if (wait := waits.get(scope)) is not None]
    # Without a per-pair count no address can show it is clean: the ceiling then holds for all.
    address_has_failed = "pair_clean" not in waits or waits["pair_clean"] is not None
    if waits.get("ceiling") is not None and address_has_failed:
        refusals.append(waits["ceiling"])
    if refusals:
        raise SignInLocked(max(refusals))


def sign_in_failure_record(*, realm: str, username: str, ip: str) -> None:
    """Count one failed sign-in: for the username from this address, from the address, for the username."""
    for window, ident in _sign_in_windows(realm, username, ip).values():
        window.record(ident)
