"""The promotion calendar (the promotion list's "Calendar", a card of the first page): the org's
promotions of one month as bars from their start to their end, in the org's time zone (the page's,
`OrgTimezoneMiddleware`), coloured by type, inactive ones greyed, each a link to its promotion.
Server-rendered: each bar is placed with percentages of the month, no JavaScript.

One query: the promotions overlapping the month, at most `CALENDAR_MAX` of them (by start), the page
saying when more were left off.
"""

from __future__ import annotations

import calendar as cal
import datetime as dt
import re
from dataclasses import dataclass

from django.utils import timezone

from promotions.models import Promotion, PromotionType
from promotions_site.admin_format import admin_datetime

CALENDAR_MAX = 200
MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_of(text: str | None, today: dt.date) -> dt.date:
    """The first day of `YYYY-MM` (`?month=`); this month's when it is missing or not a month."""
    match = MONTH.match(text or "")
    if match:
        year, month = int(match[1]), int(match[2])
        if 1970 <= year <= 9998 and 1 <= month <= 12:
            return dt.date(year, month, 1)
    return today.replace(day=1)


def next_month(first: dt.date) -> dt.date:
    return (first + dt.timedelta(days=32)).replace(day=1)


def previous_month(first: dt.date) -> dt.date:
    return (first - dt.timedelta(days=1)).replace(day=1)


@dataclass(frozen=True)
class Bar:
    promotion: Promotion
    left: float  # percent of the month before the bar
    width: float  # percent of the month the bar covers
    starts_before: bool
    ends_after: bool
    start_text: str
    end_text: str

    @property
    def css(self) -> str:
        classes = [f"type-{self.promotion.type.lower()}"]
        if not self.promotion.active:
            classes.append("inactive")
        if self.starts_before:
            classes.append("starts-before")
        if self.ends_after:
            classes.append("ends-after")
        return " ".join(classes)


@dataclass(frozen=True)
class MonthCalendar:
    first: dt.date
    days: list[dt.date]
    bars: list[Bar]
    more: bool  # promotions left off beyond CALENDAR_MAX
    today_left: float | None  # percent of the month where now is, if in it

    @property
    def previous(self) -> str:
        return f"{previous_month(self.first):%Y-%m}"

    @property
    def next(self) -> str:
        return f"{next_month(self.first):%Y-%m}"


def month_calendar(promotions, first: dt.date, now: dt.datetime | None = None) -> MonthCalendar:
    """The bars of `promotions` (a queryset, already scoped to the org) over the month starting on
    `first`, in the current time zone."""
    tz = timezone.get_current_timezone()
    now = now or timezone.now()
    low = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    high = dt.datetime.combine(next_month(first), dt.time.min, tzinfo=tz)
    span = (high - low).total_seconds()
    rows = list(
        promotions.filter(start_date__lt=high, end_date__gte=low)
        .only("id", "org", "name", "type", "active", "start_date", "end_date")
        .order_by("start_date", "name", "pk")[: CALENDAR_MAX + 1]
    )
    bars = []
    for promotion in rows[:CALENDAR_MAX]:
        start, end = max(promotion.start_date, low), min(promotion.end_date, high)
        left = (start - low).total_seconds() / span * 100
        width = max((end - start).total_seconds() / span * 100, 0.6)
        bars.append(
            Bar(
                promotion=promotion,
                left=round(min(left, 99.4), 3),
                width=round(min(width, 100 - min(left, 99.4)), 3),
                starts_before=promotion.start_date < low,
                ends_after=promotion.end_date > high,
                start_text=admin_datetime(promotion.start_date),
                end_text=admin_datetime(promotion.end_date),
            )
        )
    days = [first + dt.timedelta(days=n) for n in range(cal.monthrange(first.year, first.month)[1])]
    today_left = (now - low).total_seconds() / span * 100 if low <= now < high else None
    return MonthCalendar(first, days, bars, len(rows) > CALENDAR_MAX, today_left)


TYPE_LEGEND = [(kind.value, kind.label, f"type-{kind.value.lower()}") for kind in PromotionType]
