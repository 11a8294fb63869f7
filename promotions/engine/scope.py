"""Where and when a promotion applies (docs/engine.md, "Who may get what"): store criteria against the
till's store, time criteria at `now` in the org's time zone (a name, given as data in the context)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

from .types import StoreCriteria, StoreScope, TimeCriteria

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
UTC = dt.UTC


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def store_holds(criteria: StoreCriteria | None, store: StoreScope | None) -> bool:
    """IN: the till's store (STORE), one of its zones (ZONE) or concepts (CONCEPT), ancestors included,
    is in the values; NOT_IN: not. With no till, IN never holds and NOT_IN always does."""
    if criteria is None:
        return True
    if store is None:
        found = False
    elif criteria.type == "STORE":
        found = store.store_id in criteria.values
    elif criteria.type == "ZONE":
        found = not criteria.values.isdisjoint(store.zone_ids)
    else:
        found = not criteria.values.isdisjoint(store.concept_ids)
    return found if criteria.operator == "IN" else not found


def window_open(day: dt.date, criteria: TimeCriteria, tz: ZoneInfo) -> dt.datetime:
    """The moment (UTC) the window of `day` opens: `startTime` local time that day. A local time the
    clocks skip (spring forward) is read with the offset before the change; a repeated one (fall back)
    is its first occurrence (zoneinfo's fold=0)."""
    hour, minute = divmod(criteria.start_minute, 60)
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    return local.astimezone(UTC)


def qualifies(day: dt.date, criteria: TimeCriteria, start_day: dt.date) -> bool:
    if criteria.repeat == "DAYS":
        return True
    if criteria.repeat == "WEEKS":
        return day.weekday() in criteria.weekdays
    return day == start_day  # DOES_NOT_REPEAT


def time_holds(
    criteria: TimeCriteria | None, now: dt.datetime, timezone: str, promotion_start: dt.datetime
) -> bool:
    """`now` is in `[open, open + durationInHours)` of a qualifying day's window. A window lasts that
    many elapsed hours (across a DST change too) and belongs to the day it opened: at most 24 hours, so
    only today's and yesterday's windows can hold `now`."""
    if criteria is None:
        return True
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    start_day = promotion_start.astimezone(tz).date()
    now_utc = now.astimezone(UTC)
    length = dt.timedelta(hours=criteria.duration_hours)
    for day in (today, today - dt.timedelta(days=1)):
        if qualifies(day, criteria, start_day):
            opened = window_open(day, criteria, tz)
            if opened <= now_utc < opened + length:
                return True
    return False
