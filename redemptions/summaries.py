"""The daily summaries of redemptions (`RedemptionDay`): materialising the closed days, and counting
any range of days from the tables. The write path keeps a materialised day exact
(`redemptions.services`); the dashboard and the redemption list read the days from here."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from promotions.models import Organization
from redemptions.models import Redemption, RedemptionDay, RedemptionLine

REFRESH_DAYS_PER_TRANSACTION = 31  # days materialised per transaction (and per table lock)


def org_day(org: Organization, when: dt.datetime) -> dt.date:
    """The day `when` falls on in the org's time zone."""
    return timezone.localdate(when, timezone=org.tz)


def redemption_days_refresh(*, org: Organization, today: dt.date | None = None) -> int:
    """Materialise the org's days missing from its first transaction's day up to yesterday (its
    time zone; `today` for tests): one row for the org per day (zeros included) and one per
    promotion redeemed that day. The number of days written.

    Run by the periodic task and, on demand, before a read that needs the days. Each run of up to
    31 days is one transaction; on PostgreSQL it holds the table in SHARE ROW EXCLUSIVE mode while
    it counts, so a redemption being recorded on one of those days either committed before (and is
    counted) or updates the new rows after (`_redemption_days_apply`): none is lost or counted twice.
    """
    today = today or timezone.localdate(timezone=org.tz)
    first = (
        Redemption.objects.for_org(org)
        .order_by("transaction_date")
        .values_list("transaction_date", flat=True)
        .first()
    )
    if first is None:
        return 0
    start = org_day(org, first)
    if start >= today:
        return 0
    have = set(
        RedemptionDay.objects.filter(
            org=org, promotion__isnull=True, day__gte=start, day__lt=today
        ).values_list("day", flat=True)
    )
    missing = [
        day for day in (start + dt.timedelta(days=n) for n in range((today - start).days)) if day not in have
    ]
    written = 0
    for begin in range(0, len(missing), REFRESH_DAYS_PER_TRANSACTION):
        written += _redemption_days_write(org, missing[begin : begin + REFRESH_DAYS_PER_TRANSACTION])
    return written


def _redemption_days_write(org: Organization, days: list[dt.date]) -> int:
    tz = org.tz
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {RedemptionDay._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        days = sorted(
            set(days)
            - set(
                RedemptionDay.objects.filter(org=org, promotion__isnull=True, day__in=days).values_list(
                    "day", flat=True
                )
            )
        )
        if not days:
            return 0
        low = dt.datetime.combine(days[0], dt.time.min, tzinfo=tz)
        high = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        wanted = set(days)
        rows = {day: RedemptionDay(org=org, day=day) for day in days}  # the org's, zero until counted
        extra: list[RedemptionDay] = []
        for row in redemption_day_counts(org=org, low=low, high=high):
            if row.day not in wanted:
                continue
            if row.promotion_id is None:
                rows[row.day] = row
            else:
                extra.append(row)
        RedemptionDay.objects.bulk_create([*rows.values(), *extra], batch_size=2000)
    return len(days)


def redemption_day_counts(
    *,
    org: Organization,
    low: dt.datetime,
    high: dt.datetime | None = None,
    org_days: bool = True,
    promotion_days: bool = True,
) -> list[RedemptionDay]:
    """The counts of the org's days (`org_days`) and its promotions' days (`promotion_days`) for the
    transactions in [low, high) (no upper bound without `high`), counted from the tables, as unsaved
    RedemptionDay rows: one grouped query for each, over the range (the (org, transaction_date)
    index finds it)."""
    tz = org.tz
    unreversed, reversed_ = Q(redemption__reversal__isnull=True), Q(redemption__reversal__isnull=False)
    lines = RedemptionLine.objects.filter(redemption__org=org, redemption__transaction_date__gte=low)
    if high is not None:
        lines = lines.filter(redemption__transaction_date__lt=high)
    lines = lines.annotate(day=TruncDate("redemption__transaction_date", tzinfo=tz))
    aggregates = {
        "redeemed": Count("redemption", distinct=True, filter=unreversed),
        "reversed": Count("redemption", distinct=True, filter=reversed_),
        "discount": Sum("discount", filter=unreversed),
        "lines": Count("id", filter=unreversed),
        "reversed_lines": Count("id", filter=reversed_),
    }
    groupings = [("day",)] if org_days else []
    if promotion_days:
        groupings.append(("day", "promotion_id"))
    return [
        RedemptionDay(org=org, **{**row, "discount": row["discount"] or Decimal(0)})
        for grouping in groupings
        for row in lines.values(*grouping).annotate(**aggregates).order_by()
    ]
