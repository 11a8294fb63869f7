"""Writes to customers and their wallets: issuing (issueBulk) and earning (earn, earn/bulk) cart
promotions, creating customers, and issuing loyalty promotions (v2 issue)."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import itertools
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import psycopg
from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from psycopg.types.json import Jsonb

from promotions.models import (
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    Promotion,
    PromotionType,
    new_object_ids,
)
from promotions.services import Actor, audit_event_record
from promotions_site import metrics
from promotions_site.errors import ErrorCode, PromotionError
from wallets.identifiers import SOURCES, email_normalize, mobile_normalize
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion, Issual, LoyaltyEarnedPromotion
from wallets.validity import earned_valid_till, issued_valid_till

logger = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ISSUABLE_TYPES = {PromotionType.CUSTOMER, PromotionType.EARNING}
INSERT_BATCH = 5000


class IssuedInstance(NamedTuple):
    """An issued instance as issueBulk answers it (built from columns, not a model instance)."""

    id: str
    earned_from_id: str
    event_time: dt.datetime
    valid_till: dt.datetime


@dataclass
class IssueOutcome:
    """The instances a bulk issue produced or found (by customer id) and the customers it refused.

    `created_ids` are the customers given a new instance by this call (ascending); the others not
    in `errors` already held one for the contextId. `issued` stays empty when the caller asked for
    no instances (`earned_promotions_issue(instances=False)`).
    """

    issued: dict[int, IssuedInstance] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    created: int = 0
    created_ids: list[int] = field(default_factory=list)


def promotion_check_running(*, promotion: Promotion, org: Organization, now=None) -> None:
    """Refuse a promotion that cannot be given out now.

    Errors: 706 ended; 709 inactive or not started; 705 the org is over its cap of active,
    unexpired promotions (deactivate some before issuing more, as Capillary documents).
    """
    now = now or timezone.now()
    if promotion.end_date <= now:
        raise PromotionError(ErrorCode.PROMOTION_EXPIRED)
    if not promotion.active or promotion.start_date > now:
        raise PromotionError(ErrorCode.PROMOTION_NOT_RUNNING)
    active = Promotion.objects.for_org(org).filter(active=True, end_date__gt=now).count()
    if active > org.max_active_promotions:
        raise PromotionError(ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED)


def earned_promotions_issue_check(*, promotion: Promotion, now=None) -> None:
    """Refuse a promotion that issueBulk cannot issue at all, before anything is written.

    Errors: 707 the type is not issuable (only CUSTOMER and EARNING are); 706, 709, 705 from
    `promotion_check_running`.
    """
    if promotion.type not in ISSUABLE_TYPES:
        raise PromotionError(ErrorCode.UNSUPPORTED_PROMOTION_TYPE)
    promotion_check_running(promotion=promotion, org=promotion.org, now=now)


def earned_promotions_issue(
    *,
    promotion: Promotion,
    customer_ids: list[int],
    context_id: str,
    actor: Actor,
    instances: bool = True,
    audit_data: dict | None = None,
) -> IssueOutcome:
    """Issue `promotion` to each customer (issueBulk), once per (promotion, customer, contextId).

    Request-level errors (nothing written): those of `earned_promotions_issue_check` (707, 706,
    709, 705).
    Per-customer errors (reported next to the successes): 1007 no such customer in the org;
    713 the contextId is already used by an instance earned with another earnedFromType;
    708 the customer already holds `maxIssuancePerCustomer` issued instances.

    A retry with the same contextId returns the instances the first call created. The customer
    rows are locked (in id order, so concurrent issues never deadlock) before counting, so the
    per-customer limit holds under any concurrency, and the rows written are exactly the missing
    ones. On PostgreSQL the number of statements does not grow with the customers: each id list
    travels as one array and the rows as one COPY (timed by bench/issue_bulk.py); other databases
    take the ORM path (bulk_create in the batches they allow).

    `instances=False` (the issue_promotion command) skips reading and building the instances the
    API answers with: the outcome then says only which customers got a new instance
    (`created_ids`) and which were refused. `audit_data` is added to the audit event's data.
    """
    org = promotion.org
    now = timezone.now()
    earned_promotions_issue_check(promotion=promotion, now=now)

    wanted = sorted(set(customer_ids))
    outcome = IssueOutcome()
    with transaction.atomic():
        known = _customers_lock(org, wanted)
        existing = _issued_for_context(promotion, known, context_id, instances) if known else {}
        limit = promotion.max_issuance_per_customer
        # Only customers without an instance for this contextId can be given one: a replay counts nothing.
        candidates = known - existing.keys()
        held = _issued_counts(promotion, candidates) if candidates and limit != -1 else {}
        valid_till = issued_valid_till(promotion)
        to_create: list[int] = []
        replayed = 0
        for customer_id in wanted:
            if customer_id not in known:
                outcome.errors.append(
                    _error(customer_id, ErrorCode.CUSTOMER_FETCH_FAILED, "Customer not found.")
                )
            elif (found := existing.get(customer_id)) is not None:
                earned_from_type, instance = found
                if earned_from_type != EarnedPromotion.EarnedFromType.BULK_ISSUE:
                    outcome.errors.append(_error(customer_id, ErrorCode.EARNED_FROM_TYPE_CHANGED))
                else:
                    replayed += 1
                    if instances:
                        outcome.issued[customer_id] = instance
            elif limit != -1 and held.get(customer_id, 0) >= limit:
                outcome.errors.append(
                    _error(
                        customer_id,
                        ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED,
                        "Exceeded the max issuance per customer limit.",
                    )
                )
            else:
                to_create.append(customer_id)
        if to_create:
            values = {
                "org": org,
                "promotion": promotion,
                "kind": EarnedPromotion.Kind.ISSUED,
                "earned_from_type": EarnedPromotion.EarnedFromType.BULK_ISSUE,
                "earned_from_id": context_id,
                "seq": 1,
                "event_time": now,
                "valid_till": valid_till,
                "event_details": {},
            }
            ids = _earned_promotions_insert(values, to_create)
            if instances:
                for customer_id, instance_id in zip(to_create, ids, strict=True):
                    outcome.issued[customer_id] = IssuedInstance(instance_id, context_id, now, valid_till)
        outcome.created = len(to_create)
        outcome.created_ids = to_create
        metrics.issued_count(outcome.created, promotion_type=promotion.type)
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.issue_bulk",
            object_type="Promotion",
            object_id=promotion.pk,
            data={
                "contextId": context_id,
                "requested": len(wanted),
                "created": outcome.created,
                "replayed": replayed,
                "failed": len(outcome.errors),
                **(audit_data or {}),
            },
        )
    return outcome


# The set-based steps of a bulk issue. On PostgreSQL an id list is bound as one bigint array
# rather than 10,000 `IN` parameters (typed, so the server can hash it whatever the plan: psycopg
# would type small ids as int2[], and a cross-type array is scanned linearly for every row), and
# rows are written with COPY. Elsewhere (the embedded SQLite) the ORM does the same work.


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _bigint_array(ids) -> str:
    """Integer ids as one array literal for `%s::bigint[]`: formatting it costs a tenth of what
    binding a list of 10,000 ints does (the driver dumps a list element by element in Python)."""
    return "{" + ",".join(map(str, map(int, ids))) + "}"


def _customers_lock(org: Organization, customer_ids: list[int]) -> set[int]:
    """Lock the org's customers among `customer_ids`, in id order; the ids found."""
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Customer._meta.db_table} WHERE org_id = %s AND id = ANY(%s::bigint[])"
                " ORDER BY id FOR UPDATE",
                [org.pk, _bigint_array(customer_ids)],
            )
            return {row[0] for row in cursor.fetchall()}
    return set(
        Customer.objects.for_org(org)
        .filter(pk__in=customer_ids)
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )


def _issued_for_context(
    promotion: Promotion, customer_ids: set[int], context_id: str, instances: bool = True
) -> dict[int, tuple[str, IssuedInstance | None]]:
    """The instances already created for `context_id` (seq 1), by customer: (earned_from_type, instance);
    without `instances`, (earned_from_type, None): only that column is read."""
    if not _postgres():
        rows = EarnedPromotion.objects.filter(
            promotion=promotion, customer_id__in=customer_ids, earned_from_id=context_id, seq=1
        ).values_list("customer_id", "earned_from_type", "id", "earned_from_id", "event_time", "valid_till")
        return {row[0]: (row[1], IssuedInstance(*row[2:]) if instances else None) for row in rows}
    # Times as epoch microseconds: loading 20,000 timestamptz values through Django's loader
    # costs more than the query, and a retried request's instances share one or two times.
    columns = (
        "earned_from_type, id, earned_from_id,"
        " (extract(epoch FROM event_time) * 1000000)::bigint AS event_us,"
        " (extract(epoch FROM valid_till) * 1000000)::bigint AS valid_us"
    )
    rows = _per_customer(
        customer_ids,
        f"SELECT {columns if instances else 'earned_from_type'} FROM {EarnedPromotion._meta.db_table}"
        " WHERE promotion_id = %s AND customer_id = c.id AND earned_from_id = %s AND seq = 1 LIMIT 1",
        [promotion.pk, context_id],
    )
    if not instances:
        return {customer_id: (earned_from_type, None) for customer_id, earned_from_type in rows}
    moment = functools.cache(_from_epoch_us)
    return {
        customer_id: (
            earned_from_type,
            IssuedInstance(pk, earned_from_id, moment(event_us), moment(valid_us)),
        )
        for customer_id, earned_from_type, pk, earned_from_id, event_us, valid_us in rows
    }


