"""A promotion's limits (`promotionRestrictions`) before they are stored, and as the API echoes them.

Apart from the services so that the serializers (which render them) and the services (which store
them) can both read them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from decimal import Decimal

from promotions.models import PromotionRestriction


@dataclass(frozen=True)
class RestrictionSpec:
    """One limit of a promotion (`promotionRestrictions.<level>[]`), before it is stored."""

    level: str
    kpi: str
    limit: Decimal
    frequency: str = ""
    window_type: str = ""
    min_time_between_repeat: int | None = None
    fixed_window_config: dict | None = None

    @classmethod
    def of(cls, row: PromotionRestriction) -> RestrictionSpec:
        """The spec of a stored limit (the field names are the model's)."""
        return cls(**{spec_field.name: getattr(row, spec_field.name) for spec_field in dataclass_fields(cls)})

    def as_data(self) -> dict:
        """As the API echoes it: the limit as a string with six decimals (`"5000.000000"`)."""
        data = {"kpi": self.kpi, "limit": f"{self.limit:.6f}"}
        for key, value in (
            ("frequency", self.frequency),
            ("windowType", self.window_type),
            ("minTimeBetweenRepeat", self.min_time_between_repeat),
            ("fixedWindowConfig", self.fixed_window_config),
        ):
            if value not in ("", None):
                data[key] = value
        return data


def restrictions_data(specs) -> dict:
    """`promotionRestrictions` as the API returns it: levels in a fixed order, only those present."""
    data: dict[str, list] = {}
    for level in PromotionRestriction.Level.values:
        items = [spec.as_data() for spec in specs if spec.level == level]
        if items:
            data[level] = items
    return data
