"""A promotion's performance page (its page's "Performance"): what it was given and redeemed, per day
and in all, its redemption rate, the stores and the API clients that redeemed it most, and the same
numbers as CSV.

Every read is a summary's or bounded (docs/marketer-guide.md, "A promotion's performance"):

- issued and earned: the promotion's tally (`PromotionTally`, one row; it keeps no days, so these are
  totals only);
- redeemed, reversed and discount, per day and in all: the promotion's `RedemptionDay` rows (closed
  days, materialised first as the dashboard does) and today's redemptions counted live;
- the top stores: no summary keeps tills, so the promotion's lines of the last `TOP_DAYS` days are
  counted per till code of their redemption (one aggregate: the promotion's line index, then each
  line's redemption by its key), and the codes found are joined to the org's tills and their stores
  (one look-up by the tills' unique (org, code) index). A redemption without a till code, or with a
  code that names no till of the org, counts under "No store recorded". At most `TOP_ROWS` rows;
- the top API clients: the same lines, per API client that sent the redemption.
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

from promotions.models import Organization, Promotion, PromotionType, Till
from promotions_site.admin_format import DEFAULT_PRECISION
from promotions_site.admin_scoping import sees_all_orgs, user_org_id
from promotions_site.csvexport import csv_lines
from redemptions.charts import redemptions_per_day_svg
from redemptions.models import RedemptionDay, RedemptionLine
from redemptions.selectors import DayRedemptions, PromotionActivity, promotion_activity_list
from redemptions.summaries import redemption_day_counts, redemption_days_refresh

WINDOW_DAYS = 90  # the chart's and the CSV's days: the promotion's, up to today, at most the last 90
TOP_DAYS = 30  # the top stores' and clients' days: the last 30, today included
TOP_ROWS = 10
CSV_COLUMNS = ["day", "issued", "earned", "redeemed", "reversed", "discount"]
CSV_STORE_COLUMNS = ["store", "store code", "redeemed", "reversed", "discount"]
NO_STORE = "No store recorded"


@dataclass(frozen=True)
class PerformanceDay:
    day: dt.date
    redeemed: int = 0
    reversed: int = 0
    discount: Decimal = Decimal(0)


@dataclass(frozen=True)
class StoreRow:
    """A store's redemptions of the promotion; `store_id` None for "No store recorded"."""

    store_id: int | None
    name: str
    code: str
    redeemed: int
    reversed: int
    discount: Decimal


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
    stores: list[StoreRow]
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
    return Performance(
        promotion, org, totals, days, _top_stores(org, promotion, today), _top_clients(org, promotion, today)
    )


def _recent_lines_by(org: Organization, promotion: Promotion, today: dt.date, key: str):
    """The promotion's lines of the last TOP_DAYS days, grouped by `key`: redeemed and reversed
    transactions, and the discount of the unreversed ones."""
    low = dt.datetime.combine(today - dt.timedelta(days=TOP_DAYS - 1), dt.time.min, tzinfo=org.tz)
    unreversed, reversed_ = Q(redemption__reversal__isnull=True), Q(redemption__reversal__isnull=False)
    return (
        RedemptionLine.objects.filter(
            promotion=promotion, redemption__org=org, redemption__transaction_date__gte=low
        )
        .values(key)
        .annotate(
            redeemed=Count("redemption", distinct=True, filter=unreversed),
            reversed=Count("redemption", distinct=True, filter=reversed_),
            discount=Sum("discount", filter=unreversed),
        )
    )


def _top_stores(org: Organization, promotion: Promotion, today: dt.date) -> list[StoreRow]:
    """The stores that redeemed the promotion most (see the module docstring). A redemption has one
    till, so a store's counts are its tills' counts added up."""
    per_till = list(_recent_lines_by(org, promotion, today, "redemption__till_code"))
    codes = {row["redemption__till_code"] for row in per_till if row["redemption__till_code"]}
    stores = {
        code: (store_id, name, store_code)
        for code, store_id, name, store_code in Till.objects.filter(org=org, code__in=codes).values_list(
            "code", "store_id", "store__name", "store__code"
        )
    }
    totals: dict[int | None, list] = {}
    for row in per_till:
        store_id, name, code = stores.get(row["redemption__till_code"], (None, NO_STORE, ""))
        counts = totals.setdefault(store_id, [name, code, 0, 0, Decimal(0)])
        counts[2] += row["redeemed"]
        counts[3] += row["reversed"]
        counts[4] += row["discount"] or Decimal(0)
    rows = [StoreRow(store_id, *counts) for store_id, counts in totals.items()]
    # Most redeemed first; then most reversed, most discount; "No store recorded" after a tie.
    rows.sort(
        key=lambda row: (
            -row.redeemed,
            -row.reversed,
            -row.discount,
            row.store_id is None,
            row.name,
            row.store_id or 0,
        )
    )
    return rows[:TOP_ROWS]


def _top_clients(org: Organization, promotion: Promotion, today: dt.date) -> list[ClientRow]:
    rows = _recent_lines_by(org, promotion, today, "redemption__api_client__username").order_by(
        "-redeemed", "-reversed", "redemption__api_client__username"
    )[:TOP_ROWS]
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
    """One row per day shown (issued and earned have no days: empty), then the all-time totals; then an
    empty row and the top stores, under their own header row."""
    precision = performance.org.rounding_precision
    for day in performance.days:
        yield [day.day.isoformat(), None, None, day.redeemed, day.reversed, _rounded(day.discount, precision)]
    totals = performance.totals
    yield [
        "total", totals.issued, totals.earned, totals.redeemed, totals.reversed,
        _rounded(totals.discount, precision),
    ]  # fmt: skip
    yield []
    yield CSV_STORE_COLUMNS
    for store in performance.stores:
        yield [store.name, store.code, store.redeemed, store.reversed, _rounded(store.discount, precision)]


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
        "top_days": TOP_DAYS,
        "window_days": WINDOW_DAYS,
    }
    return TemplateResponse(request, "admin/redemptions/promotion_performance.html", context)