def _per_customer(customer_ids: set[int], subquery: str, params: list) -> list[tuple]:
    """Run `subquery` (which names the customer `c.id`) once per customer id: (customer id, *its row).

    A LATERAL probe per id rather than `customer_id = ANY(ids)`: with that form the planner may
    read every instance of the promotion and filter them (it does while the table's statistics
    still say it is small), which grows with each chunk a large issuance has already written; a
    probe costs the same whatever the promotion already holds. The subquery's LIMIT or aggregate
    keeps it from being flattened into a join.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT c.id, s.* FROM unnest(%s::bigint[]) AS c(id) CROSS JOIN LATERAL ({subquery}) s",
            [_bigint_array(customer_ids), *params],
        )
        return cursor.fetchall()


def _from_epoch_us(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def _issued_counts(promotion: Promotion, customer_ids: set[int]) -> dict[int, int]:
    """Issued, not revoked instances of `promotion` held by each of the customers (absent: none)."""
    if _postgres():
        rows = _per_customer(
            customer_ids,
            f"SELECT count(*) AS held FROM {EarnedPromotion._meta.db_table}"
            " WHERE promotion_id = %s AND customer_id = c.id AND kind = %s AND status <> %s"
            " HAVING count(*) > 0",
            [promotion.pk, EarnedPromotion.Kind.ISSUED.value, EarnedPromotion.Status.REVOKED.value],
        )
        return dict(rows)
    return dict(
        EarnedPromotion.objects.filter(
            promotion=promotion, customer_id__in=customer_ids, kind=EarnedPromotion.Kind.ISSUED
        )
        .exclude(status=EarnedPromotion.Status.REVOKED)
        .values_list("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
    )


def _earned_promotions_insert(values: dict, customer_ids: list[int]) -> list[str]:
    """Write one instance with field `values` per customer, each with a new id; the ids, in order.

    On PostgreSQL every column but id and customer is prepared once, as the ORM would prepare it
    (defaults, auto_now_add), so a field added to the model needs no change here.
    """
    ids = new_object_ids(len(customer_ids))
    if not _postgres():
        EarnedPromotion.objects.bulk_create(
            [
                EarnedPromotion(id=instance_id, customer_id=customer_id, **values)
                for instance_id, customer_id in zip(ids, customer_ids, strict=True)
            ],
            batch_size=INSERT_BATCH,
        )
        return ids
    template = EarnedPromotion(**values)
    fields = [f for f in EarnedPromotion._meta.concrete_fields if f.attname not in ("id", "customer_id")]
    # The other columns are the same on every row: rendered once in COPY's text format, so a row
    # costs one string format rather than a dump of each of its values.
    constant = "\t".join(
        _copy_text(f.get_db_prep_save(f.pre_save(template, add=True), connection)) for f in fields
    )
    columns = ", ".join(["id", "customer_id", *(f.column for f in fields)])
    statement = f"COPY {EarnedPromotion._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.copy(statement) as copy_in:
        for start in range(0, len(ids), INSERT_BATCH):
            copy_in.write(
                "".join(
                    f"{instance_id}\t{customer_id:d}\t{constant}\n"
                    for instance_id, customer_id in zip(
                        ids[start : start + INSERT_BATCH],
                        customer_ids[start : start + INSERT_BATCH],
                        strict=True,
                    )
                )
            )
    return ids


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value) -> str:
    """A prepared value in COPY's text format: NULL as \\N, JSON as its text, times in ISO 8601."""
    if value is None:
        return "\\N"
    if isinstance(value, Jsonb):
        value = (value.dumps or json.dumps)(value.obj)
    elif isinstance(value, bool):
        value = "t" if value else "f"
    elif isinstance(value, dt.date | dt.time):
        value = value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def _error(customer_id: int, code: ErrorCode, message: str | None = None) -> dict:
    return {"customerId": customer_id, "code": int(code), "message": message or code.message}


EARNABLE_TYPES = {PromotionType.EARNING, PromotionType.REWARD}
MAX_FUTURE_EVENT = dt.timedelta(hours=24)


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


