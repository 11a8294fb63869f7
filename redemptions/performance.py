"""A promotion's performance page (its page's "Performance"): what it was given and redeemed, per day
and in all, its redemption rate, the API clients that redeemed it most, and the same numbers as CSV.

Every read is a summary's or bounded (docs/marketer-guide.md, "A promotion's performance"):

- issued and earned: the promotion's tally (`PromotionTally`, one row; it keeps no days, so these are
  totals only);
- redeemed, reversed and discount, per day and in all: the promotion's `RedemptionDay` rows (closed
  days, materialised first as the dashboard does) and today's redemptions counted live;
- the top API clients: a redemption records neither its store nor its till, only the API client
  that sent it; no summary keeps clients, so they are counted from the promotion's lines of the last
  `TOP_CLIENTS_DAYS` days (the promotion's line index, then each line's redemption), at most
  `TOP_CLIENTS` rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from promotions.models import Organization, Promotion, PromotionType
from promotions_site.admin_format import DEFAULT_PRECISION
from promotions_site.admin_scoping import sees_all_orgs, user_org_id
from promotions_site.csvexport import csv_lines
from redemptions.charts import redemptions_per_day_svg
from redemptions.models import RedemptionDay, RedemptionLine
from redemptions.selectors import DayRedemptions, PromotionActivity, promotion_activity_list
from redemptions.summaries import redemption_day_counts, redemption_days_refresh

WINDOW_DAYS = 90  # the chart's and the CSV's days: the promotion's, up to today, at most the last 90
TOP_CLIENTS_DAYS = 30
TOP_CLIENTS = 10
CSV_COLUMNS = ["day", "issued", "earned", "redeemed", "reversed", "discount"]


@dataclass(frozen=True)
class PerformanceDay:
    day: dt.date
    redeemed: int = 0
    reversed: int = 0
    discount: Decimal = Decimal(0)


@dataclass(frozen=True)
class ClientRow:
    name: str
    redeemed: int
    reversed: int
    discount: Decimal


@dataclass
class Performance:
    promotion: Promotion
    org: Organization
    totals: PromotionActivity
    days: list[PerformanceDay]
    clients: list[ClientRow]

    @property
    def last_day(self) -> dt.date | None:
        return self.days[-1].day if self.days else None

    @property
    def given(self) -> int:
        return self.totals.issued + self.totals.earned

    @property
    def rate(self) -> Decimal | None:
        """Redeemed transactions per instance given (issued + earned), as a percentage with one
        decimal; None for a POS or CODE promotion (redeemed without an instance) and when none was given."""
        if self.promotion.type not in PromotionType.WALLET_TYPES or not self.given:
            return None
        return (Decimal(100) * self.totals.redeemed / self.given).quantize(Decimal("0.1"), ROUND_HALF_UP)


def performance_window(
    org: Organization, promotion: Promotion, today: dt.date
) -> tuple[dt.date, dt.date] | None:
    """The days shown: from the promotion's first day to its last (its org's days), no later than
    today, at most the last WINDOW_DAYS of them. None before it starts."""
    first = timezone.localdate(promotion.start_date, timezone=org.tz)
    last = min(timezone.localdate(promotion.end_date, timezone=org.tz), today)
    if last < first:
        return None
    return max(first, last - dt.timedelta(days=WINDOW_DAYS - 1)), last


def promotion_performance(*, promotion: Promotion, today: dt.date | None = None) -> Performance:
    org = promotion.org
    tz = org.tz
    today = today or timezone.localdate(timezone=tz)
    redemption_days_refresh(org=org)  # the closed days missing (none once the hourly task has run)
    today_start = dt.datetime.combine(today, dt.time.min, tzinfo=tz)
    live = [
        row
        for row in redemption_day_counts(org=org, low=today_start, org_days=False)
        if row.promotion_id == promotion.pk
    ]
    [totals] = promotion_activity_list(org=org, promotions=[promotion], live=live)
    days: list[PerformanceDay] = []
    window = performance_window(org, promotion, today)
    if window is not None:
        first, last = window
        by_day = {
            row.day: row
            for row in RedemptionDay.objects.for_org(org).filter(
                promotion=promotion, day__gte=first, day__lte=last
            )
        }
        by_day.update({row.day: row for row in live if first <= row.day <= last})
        for offset in range((last - first).days + 1):
            day = first + dt.timedelta(days=offset)
            row = by_day.get(day)
            days.append(
                PerformanceDay(day, row.redeemed, row.reversed, row.discount) if row else PerformanceDay(day)
            )
    return Performance(promotion, org, totals, days, _top_clients(org, promotion, today))


def _top_clients(org: Organization, promotion: Promotion, today: dt.date) -> list[ClientRow]:
    low = dt.datetime.combine(today - dt.timedelta(days=TOP_CLIENTS_DAYS - 1), dt.time.min, tzinfo=org.tz)
    unreversed, reversed_ = Q(redemption__reversal__isnull=True), Q(redemption__reversal__isnull=False)
    rows = (
        RedemptionLine.objects.filter(
            promotion=promotion, redemption__org=org, redemption__transaction_date__gte=low
        )
        .values("redemption__api_client__username")
        .annotate(
            redeemed=Count("redemption", distinct=True, filter=unreversed),
            reversed=Count("redemption", distinct=True, filter=reversed_),
            discount=Sum("discount", filter=unreversed),
        )
        .order_by("-redeemed", "-reversed", "redemption__api_client__username")[:TOP_CLIENTS]
    )
    return [
        ClientRow(
            row["redemption__api_client__username"] or "(no API client: the admin or a job)",
            row["redeemed"],
            row["reversed"],
            row["discount"] or Decimal(0),
        )
        for row in rows
    ]


def _rounded(value: Decimal, precision: int | None) -> Decimal:
    places = DEFAULT_PRECISION if precision is None else int(precision)
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def performance_csv_rows(performance: Performance):
    """One row per day shown (issued and earned have no days: empty), then the all-time totals."""
    precision = performance.org.rounding_precision
    for day in performance.days:
        yield [day.day.isoformat(), None, None, day.redeemed, day.reversed, _rounded(day.discount, precision)]
    totals = performance.totals
    yield [
        "total", totals.issued, totals.earned, totals.redeemed, totals.reversed,
        _rounded(totals.discount, precision),
    ]  # fmt: skip


def promotion_performance_view(request, promotion_id: str):
    """GET: the page; `?format=csv`: its numbers as CSV. Needs view permission on promotions and
    redemptions (as the dashboard); a promotion of another org is not found."""
    user = request.user
    if not (user.has_perm("promotions.view_promotion") and user.has_perm("redemptions.view_redemption")):
        raise PermissionDenied
    promotions = Promotion.objects.select_related("org")
    if not sees_all_orgs(request):
        promotions = (
            promotions.filter(org_id=user_org_id(request)) if user_org_id(request) else promotions.none()
        )
    promotion = promotions.filter(pk=promotion_id).first()
    if promotion is None:
        raise Http404("No such promotion.")
    performance = promotion_performance(promotion=promotion)
    if request.GET.get("format") == "csv":
        response = StreamingHttpResponse(
            csv_lines(CSV_COLUMNS, performance_csv_rows(performance)), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="promotion-{promotion.pk}-performance.csv"'
        return response
    chart_days = [DayRedemptions(day.day, day.redeemed, day.reversed) for day in performance.days]
    context = {
        **admin.site.each_context(request),
        "title": f"Performance: {promotion.name}",
        "promotion": promotion,
        "org": promotion.org,
        "performance": performance,
        "chart": redemptions_per_day_svg(chart_days, x_title=f"Transaction date ({promotion.org.timezone})")
        if chart_days
        else None,
        "top_clients_days": TOP_CLIENTS_DAYS,
        "window_days": WINDOW_DAYS,
    }
    return TemplateResponse(request, "admin/redemptions/promotion_performance.html", context)
