"""Earning cart promotions (earn, earn/bulk, the admin's bulk-earn jobs)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization, Promotion, PromotionType
from promotions_site import metrics
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion
from wallets.services._sql import INSERT_BATCH
from wallets.services.issue import promotion_check_running
from wallets.services.tallies import promotion_tally_add
from wallets.validity import earned_valid_till

MAX_FUTURE_EVENT = dt.timedelta(hours=24)


@dataclass
class EarnRequest:
    """One entry of an earn: a promotion, how many instances, and the earn's idempotency key."""

    promotion: Promotion
    earn_count: int
    earned_from_id: str


@dataclass
class EarnOutcome:
    request: EarnRequest
    instances: list[EarnedPromotion] = field(default_factory=list)
    failed: int = 0
    error: ErrorCode | None = None
    error_message: str = ""


def earned_promotions_earn_check(
    *, promotion: Promotion, org: Organization, event_time: dt.datetime, now: dt.datetime
) -> None:
    """Refuse a promotion that cannot be earned at `event_time`, before anything is written.

    Errors: 714 the type cannot be earned (only EARNING and REWARD can); 706, 709, 705 from
    `promotion_check_running`; 400 eventTime more than 24 h ahead; 706 ended at eventTime; 709 not
    started at eventTime.
    """
    if promotion.type not in PromotionType.EARNABLE_TYPES:
        raise PromotionError(ErrorCode.EARN_NOT_SUPPORTED)
    promotion_check_running(promotion=promotion, org=org, now=now)
    if event_time > now + MAX_FUTURE_EVENT:
        raise PromotionError(ErrorCode.BAD_REQUEST, "eventTime can be at most 24 hours in the future.")
    if event_time >= promotion.end_date:
        raise PromotionError(ErrorCode.PROMOTION_EXPIRED, "Promotion has expired at the eventTime.")
    if event_time < promotion.start_date:
        raise PromotionError(ErrorCode.PROMOTION_NOT_RUNNING, "Promotion had not started at the eventTime.")


def earned_promotions_earn(
    *,
    customer: Customer,
    requests: list[EarnRequest],
    earned_from_type: str,
    event_time: dt.datetime,
    event_details: dict,
    actor: Actor,
    all_or_nothing: bool = False,
) -> list[EarnOutcome]:
    """Earn `earn_count` instances of each promotion for the customer (earn and earn/bulk).

    An EARNING promotion issued to the customer waits LOCKED in the wallet until earned: an earn
    unlocks the customer's LOCKED instances of the promotion first (the one issued under a
    contextId equal to the earnedFromId first, then the oldest), each keeping its id and its
    validTill, taking the earn's eventTime, eventDetails and earnedFrom; only the rest of
    `earn_count` is created.

    Request-level errors (nothing written): 714 the type cannot be earned (only EARNING and
    REWARD can); 706 the promotion has ended (or had ended at eventTime); 709 inactive or not
    started (or not started at eventTime); 705 org over its active-promotion cap; 400 eventTime
    more than 24 h ahead.
    Per-entry errors: 713 the earnedFromId was already used with another earnedFromType;
    708 instances beyond `maxEarningPerCustomer` (counted, as failedEarnCount; an unlocked
    instance counts as earned). With `all_or_nothing` (the single earn, which answers an error
    rather than a partial result) the first per-entry error is raised instead, and nothing is
    written, not even the audit event.

    Idempotent per (customer, promotion, earnedFromId): a replay returns the instances the earn
    unlocked and created, in that order, and creates only those missing up to `earn_count` (a
    replay unlocks nothing more). The customer row is locked first, so the earning limit holds
    under concurrency.
    """
    org = customer.org
    now = timezone.now()
    for request in requests:
        earned_promotions_earn_check(promotion=request.promotion, org=org, event_time=event_time, now=now)

    outcomes = []
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        to_create: list[EarnedPromotion] = []
        to_unlock: list[EarnedPromotion] = []
        for request in requests:
            outcome = EarnOutcome(request)
            outcomes.append(outcome)
            unlocked, created = _earn_entry_decide(
                outcome,
                customer=customer,
                earned_from_type=earned_from_type,
                event_time=event_time,
                event_details=event_details,
                pending=[*to_unlock, *to_create],
                now=now,
            )
            to_unlock += unlocked
            to_create += created
        refused = next((o for o in outcomes if o.error is not None), None)
        if all_or_nothing and refused is not None:
            raise PromotionError(refused.error)
        EarnedPromotion.objects.bulk_update(
            to_unlock, ["locked", "unlocked_from_type", "unlocked_from_id", "event_time", "event_details"]
        )
        EarnedPromotion.objects.bulk_create(to_create, batch_size=INSERT_BATCH)
        for promotion_id, count in sorted(Counter(i.promotion_id for i in to_create).items()):
            promotion_tally_add(org_id=org.pk, promotion_id=promotion_id, earned=count)
        for promotion_type, count in Counter(i.promotion.type for i in [*to_unlock, *to_create]).items():
            metrics.earned_count(count, promotion_type=promotion_type)
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.earn",
            object_type="Customer",
            object_id=customer.pk,
            data=_earn_audit_data(
                earned_from_type, outcomes, created=len(to_create), unlocked=[i.pk for i in to_unlock]
            ),
        )
    return outcomes


