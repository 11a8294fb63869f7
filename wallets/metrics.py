"""The wallets app's gauges, served at `/metrics` (registered in `WalletsConfig.ready`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from wallets.models import BulkJob

logger = logging.getLogger(__name__)


class BulkJobCollector(Collector):
    """Bulk job progress, read from the database at each scrape (one GROUP BY, one small query)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("promotions_bulk_jobs", "Bulk jobs, by status.", labels=["status"])
        items = GaugeMetricFamily(
            "promotions_bulk_job_items",
            "Items of the pending and running bulk jobs, by state (done, failed, pending).",
            labels=["job", "org", "kind", "state"],
        )
        try:
            counts = dict(BulkJob.objects.values_list("status").annotate(n=Count("id")).order_by())
            active = list(
                BulkJob.objects.filter(status__in=[BulkJob.Status.PENDING, BulkJob.Status.RUNNING])
                .order_by("id")
                .values_list("id", "org_id", "kind", "total", "done", "failed")
            )
        except DatabaseError as error:  # the rest of the scrape is still worth having
            logger.warning("bulk job metrics unavailable: %s", error)
            return
        for status in BulkJob.Status.values:
            jobs.add_metric([status], counts.get(status, 0))
        for job_id, org_id, kind, total, done, failed in active:
            labels = [str(job_id), str(org_id), kind]
            items.add_metric([*labels, "done"], done)
            items.add_metric([*labels, "failed"], failed)
            items.add_metric([*labels, "pending"], max(total - done - failed, 0))
        yield jobs
        yield items
