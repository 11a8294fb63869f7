"""A promotion's copy, as the add form's initial values: the admin's "Duplicate" opens the add form
prefilled with them and nothing is written until the marketer saves that form (through
`promotion_create` and its validation, like any new promotion).

What the copy takes: every field of the promotion (rule, scope, limits, mode, caps, ...) but

- its name: "Copy of <name>", made unique in the org ("Copy of <name> (2)", ...);
- its dates: the same, unless the original has started: then the copy starts now and ends when the
  original ends (or, if that end has passed too, after as long as the original ran);
- `active`: off. A copy is a draft: it takes no active slot and reaches no till until it is checked
  and activated (the list's "Activate" action).
"""

from __future__ import annotations

from django.utils import timezone

from promotions import builder
from promotions.models import Promotion
from promotions.services import PROMOTION_FIELDS

NAME_MAX = Promotion._meta.get_field("name").max_length
RESTRICTION_FIELDS = (
    "level", "kpi", "limit", "frequency", "window_type", "min_time_between_repeat", "fixed_window_config",
)  # fmt: skip


def copy_name(original: Promotion) -> str:
    """`Copy of <name>`, or `Copy of <name> (n)` with the first n free in the org."""
    base = f"Copy of {original.name}"
    taken = set(
        Promotion.objects.filter(org_id=original.org_id, name__startswith=base[: NAME_MAX - 8]).values_list(
            "name", flat=True
        )
    )
    number = 1
    while True:
        suffix = "" if number == 1 else f" ({number})"
        name = base[: NAME_MAX - len(suffix)] + suffix
        if name not in taken:
            return name
        number += 1


def copy_dates(original: Promotion, now=None):
    """(start, end) of the copy (see the module docstring)."""
    now = now or timezone.now()
    if original.start_date > now:
        return original.start_date, original.end_date
    start = now.replace(second=0, microsecond=0)
    if original.end_date > start:
        return start, original.end_date
    return start, start + (original.end_date - original.start_date)


def copy_initial(original: Promotion, now=None) -> dict:
    """The add form's initial values for a copy of `original` (its builder's fields included)."""
    initial = {name: getattr(original, name) for name in PROMOTION_FIELDS if name not in builder.BUILT_FIELDS}
    initial.update(
        builder.decompose(original.condition, original.action),
        **builder.decompose_scope(
            original.store_criteria, original.time_criteria, original.custom_field_values
        ),
        **builder.decompose_earning(original.earning_criteria),
    )
    start, end = copy_dates(original, now)
    initial.update(
        org=original.org_id, name=copy_name(original), active=False, start_date=start, end_date=end
    )
    return initial


def copy_restrictions(original: Promotion) -> list[dict]:
    """The initial rows of the limits' formset: one per limit of `original`."""
    return [
        {name: getattr(restriction, name) for name in RESTRICTION_FIELDS}
        for restriction in original.restrictions.order_by("pk")
    ]
