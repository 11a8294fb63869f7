"""The window a limit (`promotionRestrictions`) is counted in: pure arithmetic, no ORM, no clock.

A limit's rule (`windowType`, `frequency`, `minTimeBetweenRepeat`, `fixedWindowConfig`) is read once
into a `WindowRule` (`window_rule`, which also refuses what cannot be counted), and `window_at` gives
the window an instant falls in, in the org's time zone. Windows are whole local days: a window is a
range of local dates [first_day, last_day], its instants [start, end) are those days' local midnights,
so a DST change moves the instants, never the days. The redemption service, the PL/pgSQL function
(`redemption_window_key_v1`, the same arithmetic in SQL), the evaluation and the wallet all use it;
docs/architecture.md ("Limits and their windows") has the rules and why.

- OVERALL (lifetime): one window for ever; its counter key is `LIFETIME`.
- FIXED: calendar cycles. CALENDAR_MONTH from the 1st; WEEK from `weekStartDay`; N_DAY every
  `refreshRate` days from `cycleReferenceDate` (default: the promotion's start), in both directions.
  The counter key is the cycle's first day.
- MOVING: the last N days up to and including the instant's day (N = `minTimeBetweenRepeat` in days).
  Counted in day buckets: the key a use is counted under is its own day; the window sums N buckets.
- CLASSIC (legacy): with `frequency` DAYS/WEEKS it is a FIXED N_DAY cycle of `minTimeBetweenRepeat`
  from the promotion's start; without, lifetime.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# The counter key of a lifetime limit (and the lock row of a MOVING limit's buckets): no real day.
LIFETIME = dt.date(1, 1, 1)
DAY_MS = 86_400_000
UNIT_MS = {"DAYS": DAY_MS, "WEEKS": 7 * DAY_MS}
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
CYCLE_TYPES = ("CALENDAR_MONTH", "WEEK", "N_DAY")
# A window longer than this is refused (a MOVING window sums one bucket per day of it).
WINDOW_DAYS_MAX = 3660
FIXED_CONFIG_KEYS = {
    "cycleType",
    "weekStartDay",
    "refreshRate",
    "cycleReferenceDate",
    "cycleReferenceDateSource",
}


class WindowRuleError(ValueError):
    """A limit's window fields that cannot be counted; the message names the field."""


@dataclass(frozen=True)
class WindowRule:
    """A limit's window, resolved: `kind` OVERALL, FIXED or MOVING.

    FIXED: `cycle` CALENDAR_MONTH, WEEK (`week_start` 0 = Monday) or N_DAY (`days`, from `anchor_ms`,
    an instant in epoch ms, or the promotion's start when None). MOVING: `days` long.
    """

    kind: str = "OVERALL"
    cycle: str = ""
    days: int = 0
    week_start: int = 0
    anchor_ms: int | None = None

    @property
    def resets(self) -> bool:
        return self.kind != "OVERALL"


OVERALL = WindowRule()


@dataclass(frozen=True)
class Window:
    """The window an instant falls in. `key`: the counter row the instant's use is counted in (the
    cycle's first day for FIXED, the day itself for MOVING, `LIFETIME` for OVERALL). `first_day` and
    `last_day` (inclusive) are local dates, `start`/`end` the instants [start, end); None for OVERALL."""

    key: dt.date
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


LIFETIME_WINDOW = Window(LIFETIME)


def _length_days(frequency: str, min_time_between_repeat: int | None) -> int:
    unit = UNIT_MS[frequency]
    if min_time_between_repeat is None:
        return unit // DAY_MS
    if min_time_between_repeat <= 0 or min_time_between_repeat % unit:
        raise WindowRuleError(
            f"minTimeBetweenRepeat must be a positive whole number of {frequency.lower()} in milliseconds "
            f"({unit} per {frequency[:-1].lower()}) with frequency {frequency}."
        )
    days = min_time_between_repeat // DAY_MS
    if days > WINDOW_DAYS_MAX:
        raise WindowRuleError(f"minTimeBetweenRepeat: at most {WINDOW_DAYS_MAX} days.")
    return days


