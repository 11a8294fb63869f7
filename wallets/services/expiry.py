"""The validTill of wallet instances: re-dating them when their promotion changes, expiring them
when it has passed (expire_promotions, the hourly task)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization, Promotion
from wallets.models import EarnedPromotion
from wallets.validity import earned_valid_till

REDATE_BATCH = 2000


def earned_promotions_redate(*, promotion: Promotion) -> int:
    """Recompute validTill of the promotion's ACTIVE instances after its end date or its
    earned-validity days changed (Capillary's expiry-date change job). Returns how many changed.

    Issued instances, and earned ones of a promotion without validity days, end with the
    promotion: one UPDATE. Earned instances with validity days depend on their event time: they
    are recomputed in keyset-ordered batches with one UPDATE per batch. Call inside the update's
    transaction, with the promotion row locked.
    """
    org = promotion.org
    active = EarnedPromotion.objects.filter(promotion=promotion, status=EarnedPromotion.Status.ACTIVE)
    ends_with_promotion = active.filter(kind=EarnedPromotion.Kind.ISSUED)
    if not promotion.earned_validity_days:
        ends_with_promotion = active
    changed = ends_with_promotion.exclude(valid_till=promotion.end_date).update(valid_till=promotion.end_date)
    if not promotion.earned_validity_days:
        return changed
    earned = active.filter(kind=EarnedPromotion.Kind.EARNED).order_by("id")
    last_id = ""
    while True:
        batch = list(earned.filter(id__gt=last_id).only("id", "event_time", "valid_till")[:REDATE_BATCH])
        if not batch:
            return changed
        last_id = batch[-1].id
        stale = []
        for instance in batch:
            valid_till = earned_valid_till(promotion, org, instance.event_time)
            if instance.valid_till != valid_till:
                instance.valid_till = valid_till
                stale.append(instance)
        EarnedPromotion.objects.bulk_update(stale, ["valid_till"])
        changed += len(stale)


EXPIRE_BATCH = 5000


def earned_promotions_expire(
    *,
    org: Organization | None = None,
    now: dt.datetime | None = None,
    batch_size: int = EXPIRE_BATCH,
    actor: Actor | None = None,
) -> int:
    """Mark ACTIVE earned promotions whose validTill has passed (`valid_till <= now`) as EXPIRED, with
    `status_changed_at = now`; of one org, or of every org. Returns how many changed.

    The wallet already shows an ACTIVE instance past its validTill as EXPIRED, and a redemption
    dated after its validTill already refuses it (706); the one change is for a redemption
    backdated to before its validTill (a late till upload): it is refused once the instance is
    EXPIRED. An EXPIRED instance stays expired, like REDEEMED and REVOKED ones: a later end-date
    change re-dates only ACTIVE instances.

    Set-based, in batches of `batch_size`, each its own transaction: one SELECT of the next batch
    (through the (status, validTill) index; an expired row leaves that range, so no cursor is
    needed) with `FOR UPDATE SKIP LOCKED`, so an instance being redeemed right now is left to the
    next run rather than waited for or overwritten, then one UPDATE of those ids. Running it again
    changes nothing. One audit event per org whose instances expired, with the count, after the
    last batch (none when nothing expired, so the hourly task does not fill the audit log).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    actor = actor or Actor.system("expire_promotions")
    due = EarnedPromotion.objects.filter(status=EarnedPromotion.Status.ACTIVE, valid_till__lte=now)
    if org is not None:
        due = due.for_org(org)
    # No ORDER BY (the model orders by validTill): the batch is any `batch_size` due rows.
    due = due.order_by().select_for_update(skip_locked=True).values_list("id", "org_id")
    expired: dict[int, int] = {}
    while True:
        with transaction.atomic():
            batch = list(due[:batch_size])
            if batch:
                EarnedPromotion.objects.filter(
                    pk__in=[pk for pk, _ in batch], status=EarnedPromotion.Status.ACTIVE
                ).update(status=EarnedPromotion.Status.EXPIRED, status_changed_at=now)
        for _, org_id in batch:
            expired[org_id] = expired.get(org_id, 0) + 1
        if len(batch) < batch_size:
            break
    with transaction.atomic():
        for org_id, count in sorted(expired.items()):
            audit_event_record(
                org=org_id,
                actor=actor,
                action="earned_promotion.expire",
                object_type="Organization",
                object_id=org_id,
                data={"expired": count, "now": now.isoformat(), "batchSize": batch_size},
            )
    return sum(expired.values())
