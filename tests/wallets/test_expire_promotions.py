"""earned_promotions_expire: the `expire_promotions` command and the hourly Celery task."""

from __future__ import annotations

import datetime as dt
import importlib
import io

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from promotions.models import AuditEvent
from promotions_site.celery import app as celery_app
from promotions_site.timefmt import to_epoch_ms
from tests.factories import CustomerFactory, EarnedPromotionFactory, PromotionFactory
from tests.redemptions.support import body, codes, line, redeem
from wallets.models import EarnedPromotion
from wallets.selectors import wallet_get
from wallets.services import earned_promotions_expire
from wallets.tasks import earned_promotions_expire_task

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def instance(org, valid_till, status="ACTIVE", **fields):
    return EarnedPromotionFactory(org=org, valid_till=valid_till, status=status, **fields)


def status_of(*instances) -> list[str]:
    return [EarnedPromotion.objects.get(pk=i.pk).status for i in instances]


def test_expires_active_instances_whose_valid_till_has_passed(org):
    # given
    past = instance(org, NOW - dt.timedelta(seconds=1))
    at_now = instance(org, NOW)  # validTill is the last valid moment: at it, the instance reads expired
    future = instance(org, NOW + dt.timedelta(seconds=1))
    redeemed = instance(org, NOW - dt.timedelta(days=1), status="REDEEMED")
    revoked = instance(org, NOW - dt.timedelta(days=1), status="REVOKED")
    # when
    expired = earned_promotions_expire(now=NOW)
    # then
    assert expired == 2
    assert status_of(past, at_now, future, redeemed, revoked) == [
        "EXPIRED",
        "EXPIRED",
        "ACTIVE",
        "REDEEMED",
        "REVOKED",
    ]
    assert set(
        EarnedPromotion.objects.filter(pk__in=[past.pk, at_now.pk]).values_list(
            "status_changed_at", flat=True
        )
    ) == {NOW}
    assert EarnedPromotion.objects.get(pk=future.pk).status_changed_at is None


def test_batches_cover_every_due_instance_and_one_audit_event_per_org(org, other_org):
    # given: seven due instances in two orgs, batches of two
    ours = [instance(org, NOW - dt.timedelta(hours=n)) for n in range(1, 6)]
    theirs = [instance(other_org, NOW - dt.timedelta(hours=n)) for n in range(1, 3)]
    # when
    expired = earned_promotions_expire(now=NOW, batch_size=2)
    # then
    assert expired == 7
    assert set(status_of(*ours, *theirs)) == {"EXPIRED"}
    events = AuditEvent.objects.filter(action="earned_promotion.expire")
    assert sorted((e.org_id, e.data["expired"]) for e in events) == sorted([(org.pk, 5), (other_org.pk, 2)])
    assert {(e.actor_type, e.actor_name, e.object_type) for e in events} == {
        ("SYSTEM", "expire_promotions", "Organization")
    }


def test_running_again_changes_nothing(org):
    # given
    due = instance(org, NOW - dt.timedelta(hours=1))
    assert earned_promotions_expire(now=NOW) == 1
    # when
    again = earned_promotions_expire(now=NOW + dt.timedelta(hours=1))
    # then: no change, no audit event for an empty run
    assert again == 0
    assert EarnedPromotion.objects.get(pk=due.pk).status_changed_at == NOW
    assert AuditEvent.objects.filter(action="earned_promotion.expire").count() == 1


def test_one_org_only(org, other_org):
    ours = instance(org, NOW - dt.timedelta(hours=1))
    theirs = instance(other_org, NOW - dt.timedelta(hours=1))
    assert earned_promotions_expire(org=org, now=NOW) == 1
    assert status_of(ours, theirs) == ["EXPIRED", "ACTIVE"]
    assert list(AuditEvent.objects.values_list("org_id", flat=True)) == [org.pk]


def test_batch_size_must_be_positive(db):
    with pytest.raises(ValueError, match="batch_size"):
        earned_promotions_expire(batch_size=0)


# --- the command ---------------------------------------------------------------------------------


