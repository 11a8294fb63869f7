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


@register.simple_tag
def list_headers(cl, headers):
    """The change list's column headers (`result_headers`, one per `list_display` column, in order)
    with the list's own words and API names: `ModelAdmin.list_columns` maps a column to its API field
    name, to (the header in a marketer's words, the API name), or to None (no API counterpart). The
    header's `api_name` is shown as the column's help (templates/admin/change_list_results.html)."""
    columns = getattr(cl.model_admin, "list_columns", {})
    shown = []
    for name, header in zip(cl.list_display, headers, strict=True):
        spec = columns.get(name)
        label, api_name = spec if isinstance(spec, tuple) else (None, spec)
        shown.append({**header, "text": label or header["text"], "api_name": api_name})
    return shown
