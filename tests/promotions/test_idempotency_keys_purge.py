"""idempotency_keys_purge: the service, `manage.py purge_idempotency_keys` and the hourly beat task."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from promotions.models import IdempotencyKey
from promotions.services import idempotency_keys_purge
from promotions.tasks import idempotency_keys_purge_task
from tests.factories import ApiClientFactory


def key_rows(client, ages_in_hours: list[float]) -> None:
    now = timezone.now()
    IdempotencyKey.objects.bulk_create(
        IdempotencyKey(
            api_client=client,
            key=f"key-{index}",
            method="POST",
            path="/api_gateway/v1/promotions/customers",
            fingerprint="0" * 64,
            response_status=201,
            response_body="{}",
            created_at=now - dt.timedelta(hours=age),
            completed_at=now - dt.timedelta(hours=age),
        )
        for index, age in enumerate(ages_in_hours)
    )


def test_purge_deletes_the_keys_past_72_hours_in_batches(org):
    # given keys of several ages, five of them past the retention
    client = ApiClientFactory(org=org)
    key_rows(client, [0, 1, 71.9, 72.1, 73, 100, 500, 1000])
    # when purged two rows per transaction
    purged = idempotency_keys_purge(batch_size=2)
    # then exactly the old ones are gone, and a second run deletes nothing
    assert purged == 5
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == ["key-0", "key-1", "key-2"]
    assert idempotency_keys_purge() == 0


def test_a_purged_key_can_be_used_again(api, org):
    # given a key used four days ago, then purged
    url = "/api_gateway/v1/promotions/customers"
    headers = {"HTTP_IDEMPOTENCY_KEY": "reused"}
    assert api.post(url, {"mobile": "919812345678"}, format="json", **headers).status_code == 201
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(days=4))
    assert idempotency_keys_purge() == 1
    # when it comes with another request
    response = api.post(url, {"mobile": "919812345679"}, format="json", **headers)
    # then that request runs
    assert response.status_code == 201 and "Idempotent-Replayed" not in response


def test_command_prints_how_many_and_refuses_a_bad_batch_size(org):
    key_rows(ApiClientFactory(org=org), [80, 90, 1])
    out = StringIO()
    call_command("purge_idempotency_keys", "--batch-size", "1", stdout=out)
    assert out.getvalue().strip() == "Purged 2 idempotency key(s)."
    assert IdempotencyKey.objects.count() == 1
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("purge_idempotency_keys", "--batch-size", "0")


def test_beat_runs_the_purge_every_hour(org):
    # given the schedule celery beat reads
    entry = settings.CELERY_BEAT_SCHEDULE["purge-idempotency-keys"]
    assert entry["task"] == idempotency_keys_purge_task.name == "promotions.tasks.idempotency_keys_purge_task"
    assert entry["schedule"].minute == {30} and len(entry["schedule"].hour) == 24
    # when the task runs (eagerly: no broker in the tests) then it purges
    key_rows(ApiClientFactory(org=org), [73])
    assert idempotency_keys_purge_task.delay().get() == 1
    assert not IdempotencyKey.objects.exists()