def _check_earnable(
    promotion: Promotion, org: Organization, event_time: dt.datetime, now: dt.datetime
) -> None:
    if promotion.type not in EARNABLE_TYPES:
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

    Request-level errors (nothing written): 714 the type cannot be earned (only EARNING and
    REWARD can); 706 the promotion has ended (or had ended at eventTime); 709 inactive or not
    started (or not started at eventTime); 705 org over its active-promotion cap; 400 eventTime
    more than 24 h ahead.
    Per-entry errors: 713 the earnedFromId was already used with another earnedFromType;
    708 instances beyond `maxEarningPerCustomer` (counted, as failedEarnCount). With
    `all_or_nothing` (the single earn, which answers an error rather than a partial result) the
    first per-entry error is raised instead, and nothing is written, not even the audit event.

    Idempotent per (customer, promotion, earnedFromId): a replay returns the instances already
    created and creates only those missing up to `earn_count`. The customer row is locked first,
    so the earning limit holds under concurrency.
    """
    org = customer.org
    now = timezone.now()
    for request in requests:
        _check_earnable(request.promotion, org, event_time, now)

    outcomes = []
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        to_create: list[EarnedPromotion] = []
        for request in requests:
            promotion = request.promotion
            outcome = EarnOutcome(request)
            outcomes.append(outcome)
            existing = list(
                EarnedPromotion.objects.filter(
                    promotion=promotion, customer=customer, earned_from_id=request.earned_from_id
                ).order_by("seq")
            )
            if any(instance.earned_from_type != earned_from_type for instance in existing):
                outcome.failed, outcome.error = request.earn_count, ErrorCode.EARNED_FROM_TYPE_CHANGED
                continue
            outcome.instances = existing[: request.earn_count]
            missing = [
                seq for seq in range(1, request.earn_count + 1) if seq not in {i.seq for i in existing}
            ]
            allowed = len(missing)
            limit = promotion.max_earning_per_customer
            if limit not in (None, -1):
                held = (
                    EarnedPromotion.objects.filter(
                        promotion=promotion, customer=customer, kind=EarnedPromotion.Kind.EARNED
                    )
                    .exclude(status=EarnedPromotion.Status.REVOKED)
                    .count()
                ) + sum(1 for i in to_create if i.promotion_id == promotion.pk)
                allowed = max(0, min(allowed, limit - held))
            valid_till = earned_valid_till(promotion, org, event_time)
            for seq in missing[:allowed]:
                instance = EarnedPromotion(
                    org=org,
                    customer=customer,
                    promotion=promotion,
                    kind=EarnedPromotion.Kind.EARNED,
                    earned_from_type=earned_from_type,
                    earned_from_id=request.earned_from_id,
                    seq=seq,
                    event_time=event_time,
                    event_details=event_details,
                    valid_till=valid_till,
                )
                to_create.append(instance)
                outcome.instances.append(instance)
            if allowed < len(missing):
                outcome.failed, outcome.error = (
                    len(missing) - allowed,
                    ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED,
                )
        refused = next((o for o in outcomes if o.error is not None), None)
        if all_or_nothing and refused is not None:
            raise PromotionError(refused.error)
        EarnedPromotion.objects.bulk_create(to_create, batch_size=INSERT_BATCH)
        for promotion_type, count in Counter(i.promotion.type for i in to_create).items():
            metrics.earned_count(count, promotion_type=promotion_type)
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.earn",
            object_type="Customer",
            object_id=customer.pk,
            data={
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
                "created": len(to_create),
            },
        )
    return outcomes


# --- revokeEarn ----------------------------------------------------------------------------------

REVOCABLE_TYPES = {PromotionType.CUSTOMER, PromotionType.EARNING, PromotionType.REWARD}


@dataclass
class RevokeRequest:
    """One entry of a revokeEarn body: a promotion id and the earn ids to revoke under it."""

    promotion_id: str
    earn_ids: list[str]


@dataclass
class RevokeOutcome:
    """The entries revoked (promotion id -> earn ids, in request order) and the entries refused."""

    revoked: dict[str, list[str]] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    changed: int = 0


def earned_promotions_revoke(
    *, customer: Customer, details: list[RevokeRequest], actor: Actor
) -> RevokeOutcome:
    """Revoke the customer's earned (or issued) instances listed per promotion (revokeEarn).

    Each entry is all or nothing, and is refused with one of (in this order): 404 no such
    promotion in the org; 730 a POS or CODE promotion; 731 an earn id that is not an instance of
    this promotion held by this customer (unknown, another customer's or promotion's, malformed);
    729 an instance already redeemed (status REDEEMED or redemptions recorded). The other entries
    are revoked. When every entry is refused, nothing is written and the PromotionError carries
    every entry's error, with the HTTP status of the first.

    Revoking an instance already REVOKED changes nothing and reports it as revoked (a retry is
    safe). The customer row is locked first, then the instances in id order, so a revoke and an
    issue, earn or redemption for the same customer never interleave. One UPDATE sets the status
    and `status_changed_at`; one audit event records the request. A revoked instance no longer
    counts towards maxIssuancePerCustomer / maxEarningPerCustomer (see earned_promotions_issue).
    """
    org = customer.org
    now = timezone.now()
    outcome = RevokeOutcome()
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        promotions = Promotion.objects.for_org(org).in_bulk([d.promotion_id for d in details])
        instances = {
            instance.pk: instance
            for instance in EarnedPromotion.objects.filter(
                customer=customer, pk__in={i for d in details for i in d.earn_ids}
            )
            .order_by("pk")
            .select_for_update()
            .only("pk", "promotion_id", "status", "redemption_count")
        }
        to_revoke: list[str] = []
        for entry in details:
            earn_ids = list(dict.fromkeys(entry.earn_ids))
            refusal = _revoke_refusal(promotions.get(entry.promotion_id), earn_ids, instances)
            if refusal is not None:
                code, message = refusal
                outcome.errors.append(
                    {"promotionId": entry.promotion_id, "code": int(code), "message": message}
                )
                continue
            outcome.revoked[entry.promotion_id] = earn_ids
            to_revoke.extend(earn_ids)
        if not outcome.revoked:
            first = outcome.errors[0]
            raise PromotionError(ErrorCode(first["code"]), first["message"], errors=outcome.errors)
        outcome.changed = (
            EarnedPromotion.objects.filter(pk__in=to_revoke)
            .exclude(status=EarnedPromotion.Status.REVOKED)
            .update(status=EarnedPromotion.Status.REVOKED, status_changed_at=now)
        )
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.revoke_earn",
            object_type="Customer",
            object_id=customer.pk,
            data={"revoked": outcome.revoked, "changed": outcome.changed, "errors": outcome.errors},
        )
    return outcome


def _revoke_refusal(
    promotion: Promotion | None, earn_ids: list[str], instances: dict[str, EarnedPromotion]
) -> tuple[ErrorCode, str] | None:
    """Why one revokeEarn entry cannot be revoked, or None when it can."""
    if promotion is None:
        return ErrorCode.NOT_FOUND, "Passed promotion is not found"
    if promotion.type not in REVOCABLE_TYPES:
        return ErrorCode.EARN_REVOKE_NOT_SUPPORTED, ErrorCode.EARN_REVOKE_NOT_SUPPORTED.message
    invalid = [i for i in earn_ids if i not in instances or instances[i].promotion_id != promotion.pk]
    if invalid:
        return ErrorCode.EARN_ID_INVALID, f"Invalid earn id: {_id_list(invalid)}"
    redeemed = [
        i
        for i in earn_ids
        if instances[i].status == EarnedPromotion.Status.REDEEMED or instances[i].redemption_count > 0
    ]
    if redeemed:
        return ErrorCode.EARN_ALREADY_REDEEMED, f"Earn already redeemed: {_id_list(redeemed)}"
    return None


def _id_list(ids: list[str], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


# --- Customers -----------------------------------------------------------------------------------

# The identifier each unique constraint guards: its API name and its model field.
_CUSTOMER_IDENTIFIER_CONSTRAINTS = {
    "customer_mobile_unique_per_org": ("mobile", "mobile"),
    "customer_email_unique_per_org": ("email", "email"),
    "customer_external_id_unique_per_org": ("externalId", "external_id"),
}


def _customer_constraint(error: IntegrityError) -> str | None:
    """The violated constraint: PostgreSQL names it; SQLite names the columns (`wallets_customer.mobile`)."""
    name = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
    if name:
        return name
    text = str(error)
    for constraint, (_, field_name) in _CUSTOMER_IDENTIFIER_CONSTRAINTS.items():
        if text.endswith(f"wallets_customer.{field_name}"):
            return constraint
    return None


def customer_create(
    *,
    org: Organization,
    mobile: str | None = None,
    email: str | None = None,
    external_id: str | None = None,
    first_name: str = "",
    last_name: str = "",
    source: str = "INSTORE",
    actor: Actor,
) -> Customer:
    """Create a customer of `org`, findable by at least one identifier.

    Identifiers come validated and in their stored spelling (`wallets.identifiers`: mobile digits
    without `+`, email lower-case). Errors: 400 no identifier at all; 409 (CONFLICT) an identifier
    is already another customer's in this org, the message naming it. Uniqueness is the database's
    (`customer_*_unique_per_org`): the insert runs and its IntegrityError is the answer, so two
    concurrent creates with one identifier give exactly one customer. The audit event names the
    identifiers given, not their values.
    """
    if not (mobile or email or external_id):
        raise PromotionError(
            ErrorCode.BAD_REQUEST, "At least one of mobile, email or externalId is required."
        )
    customer = Customer(
        org=org,
        mobile=mobile or None,
        email=email or None,
        external_id=external_id or None,
        first_name=first_name,
        last_name=last_name,
        source=source,
    )
    try:
        with transaction.atomic():
            customer.save(force_insert=True)
            audit_event_record(
                org=org,
                actor=actor,
                action="customer.create",
                object_type="Customer",
                object_id=customer.pk,
                data={
                    "identifiers": [
                        name
                        for name, value in (("mobile", mobile), ("email", email), ("externalId", external_id))
                        if value
                    ],
                    "source": source,
                },
            )
    except IntegrityError as exc:
        constraint = _customer_constraint(exc)
        if constraint not in _CUSTOMER_IDENTIFIER_CONSTRAINTS:
            raise
        name, field_name = _CUSTOMER_IDENTIFIER_CONSTRAINTS[constraint]
        raise PromotionError(
            ErrorCode.CONFLICT,
            f"{name} {getattr(customer, field_name)} is already used by another customer of this org.",
        ) from exc
    return customer


# --- Loyalty promotions (v2 issue) ---------------------------------------------------------------


@dataclass
class LoyaltyIssueOutcome:
    """The customer's issual (enrolment) and, for a direct issue, the earn it created."""

    issual: Issual
    earned: LoyaltyEarnedPromotion | None
    enrolled: bool


