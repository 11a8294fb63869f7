"""Reads of recorded redemptions, scoped to the caller's org."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import operator
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, Max, OuterRef, Q, QuerySet, Sum
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from promotions.models import Organization, Promotion, PromotionRestriction
from promotions_site.errors import ErrorCode, PromotionError
from redemptions.cart_locks import cart_locks_release_expired
from redemptions.filters import RedemptionLineFilter
from redemptions.models import (
    CartLock,
    Redemption,
    RedemptionCounter,
    RedemptionDay,
    RedemptionLine,
    RedemptionReversal,
)
from redemptions.summaries import redemption_day_counts
from wallets.models import Customer, PromotionTally
from wallets.selectors import customers_matching

# What a record of the list reads: the line, its redemption, the promotion and the recording client.
# Leaves out the stored response body and the promotions' condition/action JSON.
REDEMPTION_RECORD_FIELDS = (
    "level",
    "sku",
    "promotion_id",
    "earned_promotion_id",
    "redemption_count",
    "discount",
    "discount_applied_on_quantity",
    "promotion_applied_on_quantity",
    "redemption__org_id",
    "redemption__customer_id",
    "redemption__transaction_identifier",
    "redemption__transaction_number",
    "redemption__transaction_date",
    "redemption__amount",
    "redemption__api_client__username",
    "promotion__name",
    "promotion__message_label",
    "promo_code__code",
)
# Lines fetched per round trip by the export.
EXPORT_CHUNK_SIZE = 2000


@dataclass(frozen=True)
class RedemptionLinePage:
    """One page of the list, the number of lines matching the filters on every page, and the cursor
    of the page after it (None when this page is the last, as far as it can tell)."""

    lines: list[RedemptionLine]
    total: int
    next_cursor: str | None = None


# Below this offset a page is read forwards whatever the total; beyond it, a page in the second half
# of the list is read backwards from its end (OFFSET then walks the shorter way).
BACKWARDS_FROM_OFFSET = 1000
# Filters the daily summaries count by: with no other filter the total comes from them.
SUMMARY_FILTERS = frozenset({"promotionId", "includeReversed"})


def _redemption_filterset(org: Organization, params: Mapping) -> RedemptionLineFilter:
    filterset = RedemptionLineFilter(params, queryset=RedemptionLine.objects.filter(redemption__org=org))
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset


def _redemption_lines(org: Organization, params: Mapping):
    """The org's lines matching the filters of `RedemptionLineFilter`; ValidationError for a bad value."""
    return _redemption_filterset(org, params).qs