def _fixed_config(config) -> WindowRule:
    if not isinstance(config, dict):
        raise WindowRuleError("fixedWindowConfig is required with windowType FIXED.")
    unknown = sorted(set(config) - FIXED_CONFIG_KEYS)
    if unknown:
        raise WindowRuleError(f"fixedWindowConfig: unknown field {unknown[0]}.")
    cycle = config.get("cycleType")
    if cycle not in CYCLE_TYPES:
        raise WindowRuleError(f"fixedWindowConfig.cycleType must be one of {', '.join(CYCLE_TYPES)}.")
    source = config.get("cycleReferenceDateSource", "PROMOTION_CONFIG")
    if source == "ISSUANCE_DATE":
        raise WindowRuleError(
            "fixedWindowConfig.cycleReferenceDateSource ISSUANCE_DATE is for Earn and Code limits, "
            "whose windows are not supported."
        )
    if source != "PROMOTION_CONFIG":
        raise WindowRuleError("fixedWindowConfig.cycleReferenceDateSource must be PROMOTION_CONFIG.")
    if cycle == "CALENDAR_MONTH":
        for name in ("weekStartDay", "refreshRate", "cycleReferenceDate"):
            if name in config:
                raise WindowRuleError(f"fixedWindowConfig.{name} is not for cycleType CALENDAR_MONTH.")
        return WindowRule("FIXED", cycle)
    if cycle == "WEEK":
        for name in ("refreshRate", "cycleReferenceDate"):
            if name in config:
                raise WindowRuleError(f"fixedWindowConfig.{name} is not for cycleType WEEK.")
        day = config.get("weekStartDay")
        if day not in WEEKDAYS:
            raise WindowRuleError(
                "fixedWindowConfig.weekStartDay (MONDAY to SUNDAY) is required with cycleType WEEK."
            )
        return WindowRule("FIXED", cycle, days=7, week_start=WEEKDAYS.index(day))
    if "weekStartDay" in config:
        raise WindowRuleError("fixedWindowConfig.weekStartDay is not for cycleType N_DAY.")
    rate = config.get("refreshRate")
    if type(rate) is not int or not 1 <= rate <= WINDOW_DAYS_MAX:
        raise WindowRuleError(
            f"fixedWindowConfig.refreshRate (days, 1 to {WINDOW_DAYS_MAX}) is required with cycleType N_DAY."
        )
    anchor = config.get("cycleReferenceDate")
    if anchor is not None and (type(anchor) is not int or not 0 <= anchor <= 253402300799999):
        raise WindowRuleError("fixedWindowConfig.cycleReferenceDate must be epoch milliseconds.")
    return WindowRule("FIXED", cycle, days=rate, anchor_ms=anchor)


def window_rule(
    *, window_type: str, frequency: str, min_time_between_repeat: int | None, fixed_window_config
) -> WindowRule:
    """A limit's window as stored (the API's fields), resolved. Raises WindowRuleError for what
    cannot be counted.

    Defaults: no `windowType` with `frequency` DAYS or WEEKS is MOVING (a window rolling from each
    use, as `minTimeBetweenRepeat` says); with no frequency (or DOES_NOT_REPEAT) it is OVERALL.
    `minTimeBetweenRepeat` is milliseconds, a positive whole number of the frequency's unit (a day is
    86400000, a week 604800000); omitted it is one unit; without a repeating frequency it is refused.
    """
    repeating = frequency in UNIT_MS
    if min_time_between_repeat is not None and not repeating:
        raise WindowRuleError("minTimeBetweenRepeat needs frequency DAYS or WEEKS (its unit).")
    if fixed_window_config is not None and window_type != "FIXED":
        raise WindowRuleError("fixedWindowConfig is only for windowType FIXED.")
    kind = window_type or ("MOVING" if repeating else "OVERALL")
    if kind == "OVERALL":
        if repeating:
            raise WindowRuleError(
                "windowType OVERALL never resets: frequency must be DOES_NOT_REPEAT or omitted."
            )
        return OVERALL
    if kind == "MOVING":
        if not repeating:
            raise WindowRuleError(
                "windowType MOVING needs frequency DAYS or WEEKS (and minTimeBetweenRepeat)."
            )
        return WindowRule("MOVING", days=_length_days(frequency, min_time_between_repeat))
    if kind == "FIXED":
        if repeating or min_time_between_repeat is not None:
            raise WindowRuleError(
                "windowType FIXED is set by fixedWindowConfig: frequency (other than DOES_NOT_REPEAT) "
                "and minTimeBetweenRepeat are not for it."
            )
        return _fixed_config(fixed_window_config)
    # CLASSIC: Capillary's legacy windows: cycles of the frequency from the promotion's start.
    if not repeating:
        return OVERALL
    return WindowRule("FIXED", "N_DAY", days=_length_days(frequency, min_time_between_repeat))


