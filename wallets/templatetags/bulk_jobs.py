"""Template tags of the marketer admin's bulk screens."""

from __future__ import annotations

from django import template
from django.urls import reverse

from promotions.models import PromotionType

register = template.Library()


@register.inclusion_tag("admin/wallets/bulkjob/promotion_object_tools.html", takes_context=True)
def promotion_bulk_job_tools(context, promotion) -> dict:
    """The promotion page's buttons that start a bulk job: shown to users who may run one, for the
    promotion types the job can give out (issue: CUSTOMER, EARNING; earn: EARNING, REWARD)."""
    request = context.get("request")
    if promotion is None or request is None or not request.user.has_perm("wallets.run_bulk_job"):
        return {}
    return {
        "issue_url": reverse("admin:wallets_bulkjob_issue", args=[promotion.pk])
        if promotion.type in PromotionType.ISSUABLE_TYPES
        else "",
        "earn_url": f"{reverse('admin:wallets_bulkjob_earn')}?promotion={promotion.pk}"
        if promotion.type in PromotionType.EARNABLE_TYPES
        else "",
    }
