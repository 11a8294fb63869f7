"""promotions/windows.py: the window of a limit, in the org's time zone, across month ends, week starts,
N-day cycles on both sides of their reference date, MOVING boundaries and DST changes; the same
windows from the SQL twin the redemption function uses (`redemption_window_v1`, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from promotions.windows import (
    LIFETIME,
    OVERALL,
    WindowRule,
    WindowRuleError,
    restriction_window_columns,
    window_at,
    window_rule,
)

UTC = dt.UTC
DAY = 86_400_000


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def ms(text: str) -> int:
    return int(utc(text).timestamp() * 1000)


def fixed(cycle: str, **config) -> dict:
    return {"window_type": "FIXED", "fixed_window_config": {"cycleType": cycle, **config}}


PROMOTION_START = utc("2026-01-01T00:00:00")

# (name, time zone, the limit's fields, the instant, first day, last day, start instant, end instant)
WINDOWS = [
    # Month ends: the 1st in the org's zone, whatever UTC says; DST inside the month.
    ("month: April begins at local midnight (Berlin, after DST)", "Europe/Berlin", fixed("CALENDAR_MONTH"),
     "2026-03-31T22:30:00", "2026-04-01", "2026-04-30", "2026-03-31T22:00:00", "2026-04-30T22:00:00"),
    ("month: 23:59 on the 31st is still March (Berlin), a 743-hour month", "Europe/Berlin", fixed("CALENDAR_MONTH"),
     "2026-03-31T21:59:00", "2026-03-01", "2026-03-31", "2026-02-28T23:00:00", "2026-03-31T22:00:00"),
    ("month: October ends at local midnight (New York, the night DST ends)", "America/New_York",
     fixed("CALENDAR_MONTH"),
     "2026-11-01T03:30:00", "2026-10-01", "2026-10-31", "2026-10-01T04:00:00", "2026-11-01T04:00:00"),
    ("month: February in Kolkata starts at 18:30 UTC", "Asia/Kolkata", fixed("CALENDAR_MONTH"),
     "2026-01-31T19:00:00", "2026-02-01", "2026-02-28", "2026-01-31T18:30:00", "2026-02-28T18:30:00"),
    # Week starts on weekStartDay.
    ("week from Monday, the 167-hour week of spring DST (Berlin)", "Europe/Berlin", fixed("WEEK", weekStartDay="MONDAY"),
     "2026-03-29T12:00:00", "2026-03-23", "2026-03-29", "2026-03-22T23:00:00", "2026-03-29T22:00:00"),
    ("week from Wednesday: Tuesday 23:00 is the week's last hour (New York, DST began)", "America/New_York",
     fixed("WEEK", weekStartDay="WEDNESDAY"),
     "2026-03-11T03:00:00", "2026-03-04", "2026-03-10", "2026-03-04T05:00:00", "2026-03-11T04:00:00"),
    ("week from Sunday: Sunday 00:00 Tokyo opens it", "Asia/Tokyo", fixed("WEEK", weekStartDay="SUNDAY"),
     "2026-12-05T15:00:00", "2026-12-06", "2026-12-12", "2026-12-05T15:00:00", "2026-12-12T15:00:00"),
    # N_DAY cycles, both directions from the reference date.
    ("7 days from 1 Jan: the second cycle begins 8 Jan", "UTC",
     fixed("N_DAY", refreshRate=7, cycleReferenceDate=ms("2026-01-01T00:00:00")),
     "2026-01-08T00:00:00", "2026-01-08", "2026-01-14", "2026-01-08T00:00:00", "2026-01-15T00:00:00"),
    ("7 days from 1 Jan: the first cycle's last minute", "UTC",
     fixed("N_DAY", refreshRate=7, cycleReferenceDate=ms("2026-01-01T00:00:00")),
     "2026-01-07T23:59:00", "2026-01-01", "2026-01-07", "2026-01-01T00:00:00", "2026-01-08T00:00:00"),
    ("7 days from 1 Jan: before the reference date, cycles run backwards", "UTC",
     fixed("N_DAY", refreshRate=7, cycleReferenceDate=ms("2026-01-01T00:00:00")),
     "2025-12-31T12:00:00", "2025-12-25", "2025-12-31", "2025-12-25T00:00:00", "2026-01-01T00:00:00"),
    ("10 days from the promotion's start, 1 Jan (no reference date), over spring DST (Berlin)", "Europe/Berlin",
     fixed("N_DAY", refreshRate=10),
     "2026-03-30T21:59:00", "2026-03-22", "2026-03-31", "2026-03-21T23:00:00", "2026-03-31T22:00:00"),
    ("3 days from a reference instant that is the day before in New York, backwards", "America/New_York",
     fixed("N_DAY", refreshRate=3, cycleReferenceDate=ms("2026-06-01T02:00:00")),
     "2026-05-29T12:00:00", "2026-05-28", "2026-05-30", "2026-05-28T04:00:00", "2026-05-31T04:00:00"),
    ("1-day cycles: the 23-hour day of spring DST (Berlin)", "Europe/Berlin", fixed("N_DAY", refreshRate=1),
     "2026-03-29T01:30:00", "2026-03-29", "2026-03-29", "2026-03-28T23:00:00", "2026-03-29T22:00:00"),
    ("1-day cycles: 01:30 EDT, the first of the two (New York, DST ends)", "America/New_York",
     fixed("N_DAY", refreshRate=1),
     "2026-11-01T05:30:00", "2026-11-01", "2026-11-01", "2026-11-01T04:00:00", "2026-11-02T05:00:00"),
    ("1-day cycles: 01:30 EST, the second, the same 25-hour day", "America/New_York", fixed("N_DAY", refreshRate=1),
     "2026-11-01T06:30:00", "2026-11-01", "2026-11-01", "2026-11-01T04:00:00", "2026-11-02T05:00:00"),
    # MOVING: the last N days, this one included.
    ("rolling 30 days: a use on 5 Jan still counts on 3 Feb (Berlin)", "Europe/Berlin",
     {"frequency": "DAYS", "min_time_between_repeat": 30 * DAY},
     "2026-02-03T22:59:00", "2026-01-05", "2026-02-03", "2026-01-04T23:00:00", "2026-02-03T23:00:00"),
    ("rolling 30 days: and drops out on 4 Feb", "Europe/Berlin", {"frequency": "DAYS", "min_time_between_repeat": 30 * DAY},
     "2026-02-03T23:00:00", "2026-01-06", "2026-02-04", "2026-01-05T23:00:00", "2026-02-04T23:00:00"),
    ("rolling 1 week over spring DST (New York)", "America/New_York", {"window_type": "MOVING", "frequency": "WEEKS"},
     "2026-03-10T12:00:00", "2026-03-04", "2026-03-10", "2026-03-04T05:00:00", "2026-03-11T04:00:00"),
    # CLASSIC with a frequency: cycles of it from the promotion's start.
    ("CLASSIC every 2 days from the start", "UTC",
     {"window_type": "CLASSIC", "frequency": "DAYS", "min_time_between_repeat": 2 * DAY},
     "2026-01-04T05:00:00", "2026-01-03", "2026-01-04", "2026-01-03T00:00:00", "2026-01-05T00:00:00"),
]  # fmt: skip


def rule_of(fields: dict) -> WindowRule:
    return window_rule(
        window_type=fields.get("window_type", ""),
        frequency=fields.get("frequency", ""),
        min_time_between_repeat=fields.get("min_time_between_repeat"),
        fixed_window_config=fields.get("fixed_window_config"),
    )


@pytest.mark.parametrize(
    "zone, fields, at, first, last, start, end",
    [case[1:] for case in WINDOWS],
    ids=[case[0] for case in WINDOWS],
)
def test_the_window_an_instant_falls_in(zone, fields, at, first, last, start, end):
    # when
    window = window_at(rule_of(fields), tz=ZoneInfo(zone), at=utc(at), promotion_start=PROMOTION_START)

    # then
    assert (window.first_day, window.last_day) == (dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    assert (window.start, window.end) == (utc(start), utc(end))
    moving = fields.get("window_type") == "MOVING" or ("frequency" in fields and "window_type" not in fields)
    # A fixed window's counter is its first day; a MOVING use is counted in its own day's bucket.
    assert window.key == (window.last_day if moving else window.first_day)


def test_the_promotion_start_anchors_n_day_cycles_in_the_org_zone():
    # given: the promotion starts 20 Mar 10:00 UTC (the 20th in Berlin too)
    rule = rule_of(fixed("N_DAY", refreshRate=10))
    start = utc("2026-03-20T10:00:00")

    # then: cycles of ten local days from the 20th, either side
    for at, first in (("2026-03-19T23:00:00", "2026-03-20"), ("2026-03-19T22:59:00", "2026-03-10")):
        window = window_at(rule, tz=ZoneInfo("Europe/Berlin"), at=utc(at), promotion_start=start)
        assert window.first_day == dt.date.fromisoformat(first), at


def test_a_lifetime_limit_has_one_window():
    window = window_at(
        OVERALL, tz=ZoneInfo("UTC"), at=utc("2026-05-01T00:00:00"), promotion_start=PROMOTION_START
    )
    assert (window.key, window.first_day, window.start, window.end) == (LIFETIME, None, None, None)


# --- Resolving the fields: defaults and units --------------------------------------------------------

RESOLVED = [
    ("nothing: lifetime", {}, OVERALL),
    ("DOES_NOT_REPEAT: lifetime", {"frequency": "DOES_NOT_REPEAT"}, OVERALL),
    ("frequency alone: MOVING one unit", {"frequency": "DAYS"}, WindowRule("MOVING", days=1)),
    ("WEEKS alone: MOVING 7 days", {"frequency": "WEEKS"}, WindowRule("MOVING", days=7)),
    ("frequency and minTimeBetweenRepeat: MOVING that long",
     {"frequency": "WEEKS", "min_time_between_repeat": 2 * 7 * DAY}, WindowRule("MOVING", days=14)),
    ("CLASSIC without frequency: lifetime", {"window_type": "CLASSIC"}, OVERALL),
    ("WEEK cycle", fixed("WEEK", weekStartDay="SUNDAY"), WindowRule("FIXED", "WEEK", days=7, week_start=6)),
    ("N_DAY with PROMOTION_CONFIG", fixed("N_DAY", refreshRate=5, cycleReferenceDateSource="PROMOTION_CONFIG"),
     WindowRule("FIXED", "N_DAY", days=5)),
]  # fmt: skip


@pytest.mark.parametrize("fields, expected", [c[1:] for c in RESOLVED], ids=[c[0] for c in RESOLVED])
def test_defaults(fields, expected):
    assert rule_of(fields) == expected


REFUSED = [
    ("minTimeBetweenRepeat without a unit", {"min_time_between_repeat": DAY}, "needs frequency"),
    ("not whole days", {"frequency": "DAYS", "min_time_between_repeat": DAY + 1}, "whole number"),
    ("not whole weeks", {"frequency": "WEEKS", "min_time_between_repeat": 3 * DAY}, "whole number"),
    ("zero", {"frequency": "DAYS", "min_time_between_repeat": 0}, "positive"),
    ("too long", {"frequency": "DAYS", "min_time_between_repeat": 4000 * DAY}, "at most"),
    ("MOVING without frequency", {"window_type": "MOVING"}, "needs frequency"),
    ("OVERALL with a frequency", {"window_type": "OVERALL", "frequency": "DAYS"}, "never resets"),
    ("FIXED without config", {"window_type": "FIXED"}, "required"),
    ("FIXED with frequency", {**fixed("CALENDAR_MONTH"), "frequency": "DAYS"}, "fixedWindowConfig"),
    ("config without FIXED", {"fixed_window_config": {"cycleType": "WEEK"}}, "only for windowType FIXED"),
    ("unknown cycle", fixed("YEAR"), "cycleType"),
    ("WEEK without weekStartDay", fixed("WEEK"), "weekStartDay"),
    ("N_DAY without refreshRate", fixed("N_DAY"), "refreshRate"),
    ("N_DAY refreshRate 0", fixed("N_DAY", refreshRate=0), "refreshRate"),
    ("reference date not ms", fixed("N_DAY", refreshRate=2, cycleReferenceDate="2026-01-01"), "epoch"),
    ("ISSUANCE_DATE", fixed("N_DAY", refreshRate=2, cycleReferenceDateSource="ISSUANCE_DATE"), "Earn and Code"),
    ("unknown key", fixed("CALENDAR_MONTH", resetHour=3), "unknown"),
    ("month with weekStartDay", fixed("CALENDAR_MONTH", weekStartDay="MONDAY"), "not for"),
]  # fmt: skip


@pytest.mark.parametrize("fields, fragment", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_cannot_be_counted_is_refused(fields, fragment):
    with pytest.raises(WindowRuleError, match=fragment):
        rule_of(fields)


# --- The SQL twin -----------------------------------------------------------------------------------


class _Limit:
    def __init__(self, fields: dict):
        self.window_type = fields.get("window_type", "")
        self.frequency = fields.get("frequency", "")
        self.min_time_between_repeat = fields.get("min_time_between_repeat")
        self.fixed_window_config = fields.get("fixed_window_config")


@pytest.mark.django_db
@pytest.mark.postgres_only
def test_the_sql_function_gives_the_same_windows():
    for name, zone, fields, at, *_ in WINDOWS:
        expected = window_at(rule_of(fields), tz=ZoneInfo(zone), at=utc(at), promotion_start=PROMOTION_START)
        columns = restriction_window_columns(_Limit(fields))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key, first_day, last_day FROM redemption_window_v1(%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    columns["window_kind"],
                    columns["window_cycle"],
                    columns["window_days"],
                    columns["window_week_start"],
                    columns["window_anchor_ms"],
                    PROMOTION_START,
                    zone,
                    utc(at),
                ],
            )
            assert cursor.fetchone() == (expected.key, expected.first_day, expected.last_day), name
