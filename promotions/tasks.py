"""Celery tasks of the promotions app: each calls one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from promotions.codegen.services import promo_code_batch_chunk_run
from promotions.services import idempotency_keys_purge


@shared_task
def idempotency_keys_purge_task() -> int:
    """Delete the Idempotency-Key rows past their retention (scheduled hourly by beat)."""
    return idempotency_keys_purge()


@shared_task(bind=True, acks_late=True)
def promo_code_batch_run_task(self, batch_id: int) -> bool:
    """One chunk of a code generation batch, then the next one queued (on the queue this one came
    from); safe to run again: a redelivered chunk draws only what is still missing."""
    more = promo_code_batch_chunk_run(batch_id=batch_id)
    if more:
        queue = (self.request.delivery_info or {}).get("routing_key")
        self.apply_async((batch_id,), queue=queue) if queue else self.delay(batch_id)
    return more
