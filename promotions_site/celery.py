"""The Celery app: background jobs on Redis or RabbitMQ (CELERY_BROKER_URL), in-process without one.

Start a worker: `celery -A promotions_site worker -l info` (and `celery -A promotions_site beat` for
the periodic tasks). Tasks live in each app's tasks.py; they fetch their input, call one service, and
re-enqueue their next chunk.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

# Connected here so both the web processes and the workers carry request ids into tasks.
from promotions_site import logs  # noqa: F401

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promotions_site.settings")

app = Celery("promotions_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def _use_django_logging(**_) -> None:
    """Workers log like the web processes (settings.LOGGING: JSON lines with the request id)
    instead of Celery's own format; LOG_LEVEL sets the level."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
