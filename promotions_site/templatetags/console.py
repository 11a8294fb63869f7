"""Template filters of the marketer's console: money with the org's precision, a moment with its zone
(promotions_site/admin_format.py)."""

from __future__ import annotations

from django import template

from promotions_site import admin_format

register = template.Library()


@register.filter
def money(value, precision=admin_format.DEFAULT_PRECISION):
    """`{{ amount|money:org.rounding_precision }}`: `4,637.00`."""
    return admin_format.money(value, precision)


@register.filter
def moment(value):
    """`{{ when|moment }}`: `2026-12-03 19:45 CET`, in the page's zone."""
    return admin_format.admin_datetime(value)
