from django.apps import AppConfig


class PromotionsSiteConfig(AppConfig):
    """The site itself: settings, URLs, the Celery app, the shared infrastructure, and the commands
    that span every app (seed_demo). Installed so Django finds those commands; it has no models."""

    name = "promotions_site"
    default_auto_field = "django.db.models.BigAutoField"
