"""Reads of promotions, scoped to the caller's org."""

from __future__ import annotations

from django.http import Http404

from promotions.models import Organization, Promotion


def promotion_get(*, org: Organization, promotion_id: str) -> Promotion:
    """The org's promotion with this id; another org's promotion is 404, exactly like a missing one."""
    promotion = Promotion.objects.for_org(org).filter(pk=promotion_id).first()
    if promotion is None:
        raise Http404("Passed promotion is not found")
    return promotion
