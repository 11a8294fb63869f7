from django.apps import AppConfig


class RedemptionsConfig(AppConfig):
    name = "redemptions"
    default_auto_field = "django.db.models.BigAutoField"