def _issual_get_or_create(
    *, customer: Customer, program: LoyaltyProgram, loyalty_promotion: LoyaltyPromotion, source: str
) -> tuple[Issual, bool]:
    """The customer's one issual for the promotion, and whether this call created it.

    `INSERT ... ON CONFLICT DO NOTHING RETURNING` on `issual_unique_per_customer`: never a
    "does it exist?" read first, so a concurrent writer can only lose the insert, not duplicate it.
    """
    meta = Issual._meta
    columns = [
        meta.get_field(name).column
        for name in ("org", "customer", "program", "loyalty_promotion", "source", "created_at")
    ]
    conflict = [meta.get_field(name).column for name in ("customer", "loyalty_promotion")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {meta.db_table} ({', '.join(columns)}) VALUES (%s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {meta.pk.column}",
            [customer.org_id, customer.pk, program.pk, loyalty_promotion.pk, source, timezone.now()],
        )
        created = cursor.fetchone() is not None
    return Issual.objects.get(customer=customer, loyalty_promotion=loyalty_promotion), created


def loyalty_promotion_issue(
    *,
    customer: Customer,
    program: LoyaltyProgram,
    loyalty_promotion: LoyaltyPromotion,
    source: str,
    actor: Actor,
) -> LoyaltyIssueOutcome:
    """Issue a loyalty promotion to a customer (`POST /v2/promotion/issue`).

    LOYALTY (direct issue): enrols the customer (one `Issual` per customer and promotion, created on
    the first issue, reused after) and creates one `LoyaltyEarnedPromotion` per call: not idempotent,
    as in Capillary, every call issues again until `max_issuance_per_customer` (-1 unlimited) earns
    exist. LOYALTY_EARNING (enrol and issue): enrols only; the earn comes later from the promotion's
    own criteria, so `earned` is None, the limit is not consulted and enrolling again returns the
    same issual.

    Errors (nothing written): 1101 the program is not the customer's org's; 8874 the promotion is
    not in that program; 8890 (answered as a warning) the promotion is inactive, not started or
    ended, or the customer already holds the limit. The customer row is locked before counting, so
    the limit holds under any concurrency.
    """
    org_id = customer.org_id
    if program.org_id != org_id:
        raise PromotionError(ErrorCode.INVALID_PROGRAM_ID)
    if loyalty_promotion.org_id != org_id or loyalty_promotion.program_id != program.pk:
        raise PromotionError(ErrorCode.INVALID_LOYALTY_PROMOTION_ID)
    now = timezone.now()
    if not (loyalty_promotion.active and loyalty_promotion.start_date <= now < loyalty_promotion.end_date):
        raise PromotionError(ErrorCode.PROMOTION_NOT_ISSUED)
    direct_issue = loyalty_promotion.type == LoyaltyPromotion.Type.LOYALTY

    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        limit = loyalty_promotion.max_issuance_per_customer
        if direct_issue and limit != -1:
            held = LoyaltyEarnedPromotion.objects.filter(
                customer=customer, loyalty_promotion=loyalty_promotion
            ).count()
            if held >= limit:
                raise PromotionError(ErrorCode.PROMOTION_NOT_ISSUED)
        issual, enrolled = _issual_get_or_create(
            customer=customer, program=program, loyalty_promotion=loyalty_promotion, source=source
        )
        earned = None
        if direct_issue:
            earned = LoyaltyEarnedPromotion.objects.create(
                org_id=org_id, issual=issual, customer=customer, loyalty_promotion=loyalty_promotion
            )
            metrics.issued_count(1, promotion_type="LOYALTY")
        audit_event_record(
            org=org_id,
            actor=actor,
            action="loyalty_promotion.issue" if direct_issue else "loyalty_promotion.enrol",
            object_type="LoyaltyPromotion",
            object_id=loyalty_promotion.pk,
            data={
                "customerId": customer.pk,
                "programId": program.pk,
                "issualId": issual.pk,
                "earnedId": earned.pk if earned else None,
                "enrolled": enrolled,
                "source": source,
            },
        )
    return LoyaltyIssueOutcome(issual=issual, earned=earned, enrolled=enrolled)


# --- Bulk jobs (the admin's issue and bulk-earn runs) ------------------------------------------------

BULK_JOB_CHUNK_SIZE = settings.BULK_JOB_CHUNK_SIZE
_RESOLVE_BATCH = 5000


@dataclass
class BulkJobPreview:
    """What a bulk job would do, before it is confirmed (nothing is written to compute it)."""

    total: int = 0
    found: int = 0
    unknown: int = 0
    duplicates: int = 0
    already_holding: int = 0
    over_limit: int = 0  # at maxIssuancePerCustomer, and not holding it with this contextId
    same_context: int = 0  # hold it with this contextId already: a replay, nothing new for them
    unknown_values: list[str] = field(default_factory=list)  # the first PREVIEW_UNKNOWN_SHOWN of them

    @property
    def to_give(self) -> int:
        """The customers who would get something new (for an earn: every customer found)."""
        return self.found - self.same_context - self.over_limit


PREVIEW_UNKNOWN_SHOWN = 10
BULK_EARNED_FROM_TYPES = (
    EarnedPromotion.EarnedFromType.ACTIVITY,
    EarnedPromotion.EarnedFromType.MILESTONE,
    EarnedPromotion.EarnedFromType.REWARD,
)
MAX_EARN_ENTRIES = 100
MAX_EARN_COUNT = 100


def _customers_resolve(org: Organization, identifier_type: str, values: list[str]) -> dict[str, int]:
    """identifier value (as given) -> customer id, for the values that name one of the org's customers."""
    from wallets.identifiers import email_normalize, mobile_normalize

    column, normalise = {
        "id": ("pk", lambda v: int(v) if v.isascii() and v.isdigit() and 0 < int(v) < 2**63 else None),
        "mobile": ("mobile", mobile_normalize),
        "email": ("email", lambda v: email_normalize(v) or None),
        "externalId": ("external_id", lambda v: v or None),
    }[identifier_type]
    keys = {}
    for value in values:
        key = normalise(value.strip())
        if key is not None:
            keys.setdefault(key, []).append(value)
    found: dict[str, int] = {}
    wanted = list(keys)
    for start in range(0, len(wanted), _RESOLVE_BATCH):
        batch = wanted[start : start + _RESOLVE_BATCH]
        for key, customer_id in (
            Customer.objects.for_org(org).filter(**{f"{column}__in": batch}).values_list(column, "pk")
        ):
            for value in keys[key]:
                found[value] = customer_id
    return found


def bulk_job_check(
    *, org: Organization, kind: str, promotion: Promotion | None, params: dict | None = None
) -> None:
    """Refuse a bulk job that cannot run, before anything is written.

    Issue: 707 the type is not issuable (only CUSTOMER and EARNING are); 706, 709, 705 from
    `promotion_check_running`; 400 no contextId (when `params` are given).
    Earn (`params`: earnedFromType ACTIVITY | MILESTONE | REWARD, earnedFromId, and 1..100 entries of
    {promotionId, earnCount 1..100}, each promotion once): 400 for a malformed entry, 404 a promotion
    that is not the org's, 714 a type that cannot be earned (only EARNING and REWARD can), 706, 709, 705.
    """
    now = timezone.now()
    if kind == BulkJob.Kind.ISSUE:
        if promotion is None or promotion.org_id != org.pk:
            raise PromotionError(ErrorCode.NOT_FOUND, "Promotion not found.")
        if promotion.type not in ISSUABLE_TYPES:
            raise PromotionError(ErrorCode.UNSUPPORTED_PROMOTION_TYPE)
        promotion_check_running(promotion=promotion, org=org, now=now)
        if params is not None and not 0 < len(str(params.get("contextId") or "")) <= 255:
            raise PromotionError(ErrorCode.BAD_REQUEST, "contextId is required (at most 255 characters).")
        return
    if kind != BulkJob.Kind.EARN:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"Unknown bulk job kind {kind!r}.")
    params = params or {}
    if params.get("earnedFromType") not in BULK_EARNED_FROM_TYPES:
        raise PromotionError(
            ErrorCode.BAD_REQUEST, f"earnedFromType must be one of {', '.join(BULK_EARNED_FROM_TYPES)}."
        )
    if not 0 < len(str(params.get("earnedFromId") or "")) <= 255:
        raise PromotionError(ErrorCode.BAD_REQUEST, "earnedFromId is required (at most 255 characters).")
    entries = params.get("entries") or []
    if not 0 < len(entries) <= MAX_EARN_ENTRIES:
        raise PromotionError(ErrorCode.BAD_REQUEST, f"Give 1 to {MAX_EARN_ENTRIES} promotions to earn.")
    counts = [entry.get("earnCount") for entry in entries]
    if not all(type(count) is int and 0 < count <= MAX_EARN_COUNT for count in counts):
        raise PromotionError(ErrorCode.BAD_REQUEST, f"earnCount must be 1 to {MAX_EARN_COUNT}.")
    ids = [entry.get("promotionId") for entry in entries]
    if len(set(ids)) != len(ids):
        raise PromotionError(ErrorCode.BAD_REQUEST, "Each promotion can be listed once.")
    found = Promotion.objects.for_org(org).in_bulk([i for i in ids if isinstance(i, str)])
    for promotion_id in ids:
        if promotion_id not in found:
            raise PromotionError(ErrorCode.NOT_FOUND, f"Promotion {promotion_id} not found.")
        _check_earnable(found[promotion_id], org, now, now)


def bulk_job_preview(
    *,
    org: Organization,
    kind: str,
    promotion: Promotion | None,
    identifier_type: str,
    values: list[str],
    params: dict | None = None,
) -> BulkJobPreview:
    """Counts for the confirmation page: found, unknown (and the first few unknown values), duplicated
    in the input, and (issue) customers already holding the promotion, holding it with this contextId
    (a replay: nothing new for them) and at their maxIssuancePerCustomer. Refuses what `bulk_job_create` would refuse (`bulk_job_check`; an earn is
    checked when its `params` are given). Writes nothing."""
    if kind == BulkJob.Kind.ISSUE or params is not None:
        bulk_job_check(org=org, kind=kind, promotion=promotion, params=params)
    preview = BulkJobPreview(total=len(values))
    resolved = _customers_resolve(org, identifier_type, values)
    customer_ids = []
    seen = set()
    for value in values:
        customer_id = resolved.get(value)
        if customer_id is None:
            preview.unknown += 1
            if len(preview.unknown_values) < PREVIEW_UNKNOWN_SHOWN:
                preview.unknown_values.append(value)
        elif customer_id in seen:
            preview.duplicates += 1
        else:
            seen.add(customer_id)
            customer_ids.append(customer_id)
    preview.found = len(customer_ids)
    if kind == BulkJob.Kind.ISSUE and promotion is not None:
        context_id = (params or {}).get("contextId")
        limit = promotion.max_issuance_per_customer
        for start in range(0, len(customer_ids), _RESOLVE_BATCH):
            batch = customer_ids[start : start + _RESOLVE_BATCH]
            replayed = set()
            if context_id:
                replayed = set(
                    EarnedPromotion.objects.filter(
                        promotion=promotion, customer_id__in=batch, earned_from_id=context_id, seq=1
                    ).values_list("customer_id", flat=True)
                )
            preview.same_context += len(replayed)
            held = (
                EarnedPromotion.objects.filter(
                    promotion=promotion, customer_id__in=batch, kind=EarnedPromotion.Kind.ISSUED
                )
                .exclude(status=EarnedPromotion.Status.REVOKED)
                .values("customer_id")
                .annotate(n=Count("id"))
                .values_list("customer_id", "n")
            )
            for customer_id, count in held:
                preview.already_holding += 1
                if limit != -1 and count >= limit and customer_id not in replayed:
                    preview.over_limit += 1
    return preview


