"""Celery tasks of the redemptions app: each fetches its input, calls one service, nothing else."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from promotions.models import Organization
from redemptions.cart_locks import cart_locks_sweep
from redemptions.services import redemption_export_run
from redemptions.summaries import redemption_days_refresh


@shared_task
def redemption_days_refresh_task() -> int:
    """Materialise every org's closed days missing from the summaries (scheduled hourly by beat: an
    org's day closes at its own midnight). The number of days written."""
    return sum(redemption_days_refresh(org=org) for org in Organization.objects.order_by("pk"))


@shared_task(acks_late=True)
def redemption_export_task(job_id: int) -> int:
    """Write an export job's file (`redemption_export_run`); a redelivered task writes it again
    unless the job is already DONE. The number of lines written."""
    return redemption_export_run(job_id=job_id).done


@shared_task
def cart_locks_expire_task() -> int:
    """Release every org's open carts past their time (scheduled every minute by beat; each read of
    a customer's carts releases its own expired ones too, so the sweep is not needed for correctness).
    The number of carts released."""
    return cart_locks_sweep(now=timezone.now())