def window_rule_of(restriction, *, strict: bool = False) -> WindowRule:
    """`window_rule` of a limit (a PromotionRestriction or a RestrictionSpec). `strict`: raise
    WindowRuleError for one that does not resolve; else (a stored rule written before windows were
    checked) it counts over the whole history."""
    try:
        return window_rule(
            window_type=restriction.window_type,
            frequency=restriction.frequency,
            min_time_between_repeat=restriction.min_time_between_repeat,
            fixed_window_config=restriction.fixed_window_config,
        )
    except WindowRuleError:
        if strict:
            raise
        return OVERALL


def restriction_window_columns(restriction) -> dict:
    """The resolved window of a limit as the columns `PromotionRestriction.window_*` store it."""
    rule = window_rule_of(restriction)
    return {
        "window_kind": rule.kind,
        "window_cycle": rule.cycle,
        "window_days": rule.days,
        "window_week_start": rule.week_start,
        "window_anchor_ms": rule.anchor_ms,
    }


def window_rule_stored(restriction) -> WindowRule:
    """The window of a stored limit, from its resolved columns (what the SQL function reads too)."""
    if restriction.window_kind not in ("FIXED", "MOVING"):
        return OVERALL
    return WindowRule(
        restriction.window_kind,
        restriction.window_cycle,
        restriction.window_days,
        restriction.window_week_start,
        restriction.window_anchor_ms,
    )


def local_day(at: dt.datetime, tz: ZoneInfo) -> dt.date:
    return at.astimezone(tz).date()


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of a local day (a midnight that a DST change skips: the instant it would be
    at the offset before the change, which is the day's first instant)."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)


def _span(key: dt.date, first: dt.date, last: dt.date, tz: ZoneInfo) -> Window:
    return Window(
        key, first, last, local_midnight(first, tz), local_midnight(last + dt.timedelta(days=1), tz)
    )


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def window_at(rule: WindowRule, *, tz: ZoneInfo, at: dt.datetime, promotion_start: dt.datetime) -> Window:
    """The window `at` falls in, in `tz`."""
    if rule.kind == "OVERALL":
        return LIFETIME_WINDOW
    day = local_day(at, tz)
    if rule.kind == "MOVING":
        return _span(day, day - dt.timedelta(days=rule.days - 1), day, tz)
    if rule.cycle == "CALENDAR_MONTH":
        first = day.replace(day=1)
        return _span(first, first, _add_months(first, 1) - dt.timedelta(days=1), tz)
    if rule.cycle == "WEEK":
        first = day - dt.timedelta(days=(day.weekday() - rule.week_start) % 7)
        return _span(first, first, first + dt.timedelta(days=6), tz)
    if rule.anchor_ms is not None:
        anchor = local_day(dt.datetime.fromtimestamp(rule.anchor_ms / 1000, dt.UTC), tz)
    else:
        anchor = local_day(promotion_start, tz)
    first = anchor + dt.timedelta(days=((day - anchor).days // rule.days) * rule.days)
    return _span(first, first, first + dt.timedelta(days=rule.days - 1), tz)
