"""The promotion page's "Try it on a cart" button (the panel is the redemptions app's: it evaluates)."""

from __future__ import annotations

from django import template
from django.urls import reverse

register = template.Library()


@register.inclusion_tag("admin/promotions/promotion/cart_trial_tool.html")
def promotion_cart_trial_tool(promotion) -> dict:
    """Shown on a stored promotion's page (whoever may see the page may try it)."""
    if promotion is None or not promotion.pk:
        return {}
    return {"url": reverse("admin-promotion-try", args=[promotion.pk])}