def bulk_job_create(
    *,
    org: Organization,
    kind: str,
    promotion: Promotion | None,
    params: dict,
    identifier_type: str,
    values: list[str],
    user,
    input_file=None,
    input_name: str = "",
    idempotency_key: str = "",
) -> BulkJob:
    """Record a bulk job and its items (one per input value, in input order); unknown customers are
    FAILED items (1007) from the start, a customer listed twice is processed once (the later lines
    are DONE as duplicates). Nothing is issued or earned yet: `bulk_job_start` runs it.

    Errors (nothing written): those of `bulk_job_check`. With an `idempotency_key`, a second call
    with the same key (a double-clicked confirm) returns the job the first one created, even when
    both race: the key is unique per org.
    """
    bulk_job_check(org=org, kind=kind, promotion=promotion, params=params)
    if idempotency_key and (existing := _bulk_job_by_key(org, idempotency_key)) is not None:
        return existing
    resolved = _customers_resolve(org, identifier_type, values)
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint: the twin of a raced confirm fails here
                job = BulkJob.objects.create(
                    org=org,
                    kind=kind,
                    promotion=promotion,
                    params=params,
                    identifier_type=identifier_type,
                    total=len(values),
                    created_by=user,
                    input_file=input_file or "",
                    input_name=input_name,
                    idempotency_key=idempotency_key,
                )
        except IntegrityError:
            if idempotency_key and (existing := _bulk_job_by_key(org, idempotency_key)) is not None:
                return existing
            raise
        seen: set[int] = set()
        items = []
        failed = duplicates = 0
        for line, value in enumerate(values, start=1):
            customer_id = resolved.get(value)
            item = BulkJobItem(job=job, line=line, identifier=value[:254], customer_id=customer_id)
            if customer_id is None:
                item.status, item.code = BulkJobItem.Status.FAILED, int(ErrorCode.CUSTOMER_FETCH_FAILED)
                item.message = "Customer not found."
                failed += 1
            elif customer_id in seen:
                item.status, item.message = BulkJobItem.Status.DONE, "Listed earlier in the input."
                duplicates += 1
            if customer_id is not None:
                seen.add(customer_id)
            items.append(item)
        BulkJobItem.objects.bulk_create(items, batch_size=5000)
        BulkJob.objects.filter(pk=job.pk).update(failed=failed, done=duplicates)
        audit_event_record(
            org=org,
            actor=Actor.for_user(user) if user else Actor.system("bulk_job"),
            action="bulk_job.create",
            object_type="BulkJob",
            object_id=job.pk,
            data={"kind": kind, "promotion": promotion.pk if promotion else None, "total": len(values)},
        )
    job.refresh_from_db()
    return job


def _bulk_job_by_key(org: Organization, key: str) -> BulkJob | None:
    return BulkJob.objects.for_org(org).filter(idempotency_key=key).first()


def bulk_job_chunks(*, job) -> list[tuple[int, int]]:
    """The job's pending items as id ranges [low, high) of at most BULK_JOB_CHUNK_SIZE items each."""
    ids = BulkJobItem.objects.filter(job=job, status=BulkJobItem.Status.PENDING).order_by("id")
    bounds = list(ids.values_list("id", flat=True)[::BULK_JOB_CHUNK_SIZE])
    last = ids.order_by("-id").values_list("id", flat=True).first()
    if last is None:
        return []
    edges = [*bounds, last + 1]
    return list(itertools.pairwise(edges))


def bulk_job_run_chunk(*, job_id: int, low: int, high: int) -> int:
    """Process the job's PENDING items with id in [low, high) through the issue or earn service.

    Idempotent: only PENDING items are taken, the services are idempotent per contextId /
    earnedFromId, and the job's counters grow by the items this call moved out of PENDING. Returns
    that number. The items are locked waiting, not skipping: a chunk delivered again while another
    run of it still holds them (a killed worker's transaction lives on until its statement ends)
    takes over what that run leaves PENDING, instead of skipping it and leaving the job unfinished.
    """
    with transaction.atomic():
        job = BulkJob.objects.select_related("org", "promotion", "created_by").get(pk=job_id)
        items = list(
            BulkJobItem.objects.select_for_update()
            .filter(job=job, status=BulkJobItem.Status.PENDING, id__gte=low, id__lt=high)
            .order_by("id")
        )
        if not items:
            return 0
        if job.status == BulkJob.Status.PENDING:
            BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.PENDING).update(
                status=BulkJob.Status.RUNNING, started_at=timezone.now()
            )
        actor = Actor.for_user(job.created_by) if job.created_by else Actor.system("bulk_job")
        results = _bulk_job_apply(job, [item.customer_id for item in items], actor)
        done = failed = 0
        for item in items:
            code, message = results.get(item.customer_id, (None, ""))
            item.status = BulkJobItem.Status.FAILED if code else BulkJobItem.Status.DONE
            item.code, item.message = code, message[:255]
            failed += bool(code)
            done += not code
        BulkJobItem.objects.bulk_update(items, ["status", "code", "message"], batch_size=2000)
        BulkJob.objects.filter(pk=job.pk).update(done=F("done") + done, failed=F("failed") + failed)
        metrics.bulk_job_items_count(kind=job.kind, done=done, failed=failed)
        BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.RUNNING).exclude(
            items__status=BulkJobItem.Status.PENDING
        ).update(status=BulkJob.Status.DONE, finished_at=timezone.now())
    return len(items)


def _bulk_job_apply(job, customer_ids: list[int], actor: Actor) -> dict[int, tuple[int, str]]:
    """Run one chunk's customers through the service; customer id -> (error code, message) for failures."""
    failures: dict[int, tuple[int, str]] = {}
    if job.kind == "ISSUE":
        try:
            outcome = earned_promotions_issue(
                promotion=job.promotion,
                customer_ids=list(dict.fromkeys(customer_ids)),
                context_id=job.params["contextId"],
                actor=actor,
            )
        except PromotionError as error:  # the promotion stopped running mid-job: the chunk fails
            return {customer_id: (int(error.code), error.message) for customer_id in customer_ids}
        for error in outcome.errors:
            failures[error["customerId"]] = (error["code"], error["message"])
        return failures
    entries = job.params["entries"]
    promotions = {
        p.pk: p for p in Promotion.objects.for_org(job.org).filter(pk__in=[e["promotionId"] for e in entries])
    }
    customers = Customer.objects.for_org(job.org).select_related("org").in_bulk(customer_ids)
    for customer_id in dict.fromkeys(customer_ids):
        requests = [
            EarnRequest(
                promotion=promotions[entry["promotionId"]],
                earn_count=entry["earnCount"],
                earned_from_id=job.params["earnedFromId"],
            )
            for entry in entries
        ]
        try:
            outcomes = earned_promotions_earn(
                customer=customers[customer_id],
                requests=requests,
                earned_from_type=job.params["earnedFromType"],
                event_time=timezone.now(),
                event_details={"id": job.params["earnedFromId"], "type": job.params["earnedFromType"]},
                actor=actor,
            )
        except PromotionError as error:
            failures[customer_id] = (int(error.code), error.message)
            continue
        refused = [o for o in outcomes if o.error is not None]
        if refused:
            failures[customer_id] = (int(refused[0].error), refused[0].error.message)
    return failures


def bulk_job_start(*, job: BulkJob) -> None:
    """Run a created job: small jobs (BULK_JOB_INLINE_MAX items or fewer) at once, in this request;
    larger ones as one Celery task per chunk, which any number of workers take in parallel. With no
    broker (the embedded default) the same chunks run in-process, in a background thread
    (`BULK_JOBS_IN_PROCESS=thread`, the default) or before returning (`sync`). Dispatch happens after
    the caller's transaction commits."""
    chunks = bulk_job_chunks(job=job)
    if not chunks:
        BulkJob.objects.filter(pk=job.pk).exclude(status=BulkJob.Status.DONE).update(
            status=BulkJob.Status.DONE, started_at=timezone.now(), finished_at=timezone.now()
        )
        return
    inline = job.total <= settings.BULK_JOB_INLINE_MAX
    transaction.on_commit(lambda: _bulk_job_dispatch(job.pk, chunks, inline=inline))


def bulk_job_retry(*, job: BulkJob, user) -> None:
    """Run a FAILED job again: the failure left its unprocessed items PENDING, and only those run,
    through the same idempotent chunks, so nothing already done is done twice.

    Errors: 409 the job has not failed (it is pending, running or done).
    """
    with transaction.atomic():
        retried = BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.FAILED).update(
            status=BulkJob.Status.RUNNING,
            error="",
            finished_at=None,
            started_at=Coalesce(F("started_at"), Value(timezone.now())),
        )
        if not retried:
            raise PromotionError(ErrorCode.CONFLICT, "Only a failed job can be retried.")
        job.refresh_from_db()
        audit_event_record(
            org=job.org_id,
            actor=Actor.for_user(user) if user else Actor.system("bulk_job"),
            action="bulk_job.retry",
            object_type="BulkJob",
            object_id=job.pk,
            data={"pending": job.total - job.processed},
        )
        bulk_job_start(job=job)


BULK_JOB_CHUNK_TASK = "wallets.tasks.bulk_job_chunk_task"


def _bulk_job_dispatch(job_id: int, chunks: list[tuple[int, int]], *, inline: bool) -> None:
    # Looked up by name: wallets.tasks imports this module to run a chunk, so importing it back would
    # tie the two into an import cycle. WalletsConfig.ready registers the task in every process.
    bulk_job_chunk_task = current_app.tasks[BULK_JOB_CHUNK_TASK]
    if inline or settings.BULK_JOBS_IN_PROCESS == "sync":
        try:
            _bulk_job_run_all(job_id, chunks)
        except Exception:
            # The job records the failure (FAILED, with the reason) for the page that started it.
            logger.exception("bulk job %s failed", job_id)
    elif settings.CELERY_BROKER_URL:
        try:
            for low, high in chunks:
                bulk_job_chunk_task.delay(job_id, low, high)
        except Exception as error:  # the broker is unreachable: the job can be retried once it is back
            logger.exception("bulk job %s could not be queued", job_id)
            BulkJob.objects.filter(pk=job_id).update(
                status=BulkJob.Status.FAILED,
                error=f"Could not queue the job: {type(error).__name__}: {error}"[:2000],
                finished_at=timezone.now(),
            )
    else:
        # In the caller's context: the thread's logs and audit events keep the request id.
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(_bulk_job_run_all, job_id, chunks),
            kwargs={"own_connection": True},
            name=f"bulk-job-{job_id}",
            daemon=True,
        ).start()


