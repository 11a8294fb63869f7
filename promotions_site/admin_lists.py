"""What the admin's lists of big tables share: counts that do not read the whole table, and a date
range filter in place of the date hierarchy (whose year/month links need MIN/MAX over the table).

An admin of a big table sets `paginator = EstimatedCountPaginator` and `show_full_result_count =
False`, orders by an index (a test runs EXPLAIN on each), and filters dates with a `DateRangeFilter`.
"""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

# Above this many rows (as the planner estimates them) a list's count is the estimate; below, exact.
ESTIMATE_ABOVE = 10_000
# From this many rows in, a page is found by its keys first (`EstimatedCountPaginator.page`).
DEFERRED_FROM = 1_000


def planner_rows(queryset: QuerySet) -> int | None:
    """The planner's estimate of the rows `queryset` returns (PostgreSQL: EXPLAIN, nothing run); None
    on other databases."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """A paginator whose count is the planner's estimate when that is above ESTIMATE_ABOVE rows, and
    exact (COUNT) below: a list of millions of rows shows "about N" without counting them, a
    filtered list of a few hundred shows its exact number. With an estimate, any page number from 1
    is valid: a page past the real end is empty rather than an error."""

    estimated = False

    @cached_property
    def count(self) -> int:
        if isinstance(self.object_list, QuerySet):
            estimate = planner_rows(self.object_list)
            if estimate is not None and estimate > ESTIMATE_ABOVE:
                self.estimated = True
                return estimate
        return super().count

    def validate_number(self, number):
        if self.count and self.estimated:
            try:
                number = int(number)
            except (TypeError, ValueError):
                return super().validate_number(number)
            if number >= 1:
                return number
        return super().validate_number(number)

    def page(self, number):
        """The page's rows. Deep pages (from DEFERRED_FROM rows in) are found by their primary keys
        first, in a query that reads the ordering's index alone (an index-only scan when the index
        holds the primary key), then fetched by key: OFFSET no longer reads every row it skips. A
        page in the back half of the list is counted from its end and read backwards, so the last
        page costs what the first does. With an estimated count the two halves may overlap or leave
        a gap as large as the estimate's error, around the middle only; the last page is always
        the list's real last rows."""
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = self.object_list
        if not isinstance(rows, QuerySet) or bottom < DEFERRED_FROM or not rows.ordered:
            return self._get_page(rows[bottom : bottom + self.per_page], number, self)
        if self.estimated and bottom >= self.count:
            return self._get_page(rows.none(), number, self)  # past the estimated end: empty, unread
        pages = self.num_pages
        if pages / 2 < number <= pages:
            size = max(1, min(self.per_page, self.count - bottom))
            after = max(0, self.count - bottom - size)  # rows of the pages after this one
            keys = list(rows.reverse().values_list("pk", flat=True)[after : after + size])
        else:
            keys = list(rows.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(rows.filter(pk__in=keys), number, self)


class DateRangeFilter(admin.ListFilter):
    """`?date_from=YYYY-MM-DD&date_to=YYYY-MM-DD` on `field_name`, both days included, in the admin's
    time zone (the one the list shows dates in). Subclasses name the field and the title."""

    field_name = ""
    title = "date"
    template = "admin/date_range_filter.html"
    parameters = ("date_from", "date_to")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            value = params.pop(name, [""])[-1]
            if not value:
                continue
            try:
                self.used_parameters[name] = dt.date.fromisoformat(value)
            except ValueError as error:
                raise IncorrectLookupParameters(f"{name} must be a date (YYYY-MM-DD).") from error

    def has_output(self):
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        tz = timezone.get_current_timezone()
        date_from, date_to = (self.used_parameters.get(name) for name in self.parameters)
        if date_from:
            start = dt.datetime.combine(date_from, dt.time.min, tz)
            queryset = queryset.filter(**{f"{self.field_name}__gte": start})
        if date_to and date_to < dt.date.max:
            after = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tz)
            queryset = queryset.filter(**{f"{self.field_name}__lt": after})
        return queryset

    def choices(self, changelist):
        # One "choice": the state of the little form the template draws, and what it must keep.
        kept = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name not in self.parameters
            for value in values
        ]
        yield {
            "date_from": self.used_parameters.get("date_from"),
            "date_to": self.used_parameters.get("date_to"),
            "kept": kept,
            "selected": bool(self.used_parameters),
            "clear_query_string": changelist.get_query_string(remove=self.parameters),
        }
