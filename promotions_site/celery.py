"""The Celery app: background jobs on Redis or RabbitMQ (CELERY_BROKER_URL), in-process without one.

Start a worker: `celery -A promotions_site worker -l info` (and `celery -A promotions_site beat` for
the periodic tasks). Tasks live in each app's tasks.py; they fetch their input, call one service, and
re-enqueue their next chunk.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "promotions_site.settings")

app = Celery("promotions_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
