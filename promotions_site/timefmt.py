"""The two time formats of the API: epoch milliseconds and ISO 8601 in the server time zone."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MILLISECOND = dt.timedelta(milliseconds=1)


def to_epoch_ms(value: dt.datetime | None) -> int | None:
    if value is None:
        return None
    # Integer arithmetic: float timestamps can round the same instant to two different milliseconds.
    return (value - _EPOCH) // _MILLISECOND


def from_epoch_ms(value: int) -> dt.datetime:
    return _EPOCH + value * _MILLISECOND


def to_iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 to the second in the server time zone, `Z` for UTC (as Capillary's EU cluster answers)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@extend_schema_field(OpenApiTypes.INT64)
class EpochMillisField(serializers.Field):
    """A datetime carried as epoch milliseconds (Capillary's `Long` timestamps)."""

    default_error_messages = {
        "invalid": "Must be a timestamp in epoch milliseconds.",
        "range": "Timestamp out of range.",
    }

    def to_representation(self, value):
        return to_epoch_ms(value)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | str):
            self.fail("invalid")
        try:
            millis = int(data)
        except (TypeError, ValueError):
            self.fail("invalid")
        # Year 1970 to 9999: anything else is a client mistake, not a date.
        if not 0 <= millis < 253402300800000:
            self.fail("range")
        return from_epoch_ms(millis)


class IsoDateTimeField(serializers.DateTimeField):
    """An ISO 8601 timestamp that must carry its offset (`2025-12-16T14:30:45+05:30`)."""

    default_error_messages = {"offset": "Must include a time zone offset, e.g. 2025-12-16T14:30:45+05:30."}

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if isinstance(value, str) and not (
            value.endswith(("Z", "z")) or "+" in value[10:] or "-" in value[10:]
        ):
            self.fail("offset")
        return parsed

    def to_representation(self, value):
        return to_iso(value)
