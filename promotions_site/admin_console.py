"""The marketer's console: the admin site whose first page leads with a marketer's tasks (create a
promotion, issue it, bulk earn, codes, jobs, customers, the dashboard, the redemption audit) and keeps
the technical models (counters, job items, issuals, stores, API clients, ...) for operators.

An operator is a superuser or a member of the `Operators` group (made by hand in the admin's Groups
page; no migration creates it). Everyone else sees only the marketer's models, on the first page and in
the navigation sidebar. Hiding is not refusing: the technical models' pages still answer to whoever
holds their permissions (a direct link keeps working); they are simply out of a marketer's sight.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.http import urlencode

OPERATORS_GROUP = "Operators"

# The models a marketer works with; every other registered model is an operator's.
MARKETER_MODELS = frozenset(
    {
        "promotions.promotion",
        "promotions.promocodebatch",
        "promotions.promocode",
        "wallets.customer",
        "wallets.bulkjob",
        "wallets.earnedpromotion",
        "redemptions.redemption",
    }
)


def is_operator(user) -> bool:
    """A superuser, or an active staff member of the Operators group."""
    if not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_console_operator", None)
    if cached is None:
        cached = user.groups.filter(name=OPERATORS_GROUP).exists()
        user._console_operator = cached
    return cached


def is_marketer_model(model) -> bool:
    return model._meta.label_lower in MARKETER_MODELS


@dataclass(frozen=True)
class Task:
    key: str
    title: str
    description: str
    url: str


def _admin_url(name: str, query: dict | None = None) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(query)}" if query else url


def _registered(site, label: str) -> bool:
    try:
        model = apps.get_model(label)
    except LookupError:
        return False
    return site.is_registered(model)


def marketer_tasks(request, site) -> list[Task]:
    """The first page's task cards, in a marketer's order, each shown to users who may do it."""
    from promotions.models import PromotionType

    user = request.user
    tasks = []
    can_run_jobs = user.has_perm("wallets.run_bulk_job")
    if user.has_perm("promotions.add_promotion"):
        tasks.append(
            Task(
                "create-promotion",
                "Create promotion",
                "A new promotion: what the cart needs, what it gives, its dates and limits.",
                _admin_url("admin:promotions_promotion_add"),
            )
        )
    if can_run_jobs and user.has_perm("promotions.view_promotion"):
        issuable = ", ".join(PromotionType(value).label for value in PromotionType.ISSUABLE_TYPES)
        tasks.append(
            Task(
                "issue",
                "Issue to customers",
                f"Give a promotion to a list of customers. Only {issuable} promotions can be issued: "
                "pick one here, then “Issue to customers” on its page.",
                _admin_url(
                    "admin:promotions_promotion_changelist",
                    {"type__in": ",".join(PromotionType.ISSUABLE_TYPES)},
                ),
            )
        )
    if can_run_jobs:
        tasks.append(
            Task(
                "bulk-earn",
                "Bulk earn",
                "Customers of a list earn Earning or Reward promotions (an activity, a milestone).",
                _admin_url("admin:wallets_bulkjob_earn"),
            )
        )
    if _registered(site, "promotions.PromoCodeBatch") and user.has_perm("promotions.view_promocodebatch"):
        try:
            url = _admin_url("admin:promotions_promocodebatch_changelist")
        except NoReverseMatch:  # registered without its list
            url = ""
        if url:
            tasks.append(Task("codes", "Codes", "Generate or upload promo codes, and see each batch.", url))
    if user.has_perm("wallets.view_bulkjob") or can_run_jobs:
        tasks.append(
            Task(
                "jobs",
                "Jobs",
                "Issues, bulk earns and exports: their progress, error reports and files.",
                _admin_url("admin:wallets_bulkjob_changelist"),
            )
        )
    if user.has_perm("wallets.view_customer"):
        tasks.append(
            Task(
                "customers",
                "Customers",
                "Find a customer: their wallet (earned promotions) and redemptions.",
                _admin_url("admin:wallets_customer_changelist"),
            )
        )
    if user.has_perm("promotions.view_promotion") and user.has_perm("redemptions.view_redemption"):
        tasks.append(
            Task(
                "dashboard",
                "Dashboard",
                "Issued, earned, redeemed and reversed per promotion; redemptions per day.",
                _admin_url("admin-dashboard"),
            )
        )
    if user.has_perm("redemptions.view_redemption"):
        tasks.append(
            Task(
                "audit",
                "Redemption audit",
                "Every recorded transaction: filter, export as CSV, reverse.",
                _admin_url("admin:redemptions_redemption_changelist"),
            )
        )
    return tasks


def not_issuable_message(name: str, kind: str) -> str:
    """Why a promotion cannot be issued, in a marketer's words (the issue action and screen say it
    before any list is given)."""
    from promotions.models import PromotionType

    issuable = " and ".join(PromotionType(value).label for value in PromotionType.ISSUABLE_TYPES)
    label = PromotionType(kind).label if kind in PromotionType.values else kind
    return (
        f"“{name}” is a {label} promotion: it cannot be issued to customers. Only {issuable} "
        "promotions can be issued (a Reward promotion is earned: use Bulk earn)."
    )


def _split(app_list: list[dict], keep) -> list[dict]:
    """`app_list` with only the models `keep` accepts (apps left empty dropped)."""
    kept = []
    for app in app_list:
        models = [model for model in app["models"] if keep(model["model"])]
        if models:
            kept.append({**app, "models": models})
    return kept


class ConsoleAdminSite(admin.AdminSite):
    """Django's admin site with the console's first page and a marketer's app list."""

    index_template = "admin/index.html"

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if is_operator(request.user):
            return app_list
        return _split(app_list, is_marketer_model)

    def index(self, request, extra_context=None):
        app_list = self.get_app_list(request)
        context = {
            "tasks": marketer_tasks(request, self),
            "marketer_apps": _split(app_list, is_marketer_model),
            "operator_apps": _split(app_list, lambda model: not is_marketer_model(model)),
            "is_operator": is_operator(request.user),
            **(extra_context or {}),
        }
        return super().index(request, context)
