"""API client secrets at rest: a keyed hash (HMAC-SHA256 under a server key), checked in constant time.

A client's secret is a random machine secret (`secrets.token_urlsafe(32)`: 256 bits), not a password
a person chose. A slow hash (PBKDF2, a million iterations) protects chosen passwords from guessing once
the table leaks; against a 256-bit random secret guessing is hopeless at any speed, and the slow hash
only gave anyone sending bad credentials a way to burn a CPU-second per request. Under a keyed hash a
leaked table without the server key cannot be guessed against at all, and a check costs microseconds.

Stored form: `hmac_sha256$<salt>$<hex>`, the HMAC of the secret's MD5 hex digest (Capillary tills send
the digest, other clients the secret; the caller turns either into the digest). The key is
`API_CLIENT_SECRET_KEY` (by default `SECRET_KEY`); keys in `API_CLIENT_SECRET_KEY_FALLBACKS` still
verify, and a hash under one is rewritten under the current key by the caller.

Rows written before the keyed hash hold a Django password hash (`pbkdf2_sha256$...`) of the digest:
they still verify (through `check_password`) and are rewritten on their next successful sign-in. Such a
slow check takes a unit of `LEGACY_SECRET_CHECK_LIMIT`, all clients together, for as long as it runs,
and keeps it when it fails: failed slow checks are capped globally, and beyond the cap a slow check
is refused (`SecretCheckBusy`) before it runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.utils.crypto import constant_time_compare, get_random_string, salted_hmac

from promotions_site.throttling import Rate, SignInLocked, SlidingWindow

ALGORITHM = "hmac_sha256"
_KEY_SALT = "promotions_site.client_secrets"
# Compared against when the username is unknown, so that costs what a wrong secret costs.
_UNKNOWN = f"{ALGORITHM}$unknown-client$" + "0" * 64


class SecretCheckBusy(SignInLocked):
    """Too many slow (pre-keyed-hash) secret checks are running or have failed: refused unchecked."""

    message = "Too many sign-in attempts are being checked. Try again later."


@dataclass(frozen=True)
class SecretCheck:
    """What a check found: the digest that matched (None: no match), and whether its stored form is
    to be rewritten (an older form, or a fallback key)."""

    matched: str | None
    outdated: bool = False


def _keyed_digest(key: str, salt: str, value: str) -> str:
    return salted_hmac(_KEY_SALT, f"{salt}${value}", secret=key, algorithm="sha256").hexdigest()


def secret_hash_make(digest: str) -> str:
    """The stored form of a secret, given its MD5 hex digest (lower case)."""
    salt = get_random_string(16)
    return f"{ALGORITHM}${salt}${_keyed_digest(settings.API_CLIENT_SECRET_KEY, salt, digest)}"


def secret_hash_check(*, candidates: list[str], encoded: str | None) -> SecretCheck:
    """Whether one of `candidates` (MD5 hex digests) is the secret `encoded` holds.

    `encoded` None (no such client) costs what a wrong secret does: every candidate under every key.
    Each comparison is constant-time, and every one runs whether an earlier one matched or not.
    """
    if encoded is not None and not encoded.startswith(f"{ALGORITHM}$"):
        return _legacy_check(candidates=candidates, encoded=encoded)
    _, salt, stored = (encoded or _UNKNOWN).split("$", 2)
    keys = [settings.API_CLIENT_SECRET_KEY, *settings.API_CLIENT_SECRET_KEY_FALLBACKS]
    matched, matched_key = None, None
    for key in keys:
        for candidate in candidates:
            if constant_time_compare(_keyed_digest(key, salt, candidate), stored) and matched is None:
                matched, matched_key = candidate, key
    if encoded is None or matched is None:
        return SecretCheck(None)
    return SecretCheck(matched, outdated=matched_key != settings.API_CLIENT_SECRET_KEY)


def _legacy_check(*, candidates: list[str], encoded: str) -> SecretCheck:
    rate = Rate.parse(settings.LEGACY_SECRET_CHECK_LIMIT)
    window = SlidingWindow("legacy-secret-checks", rate) if rate is not None else None
    taken_at = time.time()
    if window is not None and (wait := window.take("all", now=taken_at)) is not None:
        raise SecretCheckBusy(wait)
    matched = next((candidate for candidate in candidates if check_password(candidate, encoded)), None)
    if matched is None:
        return SecretCheck(None)
    if window is not None:
        window.give_back("all", taken_at=taken_at)
    return SecretCheck(matched, outdated=True)