# SQLite's busy handler polls for the write lock every 100 ms at most: a runner that begins its next
# chunk the moment it commits keeps the lock from waiting writers (a till's redemption) for the whole job.
_SQLITE_PAUSE_BETWEEN_CHUNKS = 0.1


def _bulk_job_run_all(job_id: int, chunks: list[tuple[int, int]], *, own_connection: bool = False) -> None:
    try:
        for index, (low, high) in enumerate(chunks):
            if index and connection.vendor == "sqlite":
                time.sleep(_SQLITE_PAUSE_BETWEEN_CHUNKS)
            bulk_job_chunk_run(job_id=job_id, low=low, high=high)
    finally:
        if own_connection:
            connection.close()


def bulk_job_chunk_run(*, job_id: int, low: int, high: int) -> int:
    """One chunk, as a worker runs it: an unexpected failure marks the job FAILED (with the reason)
    and is raised again; the chunk's items stay PENDING, so running the chunk again resumes it."""
    try:
        return bulk_job_run_chunk(job_id=job_id, low=low, high=high)
    except Exception as error:
        BulkJob.objects.filter(pk=job_id).update(
            status=BulkJob.Status.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )
        raise


# --- Expiry (expire_promotions, the hourly task) -------------------------------------------------

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


# --- Customer import (import_customers) ----------------------------------------------------------
#
# A file is imported in chunks, each in its own transaction. Within a chunk the rows are decided in
# file order, each against the customers as the chunk found them plus the effect of the chunk's
# earlier rows; the customers the file's earlier chunks wrote are remembered in a TEMP table of the
# session (`_IMPORT_SEEN`: customer id -> line), so "the first occurrence wins" holds across chunks
# in constant memory. Preparing a chunk (checking and normalising its rows) touches no database, so
# the command prepares the next chunk while this one is written.

CUSTOMER_IMPORT_COLUMNS = ("customerId", "mobile", "email", "externalId", "firstName", "lastName", "source")
CUSTOMER_IMPORT_DEFAULT_SOURCE = "INSTORE"
_IMPORT_SEEN = "wallets_customer_import_seen"
_IMPORT_STAGE = "wallets_customer_import_stage"
_IMPORT_IDENTIFIERS = ("mobile", "email", "externalId")
_IMPORT_FIELDS = ("mobile", "email", "external_id", "first_name", "last_name", "source")
_IMPORT_SOURCES = frozenset(SOURCES)
_IMPORT_SQLITE_BATCH = 500  # values per `IN (...)`: SQLite allows 999 variables per statement
_IMPORT_ATTEMPTS = 3


class CustomerImportRow(NamedTuple):
    """One data row of an import file: its line number and its seven values as written in the file,
    in CUSTOMER_IMPORT_COLUMNS order."""

    line: int
    values: tuple[str, ...]


class CustomerImportReject(NamedTuple):
    """A row that was not imported: its line, its values as written in the file, and why."""

    line: int
    values: tuple[str, ...]
    reason: str


class _ParsedRow(NamedTuple):
    line: int
    values: tuple[str, ...]
    customer_id: int | None
    # mobile, email, external_id (None when absent), first_name, last_name, source ("" when absent)
    stored: tuple


@dataclass
class CustomerImportChunk:
    """A chunk's rows checked and normalised (`customers_import_prepare`), ready to be written.

    `alone`: rows without customerId whose identifiers no other row of the chunk has (new customers
    unless the database says otherwise); `rest`: the other well-formed rows; both in file order.
    """

    first_line: int
    last_line: int
    alone: list[_ParsedRow]
    rest: list[_ParsedRow]
    rejects: list[CustomerImportReject]
    # PostgreSQL: the rows `alone` (line, then the stored values, source defaulted) as COPY text,
    # formatted here, off the thread that waits for the database
    alone_copy: str = ""


@dataclass
class ChunkOutcome:
    """What one chunk did: rows inserted, updated (something changed), unchanged, and the rejects."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[CustomerImportReject] = field(default_factory=list)


@dataclass
class CustomerImport:
    """One file's import into `org`; `label` (the file name) goes into the audit events.
    `expect_new`: the last chunk met no existing customer (see `_import_chunk_write`)."""

    org: Organization
    actor: Actor
    label: str = ""
    expect_new: bool = True


@contextlib.contextmanager
def customers_import(*, org: Organization, actor: Actor, label: str = "") -> Iterator[CustomerImport]:
    """Open the import of one file: creates the session's TEMP tables, drops them at the end.

    Call outside a transaction (each chunk commits on its own) and pass every chunk of the file, in
    file order, to `customers_import_chunk`.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_SEEN}")
        cursor.execute(
            f"CREATE TEMP TABLE {_IMPORT_SEEN} (customer_id bigint PRIMARY KEY, line bigint NOT NULL)"
        )
        if _postgres():
            columns = ", ".join(
                f"{f.column} {f.db_type(connection)}"
                for f in (Customer._meta.get_field(name) for name in _IMPORT_FIELDS)
            )
            cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_STAGE}")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Customer._meta.db_table])
            # A row copied in without an id draws a customer id, in the server, as COPY reads it.
            cursor.execute(
                f"CREATE TEMP TABLE {_IMPORT_STAGE} (id bigint NOT NULL DEFAULT nextval(%s::regclass),"
                f" line bigint NOT NULL, action \"char\" NOT NULL DEFAULT 'I',"
                f" release boolean NOT NULL DEFAULT false, {columns})",
                [cursor.fetchone()[0]],
            )
    try:
        yield CustomerImport(org=org, actor=actor, label=label)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_SEEN}")
            if _postgres():
                cursor.execute(f"DROP TABLE IF EXISTS {_IMPORT_STAGE}")


def customers_import_prepare(
    rows: list[CustomerImportRow], *, new_rows_text: bool = True
) -> CustomerImportChunk:
    """Check and normalise a chunk of rows. No database access: safe in another thread.

    A row is `malformed: ...` when its customerId is not a positive integer, its mobile not 8 to 15
    digits (an optional leading +), its email invalid or over 254 characters, its externalId,
    firstName or lastName over 100 characters, its source not one of Capillary's, a value holds a
    NUL character, or it has no identifier at all (no customerId, mobile, email or externalId).
    Values are trimmed and put in the customers API's spelling (`wallets.identifiers`: mobile
    digits without +, email lower-case). `new_rows_text`: on PostgreSQL, also format the rows that
    look new as COPY text (worth it while the import meets new customers).
    """
    parsed: list[_ParsedRow] = []
    rejects: list[CustomerImportReject] = []
    for row in rows:
        result = _import_row_parse(row)
        if isinstance(result, str):
            rejects.append(CustomerImportReject(row.line, row.values, result))
        else:
            parsed.append(result)
    counts: list[dict] = [{}, {}, {}]
    for row in parsed:
        for k, value in enumerate(row.stored[:3]):
            if value is not None:
                counts[k][value] = counts[k].get(value, 0) + 1
    alone, rest = [], []
    for row in parsed:
        mobile, email, external_id = row.stored[:3]
        if (
            row.customer_id is None
            and (mobile is None or counts[0][mobile] == 1)
            and (email is None or counts[1][email] == 1)
            and (external_id is None or counts[2][external_id] == 1)
        ):
            alone.append(row)
        else:
            rest.append(row)
    lines = [row.line for row in rows] or [0]
    chunk = CustomerImportChunk(min(lines), max(lines), alone, rest, rejects)
    if new_rows_text and _postgres():
        chunk.alone_copy = _import_new_rows_text(alone)
    return chunk


_COPY_NULL = "\\N"
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_rows(rows) -> str:
    """Rows of values as COPY text (`_copy_text` for each value)."""
    return "".join(["\t".join(map(_copy_text, row)) + "\n" for row in rows])


def _import_new_rows_text(rows: list[_ParsedRow]) -> str:
    """The rows as COPY text for the staging table: line, then the stored values (source defaulted)."""
    default_source, null, special = CUSTOMER_IMPORT_DEFAULT_SOURCE, _COPY_NULL, _COPY_SPECIAL.search
    lines = []
    for row in rows:
        mobile, email, external_id, first_name, last_name, source = row.stored
        source = source or default_source
        if special("".join(row.values)):  # rare: a tab, line break or backslash to escape
            lines.append(_copy_rows([(row.line, mobile, email, external_id, first_name, last_name, source)]))
        else:
            lines.append(
                f"{row.line}\t{mobile or null}\t{email or null}\t{external_id or null}\t"
                f"{first_name}\t{last_name}\t{source}\n"
            )
    return "".join(lines)


