"""Where and when (docs/engine.md, "Who may get what"): store criteria against the till's store, zones and
concepts (ancestors included); time criteria in the org's time zone, across midnight and DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from promotions.engine import StoreScope

from .builders import cart, cart_based, cart_condition, line, promotion, reasons, run

ANY = cart_condition("SUBTOTAL", "GREATER_THAN", 0)
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def applies(body, **context) -> bool:
    result = run(cart(line("A", "10.00")), body, **context)
    return bool(result.applied)


def scoped(kind, operator, *values):
    return promotion(ANY, cart_based("ABSOLUTE", 1), id="s", storeCriteria={"type": kind, "operator": operator,
                                                                          "values": list(values)})  # fmt: skip


STORE = StoreScope(
    store_id=7, zone_ids=frozenset({70, 700}), concept_ids=frozenset({9, 90})
)  # 700, 90: ancestors


@pytest.mark.parametrize(
    ("kind", "operator", "values", "expected"),
    [
        ("STORE", "IN", (7, 8), True),
        ("STORE", "IN", (8,), False),
        ("STORE", "NOT_IN", (8,), True),
        ("STORE", "NOT_IN", (7,), False),
        ("ZONE", "IN", (700,), True),  # an ancestor zone
        ("ZONE", "IN", (71,), False),
        ("ZONE", "NOT_IN", (70,), False),
        ("CONCEPT", "IN", (90,), True),
        ("CONCEPT", "NOT_IN", (91,), True),
    ],
)
def test_store_criteria(kind, operator, values, expected):
    assert applies(scoped(kind, operator, *values), store=STORE) is expected


def test_without_a_till_in_never_holds_and_not_in_always_does():
    assert reasons(run(cart(line("A", "10.00")), scoped("STORE", "IN", 7))) == {"s": "STORE_NOT_IN_SCOPE"}
    assert applies(scoped("ZONE", "NOT_IN", 70))


def timed(**criteria):
    return promotion(ANY, cart_based("ABSOLUTE", 1), id="t", timeCriteria=criteria)


def at(zone, *fields):
    return dt.datetime(*fields, tzinfo=zone).astimezone(dt.UTC)


def test_a_weekly_window_in_the_orgs_time_zone():
    # Monday to Friday 16:00 for 2 hours (London); 2026-06-15 is a Monday, BST (UTC+1)
    body = timed(startTime="16:00", durationInHours=2, repeatFrequency="WEEKS",
                 weeklyValues=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"])  # fmt: skip
    tz = "Europe/London"
    assert not applies(body, now=at(LONDON, 2026, 6, 15, 15, 59), timezone=tz)
    assert applies(body, now=at(LONDON, 2026, 6, 15, 16, 0), timezone=tz)
    assert applies(body, now=at(LONDON, 2026, 6, 15, 17, 59), timezone=tz)
    assert not applies(body, now=at(LONDON, 2026, 6, 15, 18, 0), timezone=tz)
    # Saturday: no window
    assert not applies(body, now=at(LONDON, 2026, 6, 20, 16, 30), timezone=tz)
    # the same instant read in UTC would be 15:30, outside
    assert reasons(run(cart(line("A", "1")), body, now=at(LONDON, 2026, 6, 15, 16, 30), timezone="UTC")) == {
        "t": "OUTSIDE_TIME_WINDOW"
    }


def test_a_window_across_midnight_belongs_to_the_day_it_opened():
    # Monday 22:00 for 4 hours covers Tuesday 01:00, but a Tuesday 22:00 window is not open on Wednesday 01:00
    body = timed(startTime="22:00", durationInHours="4", repeatFrequency="WEEKS", weeklyValues=["MONDAY"])
    assert applies(body, now=at(LONDON, 2026, 6, 16, 1, 0), timezone="Europe/London")
    assert not applies(body, now=at(LONDON, 2026, 6, 16, 2, 0), timezone="Europe/London")
    assert not applies(body, now=at(LONDON, 2026, 6, 17, 1, 0), timezone="Europe/London")
    assert not applies(body, now=at(LONDON, 2026, 6, 15, 21, 59), timezone="Europe/London")


def test_a_window_lasts_its_hours_across_a_dst_change():
    # New York falls back on Sunday 2026-11-01 at 02:00 EDT -> 01:00 EST. A daily window opening at 00:00
    # for 3 elapsed hours ends at 02:00 EST that day (03:00 on the wall before the change would be 4 h)
    body = timed(startTime="00:00", durationInHours=3, repeatFrequency="DAYS")
    tz = "America/New_York"
    opened = at(NEW_YORK, 2026, 11, 1, 0, 0)  # 04:00 UTC
    assert applies(body, now=opened + dt.timedelta(hours=2, minutes=59), timezone=tz)
    assert not applies(body, now=opened + dt.timedelta(hours=3), timezone=tz)  # 02:00 EST
    # spring forward, Sunday 2026-03-08 at 02:00 EST -> 03:00 EDT: 00:00 + 3 h ends at 04:00 EDT
    opened = at(NEW_YORK, 2026, 3, 8, 0, 0)  # 05:00 UTC
    assert applies(body, now=opened + dt.timedelta(hours=2, minutes=59), timezone=tz)
    assert not applies(body, now=opened + dt.timedelta(hours=3), timezone=tz)


def test_a_start_time_the_clocks_skip():
    # 02:30 does not exist in New York on 2026-03-08: read with the offset before the change (EST), it is
    # 07:30 UTC (03:30 EDT); a 1-hour window then lasts to 08:30 UTC
    body = timed(startTime="02:30", durationInHours=1, repeatFrequency="DAYS")
    tz = "America/New_York"
    assert not applies(body, now=dt.datetime(2026, 3, 8, 7, 29, tzinfo=dt.UTC), timezone=tz)
    assert applies(body, now=dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC), timezone=tz)
    assert not applies(body, now=dt.datetime(2026, 3, 8, 8, 30, tzinfo=dt.UTC), timezone=tz)


def test_does_not_repeat_only_the_day_the_promotion_starts():
    start = dt.datetime(2026, 6, 15, 0, 0, tzinfo=LONDON)  # local date 2026-06-15
    body = timed(startTime="10:00", durationInHours=24, repeatFrequency="DOES_NOT_REPEAT")
    body["startDate"] = int(start.timestamp() * 1000)
    assert applies(body, now=at(LONDON, 2026, 6, 15, 10, 0), timezone="Europe/London")
    assert applies(body, now=at(LONDON, 2026, 6, 16, 9, 59), timezone="Europe/London")
    assert not applies(body, now=at(LONDON, 2026, 6, 16, 10, 0), timezone="Europe/London")
    assert not applies(body, now=at(LONDON, 2026, 6, 17, 10, 30), timezone="Europe/London")
