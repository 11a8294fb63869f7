"""Background jobs of the wallets app. Each fetches its input, calls one service, and nothing else."""

from __future__ import annotations

from celery import shared_task

from wallets.services import earned_promotions_expire


@shared_task
def earned_promotions_expire_task() -> int:
    """Expire the earned promotions past their validTill, every org (scheduled hourly by beat)."""
    return earned_promotions_expire()
