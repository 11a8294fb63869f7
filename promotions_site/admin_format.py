"""How the console shows times, money and limits to a marketer.

Times: every admin page of a staff user bound to an org runs in the org's time zone
(`OrgTimezoneMiddleware`, as the dashboard reads its days), so lists, filters, detail pages and forms
read and write the org's wall clock; each time shown carries its zone's abbreviation (the site's
DATETIME_FORMAT, `promotions_site/formats`), and every page names the zone (`zone_label`).
A superuser of no org works in the server's zone (UTC by default), labelled the same way.

Money: with the org's `rounding_precision` decimals, not the database's six. Limits: a count (kpi
REDEMPTION or TRANSACTION) as an integer, an amount (kpi DISCOUNT) as money.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

COUNT_KPIS = frozenset({"REDEMPTION", "TRANSACTION"})
DEFAULT_PRECISION = 2


def zone_label() -> str:
    """The name of the zone the page's times are in (`Europe/Berlin`, `UTC`)."""
    return timezone.get_current_timezone_name()


def admin_datetime(value: dt.datetime | None) -> str:
    """`2026-12-03 19:45 CET`: the moment in the page's zone, with the zone's abbreviation."""
    if value is None:
        return "-"
    local = timezone.localtime(value)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone_label()}"


def money(value, precision: int | None = DEFAULT_PRECISION) -> str:
    """`4,637.00`: an amount with `precision` decimals (the org's rounding precision), rounded half up,
    thousands grouped. None reads as `-`."""
    if value is None:
        return "-"
    places = DEFAULT_PRECISION if precision is None else int(precision)
    amount = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{amount:,.{places}f}"


def quantity(value) -> str:
    """A quantity without its trailing zeros: `2`, `1.5` (not `2.000000`)."""
    if value is None:
        return "-"
    amount = Decimal(value)
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{amount.normalize():f}"


def limit_text(value, kpi: str, precision: int | None = DEFAULT_PRECISION) -> str:
    """A limit or a use of one: an integer for a count (REDEMPTION, TRANSACTION), money otherwise."""
    if value is None:
        return "-"
    return quantity(value) if kpi in COUNT_KPIS else money(value, precision)


class OrgTimezoneMiddleware:
    """Admin pages run in the staff user's org's time zone (after AuthenticationMiddleware). API
    requests are left alone: they speak epoch milliseconds and offsets (promotions_site/timefmt.py)."""

    admin_prefix = "/admin/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(self.admin_prefix):
            return self.get_response(request)
        user = getattr(request, "user", None)
        org = getattr(user, "org", None) if user is not None and user.is_authenticated else None
        if org is None:
            return self.get_response(request)
        with timezone.override(org.tz):
            return self.get_response(request)
