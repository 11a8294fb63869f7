"""Query-string filters of the promotion list API."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.utils import timezone

from promotions.models import Promotion, PromotionType

PROMOTION_IDS_MAX = 100


class StrictIntegerField(forms.IntegerField):
    """An integer as written in the query string: Django's also reads `5.0` as 5, the schema does not."""

    re_decimal = re.compile(r"(?!)")  # matches nothing: no decimal part is dropped


class StrictBooleanField(forms.Field):
    """`true` or `false` (any case), `1` or `0`; anything else is an error, not a silent default."""

    def __init__(self, *, empty_value: bool | None = None, **kwargs):
        self.empty_value = empty_value
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return self.empty_value
        text = str(value).lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise forms.ValidationError("Must be true or false.")


class StrictBooleanFilter(django_filters.Filter):
    field_class = StrictBooleanField


class CommaSeparatedIdsField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if not value:
            return []
        ids = [part.strip() for part in value.split(",") if part.strip()]
        if len(ids) > PROMOTION_IDS_MAX:
            raise forms.ValidationError(f"At most {PROMOTION_IDS_MAX} promotion ids.")
        if any(len(i) > 24 for i in ids):
            raise forms.ValidationError("A promotion id has at most 24 characters.")
        return ids


class CommaSeparatedIdsFilter(django_filters.Filter):
    field_class = CommaSeparatedIdsField

    def filter(self, qs, value):
        return qs.filter(pk__in=value) if value else qs


class PromotionFilter(django_filters.FilterSet):
    """`?promotionIds=a,b&type=CUSTOMER&active=true&includeExpired=false`."""

    promotionIds = CommaSeparatedIdsFilter(help_text="Comma-separated promotion ids (at most 100).")
    type = django_filters.ChoiceFilter(choices=PromotionType.choices)
    active = StrictBooleanFilter()
    includeExpired = StrictBooleanFilter(
        method="filter_include_expired", help_text="false leaves out promotions whose endDate has passed."
    )

    class Meta:
        model = Promotion
        fields = []

    def filter_include_expired(self, queryset, name, value):
        return queryset if value is not False else queryset.filter(end_date__gt=timezone.now())


class PromotionConfigFilter(django_filters.FilterSet):
    """`?promotionIds=a,b&includeExpired=true&includeInactive=true` of the config API: by default only
    the promotions that are active and have not ended."""

    promotionIds = CommaSeparatedIdsFilter(help_text="Comma-separated promotion ids (at most 100).")
    includeExpired = StrictBooleanFilter(
        method="filter_include_expired", help_text="true keeps promotions whose endDate has passed."
    )
    includeInactive = StrictBooleanFilter(
        method="filter_include_inactive", help_text="true keeps promotions deactivated org-wide."
    )

    class Meta:
        model = Promotion
        fields = []

    def filter_queryset(self, queryset):
        # The defaults apply when the flag is absent too (a method filter runs only for a value).
        data = self.form.cleaned_data
        if not data.get("includeExpired"):
            queryset = queryset.filter(end_date__gt=timezone.now())
        if not data.get("includeInactive"):
            queryset = queryset.filter(active=True)
        ids = data.get("promotionIds")
        return queryset.filter(pk__in=ids) if ids else queryset

    def filter_include_expired(self, queryset, name, value):
        return queryset

    def filter_include_inactive(self, queryset, name, value):
        return queryset