def customers_import_chunk(*, run: CustomerImport, chunk: CustomerImportChunk) -> ChunkOutcome:
    """Insert or update `run.org`'s customers from one prepared chunk of the file.

    Each well-formed row, in file order, is:
    - rejected as `customerId not in this org` (another org's customer is not in this org);
    - rejected as `duplicate identifier in the file (first at line N)` when its customerId, or the
      customer one of its identifiers points at, was already imported by an earlier row of the file
      (the first occurrence wins, whatever chunk it was in);
    - with a customerId: rejected as `identifier owned by another customer (...)` when one of its
      identifiers is another customer's; else it updates that customer;
    - without: rejected as `identifiers belong to different customers (...)` when its identifiers
      point at two or more customers; else it updates the one customer they point at, or, when they
      point at nobody, inserts a customer.
    An empty cell leaves the stored value as it is (a new customer gets no such identifier, empty
    names and source INSTORE): an import never clears a value. A customer whose values all equal
    the row's is counted unchanged and not written, so importing a file again changes nothing. An
    update may give a customer a new identifier; the old one is then free for the file's later rows.

    The chunk is one transaction, with one audit event `customer.import` when it wrote anything.
    Should a concurrent writer take an identifier between the chunk's lookup and its writes (a
    unique constraint fails), the chunk is rolled back and decided again, up to 3 times; then the
    IntegrityError propagates: this chunk is not imported, the earlier ones stay.
    """
    for attempt in range(1, _IMPORT_ATTEMPTS + 1):
        outcome = ChunkOutcome(rejects=list(chunk.rejects))
        try:
            with transaction.atomic():
                _import_chunk_write(run, chunk, outcome)
                if outcome.inserted or outcome.updated:
                    audit_event_record(
                        org=run.org,
                        actor=run.actor,
                        action="customer.import",
                        object_type="Customer",
                        data={
                            "file": run.label,
                            "firstLine": chunk.first_line,
                            "lastLine": chunk.last_line,
                            "inserted": outcome.inserted,
                            "updated": outcome.updated,
                            "unchanged": outcome.unchanged,
                            "rejected": len(outcome.rejects),
                        },
                    )
        except IntegrityError:
            run.expect_new = False
            if attempt == _IMPORT_ATTEMPTS:
                raise
            continue
        break
    outcome.rejects.sort(key=lambda reject: reject.line)
    return outcome


class _EmailValidator(EmailValidator):
    """Django's email rule (the customers API's), faster on a million addresses: the patterns
    compiled up front (not behind Django's lazy proxies), and the verdict on the few thousand
    domains most addresses share remembered (a bounded cache: memory stays constant)."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
    domain_regex = re.compile(EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags)
    literal_regex = re.compile(EmailValidator.literal_regex.pattern, EmailValidator.literal_regex.flags)

    def __init__(self):
        super().__init__()
        self.validate_domain_part = functools.lru_cache(maxsize=4096)(super().validate_domain_part)


_email_validate = _EmailValidator()


def _import_row_parse(row: CustomerImportRow) -> _ParsedRow | str:
    """The row's values checked and in their stored spelling, or why it is malformed."""
    raw_id, raw_mobile, raw_email, external_id, first_name, last_name, source = row.values
    if "\x00" in "".join(row.values):
        return "malformed: contains a NUL character"
    customer_id = None
    raw_id = raw_id.strip()
    if raw_id:
        if not (raw_id.isascii() and raw_id.isdigit() and 0 < int(raw_id) < 2**63):
            return "malformed: customerId must be a positive integer"
        customer_id = int(raw_id)
    mobile = None
    raw_mobile = raw_mobile.strip()
    if raw_mobile:
        mobile = mobile_normalize(raw_mobile)
        if mobile is None:
            return "malformed: mobile must be 8 to 15 digits, optionally after a leading +"
    email = None
    raw_email = raw_email.strip()
    if raw_email:
        if len(raw_email) > 254:
            return "malformed: email longer than 254 characters"
        try:
            _email_validate(raw_email)
        except DjangoValidationError:
            return "malformed: email is not a valid address"
        email = email_normalize(raw_email)
    external_id, first_name, last_name = external_id.strip(), first_name.strip(), last_name.strip()
    for name, value in (("externalId", external_id), ("firstName", first_name), ("lastName", last_name)):
        if len(value) > 100:
            return f"malformed: {name} longer than 100 characters"
    source = source.strip()
    if source and source not in _IMPORT_SOURCES:
        return f"malformed: source must be one of {', '.join(SOURCES)}"
    if customer_id is None and not (mobile or email or external_id):
        return "malformed: no identifier (customerId, mobile, email or externalId)"
    stored = (mobile, email, external_id or None, first_name, last_name, source)
    return _ParsedRow(row.line, row.values, customer_id, stored)


def _import_chunk_write(run: CustomerImport, chunk: CustomerImportChunk, outcome: ChunkOutcome) -> None:
    """Decide every row and write; fills `outcome`. Inside the chunk's transaction.

    The rows `alone` are new customers unless an existing customer has one of their identifiers.
    While that keeps being true (`run.expect_new`) they are written straight away, the unique
    constraints doing the lookup; when one fails, that insert is undone (a savepoint) and every row
    takes the general path: one lookup of all the chunk's ids and identifiers, the decisions in
    file order (`_import_plan`), then set-based writes. Either way each row is decided alike.
    """
    rest = chunk.rest
    if chunk.alone and run.expect_new:
        try:
            with transaction.atomic():
                outcome.inserted += _import_insert_new(run.org, chunk)
        except IntegrityError:
            run.expect_new = False
            rest = sorted([*chunk.alone, *chunk.rest], key=lambda row: row.line)
    elif chunk.alone:
        rest = sorted([*chunk.alone, *chunk.rest], key=lambda row: row.line)
    if not rest:
        return
    ids = {row.customer_id for row in rest if row.customer_id is not None}
    values = [{row.stored[k] for row in rest if row.stored[k] is not None} for k in range(3)]
    if _postgres():
        known, seen = _import_lookup_postgres(run.org, ids, values)
    else:
        known, seen = _import_lookup_orm(run.org, ids, values)
    run.expect_new = not known
    plan = _import_plan(rest, known, seen, outcome.rejects)
    if _postgres():
        _import_write_postgres(run.org, plan, outcome)
    else:
        _import_write_orm(run.org, plan, outcome)
    outcome.unchanged += len(plan.unchanged)


def _import_insert_new(org: Organization, chunk: CustomerImportChunk) -> int:
    """Insert one new customer per row `alone` and remember them as imported; IntegrityError when
    an identifier is taken.

    PostgreSQL: the text `customers_import_prepare` formatted goes into the staging table with one
    COPY (each row drawing its id there), then into the customers and the imported customers with
    one statement each, so this thread spends no time per row.
    """
    rows = chunk.alone
    now = timezone.now()
    if not _postgres():
        created = Customer.objects.bulk_create(
            [Customer(org=org, created_at=now, **_import_values(row.stored)) for row in rows],
            batch_size=_IMPORT_SQLITE_BATCH // len(_IMPORT_FIELDS),
        )
        _import_seen_add([(customer.pk, row.line) for customer, row in zip(created, rows, strict=True)])
        return len(created)
    table = Customer._meta.db_table
    columns = ", ".join(Customer._meta.get_field(name).column for name in _IMPORT_FIELDS)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"TRUNCATE {_IMPORT_STAGE}")
        with cursor.copy(f"COPY {_IMPORT_STAGE} (line, {columns}) FROM STDIN") as copy_in:
            copy_in.write(chunk.alone_copy or _import_new_rows_text(rows))
        cursor.execute(
            f"INSERT INTO {table} (id, org_id, created_at, {columns})"
            f" SELECT id, %s, %s, {columns} FROM {_IMPORT_STAGE}",
            [org.pk, now],
        )
        inserted = cursor.rowcount
        cursor.execute(f"INSERT INTO {_IMPORT_SEEN} (customer_id, line) SELECT id, line FROM {_IMPORT_STAGE}")
    return inserted


def _import_values(stored: tuple) -> dict:
    values = dict(zip(_IMPORT_FIELDS, stored, strict=True))
    values["source"] = values["source"] or CUSTOMER_IMPORT_DEFAULT_SOURCE
    return values


