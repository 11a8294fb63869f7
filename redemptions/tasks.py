"""Celery tasks of the redemptions app: each fetches its input, calls one service, nothing else."""

from __future__ import annotations

from celery import shared_task

from promotions.models import Organization
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
