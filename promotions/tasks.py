"""Celery tasks of the promotions app: each calls one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from promotions.codegen.services import promo_code_batch_chunk_run
from promotions.services import idempotency_keys_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    """Delete the Idempotency-Key rows past their retention (scheduled hourly by beat)."""
    return idempotency_keys_purge()


@shared_task(acks_late=True)
def promo_code_batch_run_task(batch_id: int) -> bool:
    """One chunk of a code generation batch, then the next one queued; safe to run again."""
    more = promo_code_batch_chunk_run(batch_id=batch_id)
    if more:
        promo_code_batch_run_task.delay(batch_id)
    return more
