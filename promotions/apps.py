from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "promotions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registered in every process, before the Celery app is finalized (a web process finalizes it
        # when it first sends a task): a shared task first imported afterwards can go unregistered there.
        from promotions import tasks  # noqa: F401