def _earn_entry_decide(
    outcome: EarnOutcome,
    *,
    customer: Customer,
    earned_from_type: str,
    event_time: dt.datetime,
    event_details: dict,
    pending: list[EarnedPromotion],
    now: dt.datetime,
) -> tuple[list[EarnedPromotion], list[EarnedPromotion]]:
    """One entry of an earn: the LOCKED instances it unlocks (changed, not written) and the new
    instances it needs (built, not written), up to its earnCount and the earning limit; `outcome`
    gets the entry's instances, old and new, and its refusal.

    `pending`: the instances the earn's earlier entries unlock or create, which count towards the limit.
    """
    request = outcome.request
    promotion = request.promotion
    key = request.earned_from_id
    same_key = list(
        EarnedPromotion.objects.filter(promotion=promotion, customer=customer).filter(
            Q(earned_from_id=key) | Q(unlocked_from_id=key)
        )
    )
    # The earn's own instances: those it unlocked (in id order), then those it created (in seq order).
    unlocked_before = sorted((i for i in same_key if i.unlocked_from_id == key), key=lambda i: i.pk)
    created_before = sorted(
        (i for i in same_key if i.kind == EarnedPromotion.Kind.EARNED and i.earned_from_id == key),
        key=lambda i: i.seq,
    )
    existing = unlocked_before + created_before
    if any(instance.earn_from_type != earned_from_type for instance in existing):
        outcome.failed, outcome.error = request.earn_count, ErrorCode.EARNED_FROM_TYPE_CHANGED
        return [], []
    outcome.instances = existing[: request.earn_count]
    wanted = max(0, request.earn_count - len(existing))
    allowed = _earn_allowed(promotion, customer, wanted, pending)
    unlocking = (
        _locked_instances(promotion, customer, key, allowed, now, pending) if not existing and allowed else []
    )
    for instance in unlocking:
        instance.locked = False
        instance.unlocked_from_type = earned_from_type
        instance.unlocked_from_id = key
        instance.event_time = event_time
        instance.event_details = event_details
    # A seq is free when no instance of this key holds it (an issue under the same contextId holds 1).
    taken = {i.seq for i in same_key if i.earned_from_id == key}
    free_seqs = (seq for seq in itertools.count(1) if seq not in taken)
    valid_till = earned_valid_till(promotion, customer.org, event_time)
    new = [
        EarnedPromotion(
            org=customer.org,
            customer=customer,
            promotion=promotion,
            kind=EarnedPromotion.Kind.EARNED,
            earned_from_type=earned_from_type,
            earned_from_id=key,
            seq=next(free_seqs),
            event_time=event_time,
            event_details=event_details,
            valid_till=valid_till,
        )
        for _ in range(allowed - len(unlocking))
    ]
    outcome.instances += unlocking + new
    if allowed < wanted:
        outcome.failed, outcome.error = wanted - allowed, ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED
    return unlocking, new


def _locked_instances(
    promotion: Promotion,
    customer: Customer,
    key: str,
    limit: int,
    now: dt.datetime,
    pending: list[EarnedPromotion],
) -> list[EarnedPromotion]:
    """Up to `limit` of the customer's LOCKED, usable instances of the promotion, locked for update:
    the one issued under contextId `key` first, then the oldest; in id order."""
    candidates = (
        EarnedPromotion.objects.filter(
            promotion=promotion,
            customer=customer,
            locked=True,
            status=EarnedPromotion.Status.ACTIVE,
            valid_till__gt=now,
        )
        .exclude(pk__in=[i.pk for i in pending])
        .order_by(Case(When(earned_from_id=key, then=Value(0)), default=Value(1)), "event_time", "id")
        .select_for_update()[:limit]
    )
    return sorted(candidates, key=lambda i: i.pk)


def _earn_allowed(
    promotion: Promotion, customer: Customer, wanted: int, pending: list[EarnedPromotion]
) -> int:
    """How many of `wanted` more instances the promotion's maxEarningPerCustomer still allows the
    customer: its earned and unlocked instances not revoked and the `pending` ones of this promotion
    count."""
    limit = promotion.max_earning_per_customer
    if limit in (None, -1):
        return wanted
    held = (
        EarnedPromotion.objects.filter(promotion=promotion, customer=customer)
        .filter(Q(kind=EarnedPromotion.Kind.EARNED) | ~Q(unlocked_from_id=""))
        .exclude(status=EarnedPromotion.Status.REVOKED)
        .count()
    ) + sum(1 for i in pending if i.promotion_id == promotion.pk)
    return max(0, min(wanted, limit - held))


def _earn_audit_data(
    earned_from_type: str, outcomes: list[EarnOutcome], *, created: int, unlocked: list[str]
) -> dict:
    return {
        "earnedFromType": earned_from_type,
        "entries": [
            {
                "promotionId": o.request.promotion.pk,
                "earnedFromId": o.request.earned_from_id,
                "earnCount": o.request.earn_count,
                "failed": o.failed,
            }
            for o in outcomes
        ],
        "created": created,
        "unlocked": unlocked,
    }
