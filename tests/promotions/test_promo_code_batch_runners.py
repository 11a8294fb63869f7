"""A generation batch run by a real Celery worker (a task per chunk, each queueing the next), and by two
runners at once (real threads, their own connections): the batch ends with exactly `total` codes."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from promotions.audit import Actor
from promotions.codegen.services import generation_params, promo_code_batch_generate, promo_code_batch_run
from promotions.models import PromoCode, PromoCodeBatch, PromotionType
from tests.factories import OrganizationFactory, PromotionFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def code_promotion():
    return PromotionFactory(org=OrganizationFactory(), type=PromotionType.CODE)


def test_worker_runs_every_chunk(worker):
    # given 120,000 codes: three chunks of 50,000 on the worker (over the 10,000 written inline)
    promotion = code_promotion()
    # when (autocommit: the first chunk's task is queued at once)
    batch = promo_code_batch_generate(
        promotion=promotion,
        params=generation_params(count=120_000, length=12),
        request_id="worker",
        actor=Actor.system("test"),
    )
    # then
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        batch.refresh_from_db()
        if batch.status in ("DONE", "FAILED"):
            break
        time.sleep(0.3)
    assert worker.poll() is None, "the worker died"
    assert (batch.status, batch.done) == ("DONE", 120_000), batch.error
    codes = PromoCode.objects.filter(batch=batch)
    assert codes.count() == codes.values("code").distinct().count() == 120_000


def test_two_runners_at_once_write_exactly_the_total(settings):
    # given a batch not yet run, in chunks of 1,000
    settings.PROMO_CODE_CHUNK_SIZE = 1000
    promotion = code_promotion()
    batch = PromoCodeBatch.objects.create(
        org=promotion.org,
        promotion=promotion,
        kind="GENERATE",
        request_id="two",
        total=9500,
        params=generation_params(count=9500, length=12),
    )
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            promo_code_batch_run(batch_id=batch.pk)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # then
    assert errors == []
    batch.refresh_from_db()
    assert (batch.status, batch.done) == ("DONE", 9500)
    assert PromoCode.objects.filter(batch=batch).count() == 9500
