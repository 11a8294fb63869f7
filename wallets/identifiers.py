"""Customer identifiers: the names clients look customers up by, the one spelling each value is stored in,
and the `Long` ids (customerId, programId) as clients send them."""

from __future__ import annotations

import re

# `identifierName` values, as Capillary's v2 APIs spell them.
IDENTIFIER_NAMES = ("mobile", "email", "externalId", "id")

# The `source` values Capillary documents for the v2 customer and promotion APIs.
SOURCES = (
    "FACEBOOK",
    "WEB_ENGAGE",
    "WECHAT",
    "INSTORE",
    "MARTJACK",
    "TMALL",
    "TAOBAO",
    "JD",
    "ECOMMERCE",
    "WEBSITE",
    "LINE",
    "MOBILE_APP",
)

_MOBILE = re.compile(r"^\+?([0-9]{8,15})$")
# What a request may send as a mobile: the spelling above, with the whitespace the API trims around it.
MOBILE_PATTERN = r"^\s*\+?[0-9]{8,15}\s*$"


def mobile_normalize(value: str) -> str | None:
    """Digits only, country code included (`+919012345678` -> `919012345678`); None if not 8-15 digits.

    Stored and looked up in this one spelling, so `+91...` and `91...` are the same customer.
    """
    match = _MOBILE.match(value.strip())
    return match.group(1) if match else None


def email_normalize(value: str) -> str:
    """Emails are compared without case: `Asha@Example.com` and `asha@example.com` are one customer."""
    return value.strip().lower()


def parse_long_id(value) -> int | None:
    """A `Long` id (customerId, programId, ...): a positive integer or a string of digits, else None."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        return None
    return value