def _import_seen_add(rows: list[tuple[int, int]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {_IMPORT_SEEN} (customer_id, line) VALUES (%s, %s)", rows)


@dataclass
class _ImportPlan:
    """A chunk's decisions. New customers' ids are negative placeholders until written."""

    inserts: list[tuple[int, int, tuple]] = field(default_factory=list)  # (placeholder, line, stored)
    updates: list[tuple[int, int, tuple]] = field(default_factory=list)  # (id, line, stored)
    unchanged: list[tuple[int, int]] = field(default_factory=list)  # (id, line)
    release: set[int] = field(default_factory=set)  # updated ids whose old identifier a later update takes


def _import_plan(
    rows: list[_ParsedRow], known: dict[int, tuple], seen: dict[int, int], rejects: list
) -> _ImportPlan:
    """Decide every row in file order (the rules: customers_import_chunk).

    `known`: the org's customers the rows name (by id or identifier), id -> stored values;
    `seen`: those of them the file's earlier chunks imported, id -> line. Both are updated as the
    rows are decided, so each row sees the effect of the rows before it.
    """
    plan = _ImportPlan()
    owners: list[dict] = [{}, {}, {}]  # per identifier: value -> customer id
    for customer_id, stored in known.items():
        for k in range(3):
            if stored[k] is not None:
                owners[k][stored[k]] = customer_id
    released: list[dict] = [{}, {}, {}]  # per identifier: value -> the updated customer that gave it up
    placeholder = 0
    for row in rows:
        customer_id, stored = row.customer_id, row.stored
        if customer_id is not None and customer_id not in known:
            rejects.append(CustomerImportReject(row.line, row.values, "customerId not in this org"))
            continue
        owner_of = [owners[k].get(stored[k]) if stored[k] is not None else None for k in range(3)]
        earlier = [seen[c] for c in (customer_id, *owner_of) if c is not None and c in seen]
        if earlier:
            reason = f"duplicate identifier in the file (first at line {min(earlier)})"
            rejects.append(CustomerImportReject(row.line, row.values, reason))
            continue
        if customer_id is not None:
            others = [
                f"{_IMPORT_IDENTIFIERS[k]}: customer {owner}"
                for k, owner in enumerate(owner_of)
                if owner is not None and owner != customer_id
            ]
            if others:
                reason = f"identifier owned by another customer ({', '.join(others)})"
                rejects.append(CustomerImportReject(row.line, row.values, reason))
                continue
            target = customer_id
        else:
            matched = {owner for owner in owner_of if owner is not None}
            if len(matched) > 1:
                pointers = [
                    f"{_IMPORT_IDENTIFIERS[k]}: customer {owner}"
                    for k, owner in enumerate(owner_of)
                    if owner is not None
                ]
                reason = f"identifiers belong to different customers ({', '.join(pointers)})"
                rejects.append(CustomerImportReject(row.line, row.values, reason))
                continue
            target = matched.pop() if matched else None
        if target is None:
            placeholder -= 1
            target = placeholder
            stored = (*stored[:5], stored[5] or CUSTOMER_IMPORT_DEFAULT_SOURCE)
            plan.inserts.append((target, row.line, stored))
        else:
            current = known[target]
            stored = tuple(new or old for new, old in zip(stored, current, strict=True))
            if stored == current:
                plan.unchanged.append((target, row.line))
            else:
                plan.updates.append((target, row.line, stored))
                for k in range(3):
                    if current[k] is not None and current[k] != stored[k]:
                        del owners[k][current[k]]
                        released[k][current[k]] = target
        for k in range(3):
            value = stored[k]
            if value is not None and owners[k].get(value) != target:
                if target > 0 and value in released[k]:
                    plan.release.add(released[k][value])
                owners[k][value] = target
        known[target] = stored
        seen[target] = row.line
    return plan


def _import_lookup_postgres(
    org: Organization, ids: set[int], values: list[set[str]]
) -> tuple[dict[int, tuple], dict[int, int]]:
    """The org's customers with one of the ids or identifier values (id -> stored values), and the
    lines of the file that already imported some of them.

    One query, each list bound as one array in binary (`%b`, on a psycopg cursor of the same
    connection: Django's cursors bind on the client, quoting 150,000 strings per chunk).
    """
    columns = ", ".join(f"c.{Customer._meta.get_field(name).column}" for name in _IMPORT_FIELDS)
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT c.id, {columns}, s.line FROM {Customer._meta.db_table} c"
            f" LEFT JOIN {_IMPORT_SEEN} s ON s.customer_id = c.id"
            " WHERE c.org_id = %b AND (c.id = ANY(%b::bigint[]) OR c.mobile = ANY(%b::varchar[])"
            " OR c.email = ANY(%b::varchar[]) OR c.external_id = ANY(%b::varchar[]))",
            [org.pk, list(ids), *(list(v) for v in values)],
        )
        rows = cursor.fetchall()
    known = {row[0]: row[1:7] for row in rows}
    seen = {row[0]: row[7] for row in rows if row[7] is not None}
    return known, seen


def _import_lookup_orm(
    org: Organization, ids: set[int], values: list[set[str]]
) -> tuple[dict[int, tuple], dict[int, int]]:
    """`_import_lookup_postgres` through the ORM, in batches of values."""
    known: dict[int, tuple] = {}
    customers = Customer.objects.for_org(org)
    for lookup, wanted in zip(("pk", *_IMPORT_FIELDS[:3]), (ids, *values), strict=True):
        wanted = list(wanted)
        for start in range(0, len(wanted), _IMPORT_SQLITE_BATCH):
            batch = wanted[start : start + _IMPORT_SQLITE_BATCH]
            for row in customers.filter(**{f"{lookup}__in": batch}).values_list("pk", *_IMPORT_FIELDS):
                known[row[0]] = row[1:]
    seen: dict[int, int] = {}
    found = list(known)
    with connection.cursor() as cursor:
        for start in range(0, len(found), _IMPORT_SQLITE_BATCH):
            batch = found[start : start + _IMPORT_SQLITE_BATCH]
            cursor.execute(
                f"SELECT customer_id, line FROM {_IMPORT_SEEN} WHERE customer_id IN ({', '.join(['%s'] * len(batch))})",
                batch,
            )
            seen.update(cursor.fetchall())
    return known, seen


def _import_write_postgres(org: Organization, plan: _ImportPlan, outcome: ChunkOutcome) -> None:
    """Write the plan: the inserted and updated rows into the staging table (COPY; new rows draw
    their ids there), then set-based statements; the unchanged rows straight into the imported
    customers."""
    table = Customer._meta.db_table
    columns = [Customer._meta.get_field(name).column for name in _IMPORT_FIELDS]
    listed = ", ".join(columns)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(f"TRUNCATE {_IMPORT_STAGE}")
        if plan.inserts:
            with cursor.copy(f"COPY {_IMPORT_STAGE} (line, {listed}) FROM STDIN") as copy_in:
                copy_in.write(_copy_rows((line, *stored) for _, line, stored in plan.inserts))
        if plan.updates:
            with cursor.copy(
                f"COPY {_IMPORT_STAGE} (id, line, action, release, {listed}) FROM STDIN"
            ) as copy_in:
                copy_in.write(
                    _copy_rows(
                        (customer_id, line, "U", "t" if customer_id in plan.release else "f", *stored)
                        for customer_id, line, stored in plan.updates
                    )
                )
        if plan.release:
            # Identifiers are unique row by row, not at the statement's end: a customer whose old
            # identifier another customer of the chunk takes lets go of it first.
            released = ", ".join(
                f"{col} = CASE WHEN c.{col} = s.{col} THEN c.{col} END" for col in columns[:3]
            )
            cursor.execute(
                f"UPDATE {table} c SET {released} FROM {_IMPORT_STAGE} s WHERE s.release AND c.id = s.id"
            )
        if plan.updates:
            assignments = ", ".join(f"{col} = s.{col}" for col in columns)
            current = ", ".join(f"c.{col}" for col in columns)
            wanted = ", ".join(f"s.{col}" for col in columns)
            cursor.execute(
                f"UPDATE {table} c SET {assignments} FROM {_IMPORT_STAGE} s"
                f" WHERE s.action = 'U' AND c.id = s.id AND c.org_id = %s"
                f" AND ({current}) IS DISTINCT FROM ({wanted})",
                [org.pk],
            )
            outcome.updated = cursor.rowcount
            outcome.unchanged += len(plan.updates) - cursor.rowcount
        if plan.inserts:
            cursor.execute(
                f"INSERT INTO {table} (id, org_id, created_at, {listed})"
                f" SELECT id, %s, %s, {listed} FROM {_IMPORT_STAGE} WHERE action = 'I'",
                [org.pk, timezone.now()],
            )
            outcome.inserted += cursor.rowcount
        if plan.inserts or plan.updates:
            cursor.execute(
                f"INSERT INTO {_IMPORT_SEEN} (customer_id, line) SELECT id, line FROM {_IMPORT_STAGE}"
            )
        if plan.unchanged:
            with cursor.copy(f"COPY {_IMPORT_SEEN} (customer_id, line) FROM STDIN") as copy_in:
                copy_in.write("".join([f"{customer_id}\t{line}\n" for customer_id, line in plan.unchanged]))


def _import_write_orm(org: Organization, plan: _ImportPlan, outcome: ChunkOutcome) -> None:
    """`_import_write_postgres` through the ORM: bulk_update and bulk_create in batches."""
    batch_size = _IMPORT_SQLITE_BATCH // len(_IMPORT_FIELDS)
    if plan.release:
        stale = Customer.objects.in_bulk(plan.release)
        for customer_id, _, stored in plan.updates:
            if customer_id in plan.release:
                customer = stale[customer_id]
                for name, value in zip(_IMPORT_FIELDS[:3], stored[:3], strict=True):
                    if getattr(customer, name) != value:
                        setattr(customer, name, None)
        Customer.objects.bulk_update(stale.values(), _IMPORT_FIELDS[:3], batch_size=batch_size)
    Customer.objects.bulk_update(
        [
            Customer(pk=customer_id, **dict(zip(_IMPORT_FIELDS, stored, strict=True)))
            for customer_id, _, stored in plan.updates
        ],
        _IMPORT_FIELDS,
        batch_size=batch_size,
    )
    outcome.updated = len(plan.updates)
    created = Customer.objects.bulk_create(
        [
            Customer(org=org, **dict(zip(_IMPORT_FIELDS, stored, strict=True)))
            for _, _, stored in plan.inserts
        ],
        batch_size=batch_size,
    )
    outcome.inserted += len(created)
    seen = [(customer.pk, line) for customer, (_, line, _) in zip(created, plan.inserts, strict=True)]
    seen += [(customer_id, line) for customer_id, line, _ in plan.updates]
    seen += plan.unchanged
    _import_seen_add(seen)
