"""Celery tasks of the promotions app: each calls one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from promotions.services import idempotency_keys_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    """Delete the Idempotency-Key rows past their retention (scheduled hourly by beat)."""
    return idempotency_keys_purge()
