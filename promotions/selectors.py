"""Reads of promotions, scoped to the caller's org."""

from __future__ import annotations

from django.http import Http404
from rest_framework.exceptions import ValidationError

from promotions.models import Organization, Promotion


def promotion_get(*, org: Organization, promotion_id: str) -> Promotion:
    """The org's promotion with this id; another org's promotion is 404, exactly like a missing one."""
    promotion = Promotion.objects.for_org(org).filter(pk=promotion_id).first()
    if promotion is None:
        raise Http404("Passed promotion is not found")
    return promotion


def promotion_list(*, org: Organization, params, limit: int) -> list[Promotion]:
    """The org's promotions matching the list API's filters, newest first, restrictions prefetched.

    Raises ValidationError (400) for malformed filter values.
    """
    from promotions.filters import PromotionFilter

    queryset = Promotion.objects.for_org(org).prefetch_related("restrictions").order_by("-created_on", "id")
    filterset = PromotionFilter(params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(filterset.errors)
    return list(filterset.qs[:limit])
