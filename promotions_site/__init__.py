# Loaded with Django so `@shared_task` tasks bind to this project's Celery app.
from promotions_site.celery import app as celery_app

__all__ = ["celery_app"]
