from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PromotionsSiteConfig(AppConfig):
    """The site itself: settings, URLs, the Celery app, the shared infrastructure, and the commands
    that span every app (seed_demo). Installed so Django finds those commands; it has no models."""

    name = "promotions_site"
    default_auto_field = "django.db.models.BigAutoField"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """Django's admin, whose default site is the marketer's console (`promotions_site.admin_console`):
    the first page leads with a marketer's tasks, and the technical models are the operators'."""

    default = False  # promotions_site's own config stays this module's default
    default_site = "promotions_site.admin_console.ConsoleAdminSite"
