"""Celery tasks of the wallets app: each fetches its input, calls one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from wallets.services import bulk_job_chunk_run, bulk_job_inputs_purge, earned_promotions_expire


@shared_task(acks_late=True)
def bulk_job_chunk_task(job_id: int, low: int, high: int) -> int:
    """One chunk of a bulk job (items with id in [low, high)); safe to run again."""
    return bulk_job_chunk_run(job_id=job_id, low=low, high=high)


@shared_task
def earned_promotions_expire_task() -> int:
    """Expire the earned promotions past their validTill, every org (scheduled hourly by beat)."""
    return earned_promotions_expire()


@shared_task
def bulk_job_inputs_purge_task() -> int:
    """Delete the bulk-job customer lists no longer needed (scheduled hourly by beat)."""
    return bulk_job_inputs_purge()