def cursor_encode(line: RedemptionLine, total: int) -> str:
    """The cursor after `line`: its transaction date (epoch microseconds), its id and the list's total
    as the walk's first page counted it, as URL-safe text."""
    when = line.redemption.transaction_date
    micros = (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{micros}.{line.pk}.{total}".encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[dt.datetime, int, int | None]:
    """(transaction date, line id, total) of a cursor (the total None in a cursor without one);
    ValidationError (400) for one this list did not give."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        parts = [int(part) for part in text.split(".")]
        if len(parts) not in (2, 3):
            raise ValueError(text)
        micros, line_id = parts[:2]
        total = parts[2] if len(parts) == 3 else None
        when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    except (ValueError, UnicodeDecodeError, OverflowError, binascii.Error) as error:
        raise ValidationError({"cursor": ["Not a cursor of this list."]}) from error
    if not 0 < line_id < 2**63 or (total is not None and not 0 <= total < 2**63):
        raise ValidationError({"cursor": ["Not a cursor of this list."]})
    return when, line_id, total


def _summary_total(org: Organization, filterset: RedemptionLineFilter) -> int | None:
    """The total from the daily summaries when the only filters are `promotionId` and
    `includeReversed` (None otherwise): the materialised days' lines, plus the lines after the last
    materialised day counted live (today's, once the hourly task has run). Two queries, neither
    reading more than a day's redemptions."""
    data = filterset.form.cleaned_data
    # Identity, not equality: customerId 0 is a filter (matching nothing), not an absent one.
    if any(value is not None and value != "" and value is not False
           for name, value in data.items() if name not in SUMMARY_FILTERS):  # fmt: skip
        return None
    promotion_id = data.get("promotionId") or None
    own = Q(promotion_id=promotion_id) if promotion_id else Q(promotion__isnull=True)
    closed = (
        RedemptionDay.objects.for_org(org)
        .filter(Q(promotion__isnull=True) | own)
        .aggregate(
            last=Max("day", filter=Q(promotion__isnull=True)),
            lines=Sum("lines", filter=own),
            reversed_lines=Sum("reversed_lines", filter=own),
        )
    )
    total = (closed["lines"] or 0) + ((closed["reversed_lines"] or 0) if data.get("includeReversed") else 0)
    live = filterset.qs
    if closed["last"] is not None:
        since = dt.datetime.combine(closed["last"] + dt.timedelta(days=1), dt.time.min, tzinfo=org.tz)
        live = live.filter(redemption__transaction_date__gte=since)
    return total + live.count()


def redemption_line_list(
    *,
    org: Organization,
    params: Mapping,
    limit: int,
    page_number: int,
    descending: bool,
    cursor: str | None = None,
) -> RedemptionLinePage:
    """The org's redemption lines matching the filters of `RedemptionLineFilter`, one page.

    Ordered by transaction date, then by line id (both in the requested direction), a total order,
    so consecutive pages never overlap nor skip a line. Each line carries `is_reversed`. Lines of
    reversed redemptions are left out unless `includeReversed` is true.

    The page is `page_number` (OFFSET `limit * page_number`) or, with `cursor` (the `next_cursor` of
    the page before), the `limit` lines after the cursor: a keyset read, as cheap at the millionth
    line as at the first. A deep numbered page in the second half of the list is read backwards
    from the end, so the last page costs what the first does.

    A page asked by cursor answers the total its cursor carries: the one the walk's first page
    counted (the cursor passes it on), so a walk costs one count, not one per page. Otherwise the
    total is told by the page itself when it is short (a non-empty page shorter than `limit`, or an
    empty first page); else, with no filter but `promotionId` and `includeReversed`, it comes
    from the daily summaries (`_summary_total`); else it is a COUNT of the matching lines.

    Raises ValidationError (400) for a malformed filter value or cursor.
    """
    filterset = _redemption_filterset(org, params)
    lines = filterset.qs
    direction = "-" if descending else ""
    order = (f"{direction}redemption__transaction_date", f"{direction}id")
    records = redemption_records(lines)
    offset = 0 if cursor else limit * page_number
    total = carried = None
    if cursor:
        when, line_id, carried = cursor_decode(cursor)
        if descending:
            after = Q(redemption__transaction_date__lt=when) | Q(
                redemption__transaction_date=when, id__lt=line_id
            )
            records = records.filter(after, redemption__transaction_date__lte=when)
        else:
            after = Q(redemption__transaction_date__gt=when) | Q(
                redemption__transaction_date=when, id__gt=line_id
            )
            records = records.filter(after, redemption__transaction_date__gte=when)
    elif offset >= BACKWARDS_FROM_OFFSET:
        total = _summary_total(org, filterset)
    if total is not None and offset >= total:
        page = []
    elif total is not None and offset > total // 2:
        backwards = ("" if descending else "-") + order[0].lstrip("-"), ("" if descending else "-") + "id"
        count = min(limit, total - offset)
        start = total - offset - count
        page = list(records.order_by(*backwards)[start : start + count])[::-1]
    else:
        page = list(records.order_by(*order)[offset : offset + limit])
    if carried is not None:
        total = carried
    elif total is None:
        # A page that ends before `limit` rows (and is not past the end) is the last one: it tells the total.
        page_is_last = 0 < len(page) < limit or (not page and page_number == 0 and not cursor)
        if page_is_last and not cursor:
            total = offset + len(page)
        else:
            total = _summary_total(org, filterset)
            if total is None:
                total = lines.count()
    next_cursor = cursor_encode(page[-1], total) if len(page) == limit else None
    return RedemptionLinePage(lines=page, total=total, next_cursor=next_cursor)


def redemption_records(lines: QuerySet[RedemptionLine]) -> QuerySet[RedemptionLine]:
    """Lines ready for `REDEMPTION_LIST_RECORD`: their joins, only the fields it reads, `is_reversed`."""
    return (
        lines.select_related("redemption__api_client", "promotion", "promo_code")
        .only(*REDEMPTION_RECORD_FIELDS)
        # A LEFT JOIN (one reversal per redemption at most), probed per row: an EXISTS here is planned
        # as a hash of every reversal of the org, built for each page.
        .annotate(
            is_reversed=ExpressionWrapper(Q(redemption__reversal__isnull=False), output_field=BooleanField())
        )
    )


# --- The admin: the audit list's filters, CSV export and dashboard -----------------------------------------


# The order of `redemptions_of_promotion`: the audit list's (transaction date, then id, newest first),
# read from the promotion's rows, whose index (promotion, transaction date, redemption) holds it.
OF_PROMOTION_ORDERING = ("-promotions_redeemed__transaction_date", "-promotions_redeemed__redemption_id")


def redemptions_of_promotion(redemptions: QuerySet[Redemption], promotion_id: str) -> QuerySet[Redemption]:
    """The `redemptions` that redeemed the promotion (by one line of it or several), each once: joined
    to their `RedemptionPromotion` row. Ordered by `OF_PROMOTION_ORDERING` (the same order as the
    redemptions' own transaction date and id), a page reads a hundred entries of the promotion's
    index, however rare the promotion; ordered by the redemption's columns, the planner would
    walk the org's transactions to find the promotion's (or sort all of them)."""
    return redemptions.filter(promotions_redeemed__promotion_id=promotion_id)


def redemptions_filtered(
    *, org: Organization, filters: Mapping[str, str], tz: dt.tzinfo
) -> QuerySet[Redemption]:
    """The org's redemptions as the admin's audit list filters them, for its export job: `promotion`
    (transactions with a line of it), `customer` (an id), `status` (`reversed` or `not_reversed`),
    `date_from` and `date_to` (transaction dates, both days included, in `tz`) and `q` (an exact
    transactionIdentifier or transactionNumber, or a customer's id, mobile, email or externalId).
    The values are those the list accepted; an unknown `status` filters nothing."""
    redemptions = Redemption.objects.for_org(org)
    if filters.get("promotion"):
        lines = RedemptionLine.objects.filter(redemption=OuterRef("pk"), promotion_id=filters["promotion"])
        redemptions = redemptions.filter(Exists(lines))
    if filters.get("customer"):
        redemptions = redemptions.filter(customer_id=int(filters["customer"]))
    reversal = Exists(RedemptionReversal.objects.filter(redemption=OuterRef("pk")))
    if filters.get("status") == "reversed":
        redemptions = redemptions.filter(reversal)
    elif filters.get("status") == "not_reversed":
        redemptions = redemptions.filter(~reversal)
    if filters.get("date_from"):
        start = dt.datetime.combine(dt.date.fromisoformat(filters["date_from"]), dt.time.min, tz)
        redemptions = redemptions.filter(transaction_date__gte=start)
    if filters.get("date_to"):
        last = dt.date.fromisoformat(filters["date_to"])
        if last < dt.date.max:
            after = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tz)
            redemptions = redemptions.filter(transaction_date__lt=after)
    term = (filters.get("q") or "").strip()
    if term:
        customers = list(customers_matching(value=term, org_id=org.pk).values_list("pk", flat=True)[:100])
        redemptions = redemptions.filter(
            Q(transaction_identifier=term) | Q(transaction_number=term) | Q(customer_id__in=customers)
        )
    return redemptions


@dataclass(frozen=True)
class PromotionActivity:
    """What happened to a promotion (or, with `promotion` None, to the whole org).

    `redeemed` counts the transactions (redemptions) that redeemed it and are not reversed,
    `reversed` those reversed since, `discount` the discount of the unreversed ones.
    """

    promotion: Promotion | None
    issued: int = 0
    earned: int = 0
    redeemed: int = 0
    reversed: int = 0
    discount: Decimal = Decimal(0)


def _today_start(org: Organization) -> dt.datetime:
    """Where the days not materialised begin, once the org's days are caught up: its today."""
    return dt.datetime.combine(timezone.localdate(timezone=org.tz), dt.time.min, tzinfo=org.tz)


def redemption_days_live(*, org: Organization) -> list[RedemptionDay]:
    """The org's and its promotions' counts of today and later, counted from the tables (one indexed
    range over today's redemptions): the part of the dashboard no summary holds yet. Computed once
    per page and handed to the reads below."""
    return redemption_day_counts(org=org, low=_today_start(org))


def promotion_activity_list(
    *, org: Organization, promotions: Sequence[Promotion], live: list[RedemptionDay] | None = None
) -> list[PromotionActivity]:
    """The activity of each of the org's `promotions`, in their order, from counters rather than the
    big tables: the promotions' tallies (instances issued and earned), their materialised days, and
    today's redemptions counted live. A fixed number of queries, however many promotions or rows.

    The org's closed days must be materialised first (`redemption_days_refresh`, as the dashboard
    does): a day missing would count as nothing. The same holds for the two reads below."""
    ids = [promotion.pk for promotion in promotions if promotion.org_id == org.pk]
    if not ids:
        return []
    live_since = _today_start(org)
    tallies = {
        tally.promotion_id: tally
        for tally in PromotionTally.objects.for_org(org).filter(promotion_id__in=ids)
    }
    redeemed: dict[str, dict] = defaultdict(lambda: {"redeemed": 0, "reversed": 0, "discount": Decimal(0)})
    closed = (
        RedemptionDay.objects.for_org(org)
        .filter(promotion_id__in=ids)
        .values("promotion_id")
        .annotate(redeemed=Sum("redeemed"), reversed=Sum("reversed"), discount=Sum("discount"))
        .order_by()
    )
    if live is None:
        live = redemption_day_counts(org=org, low=live_since, org_days=False)
    live = [row for row in live if row.promotion_id is not None and row.promotion_id in ids]
    for row in [
        *closed,
        *(
            {
                "promotion_id": r.promotion_id,
                "redeemed": r.redeemed,
                "reversed": r.reversed,
                "discount": r.discount,
            }
            for r in live
        ),
    ]:
        counts = redeemed[row["promotion_id"]]
        for name in ("redeemed", "reversed", "discount"):
            counts[name] += row[name] or 0
    activity = []
    for promotion in promotions:
        if promotion.pk not in ids:
            continue
        tally, lines = tallies.get(promotion.pk), redeemed[promotion.pk]
        activity.append(
            PromotionActivity(
                promotion=promotion,
                issued=tally.issued if tally else 0,
                earned=tally.earned if tally else 0,
                redeemed=lines["redeemed"],
                reversed=lines["reversed"],
                discount=lines["discount"],
            )
        )
    return activity


def org_activity_totals(*, org: Organization, live: list[RedemptionDay] | None = None) -> PromotionActivity:
    """The org's totals: a transaction that redeemed two promotions counts once here. From the
    tallies, the org's materialised days and today's redemptions counted live."""
    live_since = _today_start(org)
    instances = PromotionTally.objects.for_org(org).aggregate(issued=Sum("issued"), earned=Sum("earned"))
    closed = (
        RedemptionDay.objects.for_org(org)
        .filter(promotion__isnull=True)
        .aggregate(redeemed=Sum("redeemed"), reversed=Sum("reversed"), discount=Sum("discount"))
    )
    if live is None:
        live = redemption_day_counts(org=org, low=live_since, promotion_days=False)
    live = [row for row in live if row.promotion_id is None]
    return PromotionActivity(
        promotion=None,
        issued=instances["issued"] or 0,
        earned=instances["earned"] or 0,
        redeemed=(closed["redeemed"] or 0) + sum(row.redeemed for row in live),
        reversed=(closed["reversed"] or 0) + sum(row.reversed for row in live),
        discount=(closed["discount"] or Decimal(0)) + sum((row.discount for row in live), Decimal(0)),
    )


@dataclass(frozen=True)
class DayRedemptions:
    """The redemptions of one day (by transaction date, in the org's time zone)."""

    day: dt.date
    redeemed: int = 0
    reversed: int = 0


def redemptions_per_day(
    *,
    org: Organization,
    days: int,
    promotion: Promotion | None = None,
    today: dt.date | None = None,
    live: list[RedemptionDay] | None = None,
) -> list[DayRedemptions]:
    """The org's redemptions per day over the last `days` days up to `today` (the org's today by
    default), every day present (zero when nothing happened), oldest first. Days are the org's local
    days. `reversed` counts the transactions of that day reversed since; `redeemed` the others. With
    `promotion`, only the transactions that redeemed it. The closed days from their summaries, the
    days not materialised (today) counted live.
    """
    tz = org.tz
    today = today or timezone.localdate(timezone=tz)
    first = today - dt.timedelta(days=days - 1)
    rows = RedemptionDay.objects.for_org(org).filter(day__gte=first, day__lte=today)
    rows = rows.filter(promotion=promotion) if promotion is not None else rows.filter(promotion__isnull=True)
    by_day = {row.day: row for row in rows}
    wanted = promotion.pk if promotion is not None else None
    if live is not None:  # today (and later), counted once for the whole page
        by_day.update(
            {row.day: row for row in live if row.promotion_id == wanted and first <= row.day <= today}
        )
        live_from = _today_start(org).date()
    missing = [
        day
        for day in (first + dt.timedelta(days=n) for n in range(days))
        if day not in by_day and (live is None or day < live_from)
    ]
    if missing:
        low = dt.datetime.combine(missing[0], dt.time.min, tzinfo=tz)
        high = dt.datetime.combine(missing[-1] + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
        counted = redemption_day_counts(
            org=org, low=low, high=high, org_days=promotion is None, promotion_days=promotion is not None
        )
        for row in counted:
            if row.promotion_id == wanted and row.day in missing:
                by_day[row.day] = row
    result = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        row = by_day.get(day)
        result.append(
            DayRedemptions(day=day, redeemed=row.redeemed if row else 0, reversed=row.reversed if row else 0)
        )
    return result


def redemption_line_iter(
    *,
    org: Organization,
    start: dt.datetime,
    end: dt.datetime,
    include_reversed: bool,
    chunk_size: int = EXPORT_CHUNK_SIZE,
) -> Iterator[RedemptionLine]:
    """Every line of the org's redemptions whose transaction date is within [start, end] (both
    inclusive, `end` to its whole millisecond, as the list's endDate), oldest first, then by line id.

    The same filters as the list (`RedemptionLineFilter`), so the export and the API agree on what a
    range and "reversed" mean. Lines are fetched `chunk_size` at a time: on PostgreSQL through a
    server-side cursor (inside a transaction, so the server streams rather than materializes the
    result), elsewhere by the driver's cursor; memory does not grow with the number of lines.
    Raises ValidationError for a bound outside 1970 to 9999.
    """
    params = {
        "startDateISO": start.isoformat(),
        "endDateISO": end.isoformat(),
        "includeReversed": "true" if include_reversed else "false",
    }
    lines = redemption_records(_redemption_lines(org, params)).order_by("redemption__transaction_date", "id")
    return _stream(lines, chunk_size)


def _stream(lines, chunk_size: int) -> Iterator[RedemptionLine]:
    with transaction.atomic():
        yield from lines.iterator(chunk_size=chunk_size)


# --- Limit usage shown in the wallet -----------------------------------------------------------------


def _kpi_aggregates() -> dict:
    return {
        PromotionRestriction.Kpi.REDEMPTION: Sum("redemption_count"),
        PromotionRestriction.Kpi.TRANSACTION: Count("redemption", distinct=True),
        PromotionRestriction.Kpi.DISCOUNT: Sum("discount"),
    }


def _used(lines: QuerySet[RedemptionLine], group_by: str, keys: set) -> dict:
    """{key: {kpi: used}} over the lines of unreversed redemptions, one query (none when no keys)."""
    if not keys:
        return {}
    rows = (
        lines.filter(**{f"{group_by}__in": keys}, redemption__reversal__isnull=True)
        .values(group_by)
        .annotate(**_kpi_aggregates())
    )
    return {row[group_by]: {kpi: Decimal(row[kpi] or 0) for kpi in PromotionRestriction.Kpi} for row in rows}


def restriction_usage_count(customer: Customer, keys_by_level: dict[str, set]) -> dict[str, dict]:
    """What the wallet shows as used of each limit, registered with `wallets.selectors` in
    RedemptionsConfig.ready: {level: {key: {kpi: used}}} for the Customer level (this customer's lines
    of each promotion), the Promotion level (every line of each promotion) and the Earn level (the
    lines that redeemed each instance). REDEMPTION sums redemptionCount, TRANSACTION counts distinct
    redemptions, DISCOUNT sums the discount; lines of reversed redemptions do not count.
    """
    Level = PromotionRestriction.Level
    lines = RedemptionLine.objects.all()
    return {
        Level.CUSTOMER: _used(
            lines.filter(redemption__customer=customer),
            "promotion_id",
            keys_by_level.get(Level.CUSTOMER, set()),
        ),
        Level.PROMOTION: _used(lines, "promotion_id", keys_by_level.get(Level.PROMOTION, set())),
        Level.EARN: _used(lines, "earned_promotion_id", keys_by_level.get(Level.EARN, set())),
    }


# --- Pending carts (cart locks) ---------------------------------------------------------------------


@dataclass(frozen=True)
class PendingCart:
    """One open cart as `pending_carts` lists it: its evaluation, its window and what it applied
    (`applied`: the evaluation's record, each with the promotion's `name` added)."""

    evaluation_id: str
    start: dt.datetime
    valid_till: dt.datetime
    applied: list[dict]


def pending_carts(
    *, org: Organization, customer_id: int, now: dt.datetime | None = None
) -> list[PendingCart]:
    """The customer's open carts, oldest first (`GET .../customer/{customerId}/evaluations/pending_carts`).
    Its carts past their time are released first (release on read), so none is listed that no longer
    holds anything. Errors: 404 the org has no such customer."""
    now = now or timezone.now()
    if not Customer.objects.filter(org=org, pk=customer_id).exists():
        raise PromotionError(ErrorCode.NOT_FOUND, "Customer not found")
    cart_locks_release_expired(now=now, org=org, customer_id=customer_id)
    locks = list(
        CartLock.objects.filter(
            org=org, customer_id=customer_id, status=CartLock.Status.OPEN, expires_at__gt=now
        )
        .select_related("evaluation")
        .order_by("created_at", "pk")
    )
    ids = {entry["promotionId"] for lock in locks for entry in lock.evaluation.applied}
    names = dict(Promotion.objects.filter(org=org, pk__in=ids).values_list("pk", "name"))
    return [
        PendingCart(
            evaluation_id=lock.pk,
            start=lock.created_at,
            valid_till=lock.expires_at,
            applied=[
                {**entry, "name": names.get(entry["promotionId"], "")} for entry in lock.evaluation.applied
            ],
        )
        for lock in locks
    ]


def _window_condition(ranges: list[tuple[int, str, dt.date, dt.date]]) -> Q:
    """The counters of each (restriction id, scope) with a key in its range; ranges alike (every
    lifetime limit's, one month's) make one `IN` term, so an org with many limits makes a short query."""
    alike: dict[tuple[str, dt.date, dt.date], list[int]] = defaultdict(list)
    for restriction_id, scope, first, last in ranges:
        alike[scope, first, last].append(restriction_id)
    return functools.reduce(
        operator.or_,
        (
            Q(restriction_id__in=ids, scope=scope, window_start__gte=first, window_start__lte=last)
            for (scope, first, last), ids in alike.items()
        ),
    )


def window_used_reserved(
    ranges: list[tuple[int, str, dt.date, dt.date]],
) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """{(restriction id, scope): (used, reserved)} summed over each range of window keys (inclusive),
    one query: what redemptions used and what open carts reserve of a limit in its window
    (docs/cart-locks.md)."""
    if not ranges:
        return {}
    rows = (
        RedemptionCounter.objects.filter(_window_condition(ranges))
        .values("restriction_id", "scope")
        .annotate(total=Sum("used"), held=Sum("reserved"))
        .values_list("restriction_id", "scope", "total", "held")
    )
    return {(restriction_id, scope): (total, held) for restriction_id, scope, total, held in rows}


def window_buckets(
    ranges: list[tuple[int, str, dt.date, dt.date]],
) -> dict[tuple[int, str], dict[dt.date, Decimal]]:
    """{(restriction id, scope): {window key: used + reserved}} for the keys in each range
    (inclusive), one query: what a MOVING limit's day buckets hold, used by redemptions or reserved by
    open carts (docs/cart-locks.md; `reserved` is 0 without cart locks)."""
    if not ranges:
        return {}
    buckets: dict[tuple[int, str], dict[dt.date, Decimal]] = defaultdict(dict)
    rows = RedemptionCounter.objects.filter(_window_condition(ranges)).values_list(
        "restriction_id", "scope", "window_start", "used", "reserved"
    )
    for restriction_id, scope, key, used, reserved in rows:
        buckets[restriction_id, scope][key] = used + reserved
    return buckets


def builder_values_seen(org_id: int | None, entity: str, query: str, attribute: str = "") -> list[str]:
    """Values of `entity` the org's redemptions and evaluations have seen, for the promotion builder's
    pickers (`promotions.builder_forms.values_seen`): SKUs of its recorded redemption lines containing
    `query`, and what the items and tenders of its latest evaluations name."""
    from promotions.builder_forms import EVALUATIONS_SCANNED, VALUES_MAX, _from_carts
    from redemptions.models import Evaluation, RedemptionLine

    found: list[str] = []
    if entity == "SKU":
        lines = RedemptionLine.objects.filter(redemption__org_id=org_id).exclude(sku="")
        if query:
            lines = lines.filter(sku__icontains=query)
        found.extend(lines.order_by("sku").values_list("sku", flat=True).distinct()[:VALUES_MAX])
    requests = (
        Evaluation.objects.filter(org_id=org_id).order_by("-created_at").values_list("request", flat=True)
    )
    found.extend(_from_carts(requests[:EVALUATIONS_SCANNED], entity, attribute))
    return found
