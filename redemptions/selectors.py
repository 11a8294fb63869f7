"""Reads of recorded redemptions, scoped to the caller's org."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from django.db import transaction
from rest_framework.exceptions import ValidationError

from promotions.models import Organization
from redemptions.filters import RedemptionLineFilter, reversal_exists
from redemptions.models import RedemptionLine

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
)
# Lines fetched per round trip by the export.
EXPORT_CHUNK_SIZE = 2000


@dataclass(frozen=True)
class RedemptionLinePage:
    """One page of the list and the number of lines matching the filters on every page."""

    lines: list[RedemptionLine]
    total: int


def _redemption_lines(org: Organization, params: Mapping):
    """The org's lines matching the filters of `RedemptionLineFilter`; ValidationError for a bad value."""
    filterset = RedemptionLineFilter(params, queryset=RedemptionLine.objects.filter(redemption__org=org))
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return filterset.qs


def _with_record_fields(lines):
    return (
        lines.select_related("redemption__api_client", "promotion")
        .only(*REDEMPTION_RECORD_FIELDS)
        .annotate(is_reversed=reversal_exists())
    )


def redemption_line_list(
    *, org: Organization, params: Mapping, limit: int, page_number: int, descending: bool
) -> RedemptionLinePage:
    """The org's redemption lines matching the filters of `RedemptionLineFilter`, one page.

    Ordered by transaction date, then by line id (both in the requested direction), a total order,
    so consecutive pages never overlap nor skip a line. Each line carries `is_reversed`. Lines of
    reversed redemptions are left out unless `includeReversed` is true.

    Two queries at most: the page (joins, O(limit) rows) and one COUNT, which is skipped when the
    page itself tells the total (a non-empty page shorter than `limit`, or an empty first page).

    Raises ValidationError (400) for a malformed filter value.
    """
    lines = _redemption_lines(org, params)
    direction = "-" if descending else ""
    offset = limit * page_number
    page = list(
        _with_record_fields(lines).order_by(f"{direction}redemption__transaction_date", f"{direction}id")[
            offset : offset + limit
        ]
    )
    # A page that ends before `limit` rows (and is not past the end) is the last one: it tells the total.
    page_is_last = 0 < len(page) < limit or (not page and page_number == 0)
    return RedemptionLinePage(lines=page, total=offset + len(page) if page_is_last else lines.count())


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
    lines = _with_record_fields(_redemption_lines(org, params)).order_by("redemption__transaction_date", "id")
    return _stream(lines, chunk_size)


def _stream(lines, chunk_size: int) -> Iterator[RedemptionLine]:
    with transaction.atomic():
        yield from lines.iterator(chunk_size=chunk_size)
