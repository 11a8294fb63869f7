"""Query-string filters of the redemption list API (`GET /api_gateway/v1/promotions/redemptions`)."""

from __future__ import annotations

import datetime as dt
import re

import django_filters
from django import forms
from django.db.models import Exists, OuterRef

from promotions.filters import StrictBooleanFilter, StrictIntegerField
from promotions.models import PromotionMode
from promotions_site.timefmt import from_epoch_ms, to_epoch_ms
from redemptions.models import ANONYMOUS_CUSTOMER_ID, RedemptionLine, RedemptionReversal

# Year 1970 to 9999, as the request bodies accept (promotions_site.timefmt.EpochMillisField).
EPOCH_MS_MAX = 253402300800000
LAST_MICROSECOND_OF_MS = dt.timedelta(microseconds=999)
ENTITY_IDENTIFIER = re.compile(r"REGULAR_([bl])_([1-9][0-9]{0,17})")


class EpochMillisFormField(StrictIntegerField):
    """Epoch milliseconds in a query string, as an aware datetime."""

    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=EPOCH_MS_MAX - 1, **kwargs)

    def clean(self, value):
        millis = super().clean(value)
        return None if millis is None else from_epoch_ms(millis)


class IsoDateTimeFormField(forms.CharField):
    """ISO 8601 with its offset. An unencoded `+` arrives as a space and is read back as `+`."""

    def __init__(self, **kwargs):
        # Not stripped: `?startDateISO=%1F` is a bad date, not an absent one.
        super().__init__(strip=False, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        # The date/time separator may be a space (index 10); a later space was a `+` before decoding.
        value = value[:11] + value[11:].replace(" ", "+")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise forms.ValidationError(
                "Must be an ISO 8601 timestamp, e.g. 2025-12-16T14:30:45+05:30."
            ) from exc
        if parsed.tzinfo is None:
            raise forms.ValidationError("Must include a time zone offset, e.g. 2025-12-16T14:30:45+05:30.")
        if not 0 <= to_epoch_ms(parsed) < EPOCH_MS_MAX:
            raise forms.ValidationError("Must be between 1970 and 9999.")
        # In UTC: Python reads offsets up to ±23:59, PostgreSQL refuses those beyond ±15:59 (a 500).
        return parsed.astimezone(dt.UTC)


class EntityIdentifierField(forms.CharField):
    """`REGULAR_b_<redemption id>` (the cart-level lines of a redemption) or `REGULAR_l_<line id>`."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        match = ENTITY_IDENTIFIER.fullmatch(value)
        if match is None:
            raise forms.ValidationError("Must be REGULAR_b_<id> (cart level) or REGULAR_l_<id> (line item).")
        return match.group(1), int(match.group(2))


def reversal_exists() -> Exists:
    """True for a line whose redemption has been reversed."""
    return Exists(RedemptionReversal.objects.filter(redemption=OuterRef("redemption")))


class IntegerFilter(django_filters.Filter):
    field_class = StrictIntegerField


class EpochMillisFilter(django_filters.Filter):
    field_class = EpochMillisFormField


class IsoDateTimeFilter(django_filters.Filter):
    field_class = IsoDateTimeFormField


class EntityIdentifierFilter(django_filters.Filter):
    field_class = EntityIdentifierField


class RedemptionListForm(forms.Form):
    """Checks across fields: one form of each date bound, and a range that is not reversed."""

    def clean(self):
        data = super().clean()
        bounds = {}
        for bound in ("startDate", "endDate"):
            given = [v for v in (data.get(bound), data.get(f"{bound}ISO")) if v is not None]
            if len(given) == 2:
                self.add_error(bound, f"Give {bound} or {bound}ISO, not both.")
            bounds[bound] = given[0] if given else None
        if None not in bounds.values() and bounds["startDate"] > bounds["endDate"]:
            self.add_error("startDate", "Must not be after endDate.")
        return data


class RedemptionLineFilter(django_filters.FilterSet):
    """The filters of the list, each on one redemption line (one record of the list)."""

    # -1 lists the anonymous sales (recorded without a customer), as tills send and the list answers it.
    customerId = IntegerFilter(min_value=-(2**63), max_value=2**63 - 1, method="filter_customer")
    promotionId = django_filters.CharFilter(field_name="promotion_id", max_length=24)
    transactionIdentifier = django_filters.CharFilter(
        field_name="redemption__transaction_identifier", max_length=250
    )
    transactionEntityIdentifier = EntityIdentifierFilter(max_length=40, method="filter_entity_identifier")
    mode = django_filters.ChoiceFilter(field_name="promotion__mode", choices=PromotionMode.choices)
    startDate = EpochMillisFilter(field_name="redemption__transaction_date", lookup_expr="gte")
    startDateISO = IsoDateTimeFilter(
        max_length=40,
        field_name="redemption__transaction_date",
        lookup_expr="gte",
    )
    endDate = EpochMillisFilter(method="filter_end_date")
    endDateISO = IsoDateTimeFilter(max_length=40, method="filter_end_date")
    # Absent reads as false, so the method runs and leaves reversed redemptions out by default.
    includeReversed = StrictBooleanFilter(empty_value=False, method="filter_include_reversed")
    codes = django_filters.CharFilter(max_length=2000, method="filter_codes")

    class Meta:
        model = RedemptionLine
        fields = []
        form = RedemptionListForm

    def filter_customer(self, queryset, name, value):
        if value == ANONYMOUS_CUSTOMER_ID:
            return queryset.filter(redemption__customer__isnull=True)
        return queryset.filter(redemption__customer_id=value)

    def filter_end_date(self, queryset, name, value):
        # Inclusive: the whole millisecond the bound names (its last microsecond cannot overflow).
        last = value.replace(microsecond=value.microsecond // 1000 * 1000) + LAST_MICROSECOND_OF_MS
        return queryset.filter(redemption__transaction_date__lte=last)

    def filter_include_reversed(self, queryset, name, value):
        # NOT EXISTS, not a LEFT JOIN ... IS NULL: PostgreSQL estimates the anti-join's rows far
        # better, and keeps walking the (org, transaction_date) index for deep pages.
        return queryset if value else queryset.filter(~reversal_exists())

    def filter_entity_identifier(self, queryset, name, value):
        kind, pk = value
        if kind == "b":
            return queryset.filter(redemption_id=pk, level=RedemptionLine.Level.CART)
        return queryset.filter(pk=pk, level=RedemptionLine.Level.LINE_ITEM)

    def filter_codes(self, queryset, name, value):
        # The lines redeemed through one of these promo codes (comma-separated, case-insensitive;
        # docs/code-redemption.md); lines without a code never match.
        codes = {code.strip().upper() for code in value.split(",") if code.strip()}
        return queryset.filter(promo_code__code__in=codes) if codes else queryset.none()