def test_command_prints_how_many(org, other_org):
    yesterday = timezone.now() - dt.timedelta(days=1)
    for _ in range(3):
        instance(org, yesterday)
    instance(other_org, yesterday)
    out = io.StringIO()
    call_command("expire_promotions", "--org", str(org.pk), "--batch-size", "2", stdout=out)
    assert out.getvalue() == f"Expired 3 earned promotion(s) of org {org.pk}.\n"
    out = io.StringIO()
    call_command("expire_promotions", stdout=out)
    assert out.getvalue() == "Expired 1 earned promotion(s).\n"
    assert not EarnedPromotion.objects.filter(status="ACTIVE").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "999"], "Organization 999 does not exist"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
    ],
)
def test_command_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("expire_promotions", *args, stdout=io.StringIO())


# --- the hourly task -----------------------------------------------------------------------------


def test_task_runs_the_service_in_process(org):
    due = instance(org, timezone.now() - dt.timedelta(minutes=1))
    result = earned_promotions_expire_task.apply()
    assert result.successful() and result.get() == 1
    assert status_of(due) == ["EXPIRED"]


def test_without_a_broker_delay_runs_at_once(org):
    # given: no CELERY_BROKER_URL (tests, the embedded default), so the settings make tasks eager
    assert celery_app.conf.task_always_eager, "run the tests without CELERY_BROKER_URL"
    due = instance(org, timezone.now() - dt.timedelta(minutes=1))
    # when
    result = earned_promotions_expire_task.delay()
    # then
    assert result.get() == 1
    assert status_of(due) == ["EXPIRED"]


def test_beat_schedules_the_expiry_hourly_with_an_importable_task():
    entry = settings.CELERY_BEAT_SCHEDULE["expire-earned-promotions"]
    module_name, _, attribute = entry["task"].rpartition(".")
    task = getattr(importlib.import_module(module_name), attribute)
    assert task.name == entry["task"] and entry["task"] in celery_app.tasks
    assert entry["schedule"] == crontab(minute=0)
    for name, scheduled in settings.CELERY_BEAT_SCHEDULE.items():
        module_name, _, attribute = scheduled["task"].rpartition(".")
        assert getattr(importlib.import_module(module_name), attribute).name == scheduled["task"], name


# --- what reads the status agrees with it --------------------------------------------------------


def test_wallet_reads_the_same_before_and_after_expiry(org):
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org)
    past = instance(org, timezone.now() - dt.timedelta(hours=1), customer=customer, promotion=promotion)
    before = {entry.instance.pk: entry.status for entry in wallet_get(customer=customer, limit=10)}
    earned_promotions_expire()
    after = {entry.instance.pk: entry.status for entry in wallet_get(customer=customer, limit=10)}
    assert before == after == {past.pk: "EXPIRED"}
    assert wallet_get(customer=customer, limit=10, active_only=True) == []


def test_redemptions_refuse_an_expired_instance(api, org):
    # given: an instance whose validTill passed an hour ago, expired by the job
    customer = CustomerFactory(org=org)
    promotion = PromotionFactory(org=org, type="CUSTOMER")
    valid_till = timezone.now() - dt.timedelta(hours=1)
    expired = instance(org, valid_till, customer=customer, promotion=promotion)
    assert codes(redeem(api, body(customer, txn="before", line_items=[line(promotion, expired)]))) == [706]
    earned_promotions_expire()
    # then: a redemption now is refused as before; one backdated to before validTill (a late till
    # upload) is refused too once the instance is EXPIRED
    assert codes(redeem(api, body(customer, txn="after", line_items=[line(promotion, expired)]))) == [706]
    backdated = body(
        customer,
        txn="late",
        line_items=[line(promotion, expired)],
        transactionDate=to_epoch_ms(valid_till - dt.timedelta(hours=1)),
    )
    response = redeem(api, backdated)
    assert codes(response) == [706]
    assert response.json()["errors"][0]["message"] == f"Earned promotion {expired.pk} had expired."
    assert status_of(expired) == ["EXPIRED"]
