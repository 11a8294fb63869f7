"""The marketer's console: the admin site whose first page leads with a marketer's tasks (create a
promotion, issue it, bulk earn, codes, jobs, customers, the dashboard, the redemption audit) and keeps
the technical models (counters, job items, issuals, stores, API clients, ...) for operators.

An operator is a superuser or a member of the `Operators` group (made by hand in the admin's Groups
page; no migration creates it). Everyone else sees only the marketer's models, on the first page and in
the navigation sidebar. Hiding is not refusing: the technical models' pages still answer to whoever
holds their permissions (a direct link keeps working); they are simply out of a marketer's sight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
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
    """A card of the first page. `order` places it: create 10, calendar 15, issue 20, bulk earn 30, codes 40,
    jobs 50, customers 60, dashboard 70, redemption audit 80."""

    order: int
    key: str
    title: str
    description: str
    url: str


# A function of the request giving the tasks its user may do (an app's admin module registers it).
TaskProvider = Callable[[HttpRequest], Iterable[Task]]


def admin_url(name: str, query: dict | None = None) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(query)}" if query else url


def _split(app_list: list[dict], keep) -> list[dict]:
    """`app_list` with only the models `keep` accepts (apps left empty dropped)."""
    kept = []
    for app in app_list:
        models = [model for model in app["models"] if keep(model["model"])]
        if models:
            kept.append({**app, "models": models})
    return kept


class ConsoleAdminSite(admin.AdminSite):
    """Django's admin site with the console's first page and a marketer's app list. Each app's admin
    module registers the tasks it offers (`register_tasks`): the site knows no app's models, as
    promotions_site sits below every app."""

    index_template = "admin/index.html"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._task_providers: list[TaskProvider] = []

    def register_tasks(self, provider: TaskProvider) -> TaskProvider:
        """Add a provider of first-page tasks (usable as a decorator)."""
        self._task_providers.append(provider)
        return provider

    def marketer_tasks(self, request) -> list[Task]:
        """The first page's task cards, in a marketer's order, each one the user may do."""
        tasks = [task for provider in self._task_providers for task in provider(request)]
        return sorted(tasks, key=lambda task: task.order)

    def get_app_list(self, request, app_label=None):
        app_list = super().get_app_list(request, app_label)
        if is_operator(request.user):
            return app_list
        return _split(app_list, is_marketer_model)

    def index(self, request, extra_context=None):
        app_list = self.get_app_list(request)
        context = {
            "tasks": self.marketer_tasks(request),
            "marketer_apps": _split(app_list, is_marketer_model),
            "operator_apps": _split(app_list, lambda model: not is_marketer_model(model)),
            "is_operator": is_operator(request.user),
            **(extra_context or {}),
        }
        return super().index(request, context)
