"""Writes to customers' wallets: issuing (issueBulk) and earning (earn, earn/bulk) cart promotions."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from psycopg.types.json import Jsonb

from promotions.models import Organization, Promotion, PromotionType, new_object_ids
from promotions.services import Actor, audit_event_record
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion
from wallets.validity import earned_valid_till, issued_valid_till

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
    """The instances a bulk issue produced or found (by customer id) and the customers it refused."""

    issued: dict[int, IssuedInstance] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    created: int = 0


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


def earned_promotions_issue(
    *, promotion: Promotion, customer_ids: list[int], context_id: str, actor: Actor
) -> IssueOutcome:
    """Issue `promotion` to each customer (issueBulk), once per (promotion, customer, contextId).

    Request-level errors (nothing written): 707 the type is not issuable (only CUSTOMER and
    EARNING are); 706, 709, 705 from `promotion_check_running`.
    Per-customer errors (reported next to the successes): 1007 no such customer in the org;
    713 the contextId is already used by an instance earned with another earnedFromType;
    708 the customer already holds `maxIssuancePerCustomer` issued instances.

    A retry with the same contextId returns the instances the first call created. The customer
    rows are locked (in id order, so concurrent issues never deadlock) before counting, so the
    per-customer limit holds under any concurrency, and the rows written are exactly the missing
    ones. On PostgreSQL the number of statements does not grow with the customers: each id list
    travels as one array and the rows as one COPY (timed by bench/issue_bulk.py); other databases
    take the ORM path (bulk_create in the batches they allow).
    """
    org = promotion.org
    if promotion.type not in ISSUABLE_TYPES:
        raise PromotionError(ErrorCode.UNSUPPORTED_PROMOTION_TYPE)
    now = timezone.now()
    promotion_check_running(promotion=promotion, org=org, now=now)

    wanted = sorted(set(customer_ids))
    outcome = IssueOutcome()
    with transaction.atomic():
        known = _customers_lock(org, wanted)
        existing = _issued_for_context(promotion, known, context_id) if known else {}
        limit = promotion.max_issuance_per_customer
        held = _issued_counts(promotion, known) if known and limit != -1 else {}
        valid_till = issued_valid_till(promotion)
        to_create: list[int] = []
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
            for customer_id, instance_id in zip(to_create, ids, strict=True):
                outcome.issued[customer_id] = IssuedInstance(instance_id, context_id, now, valid_till)
        outcome.created = len(to_create)
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
                "replayed": len(outcome.issued) - outcome.created,
                "failed": len(outcome.errors),
            },
        )
    return outcome


# The set-based steps of a bulk issue. On PostgreSQL an id list is bound as one bigint array
# rather than 10,000 `IN` parameters (typed, so the server can hash it whatever the plan: psycopg
# would type small ids as int2[], and a cross-type array is scanned linearly for every row), and
# rows are written with COPY. Elsewhere (the embedded SQLite) the ORM does the same work.


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _customers_lock(org: Organization, customer_ids: list[int]) -> set[int]:
    """Lock the org's customers among `customer_ids`, in id order; the ids found."""
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Customer._meta.db_table} WHERE org_id = %s AND id = ANY(%s::bigint[])"
                " ORDER BY id FOR UPDATE",
                [org.pk, customer_ids],
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
    promotion: Promotion, customer_ids: set[int], context_id: str
) -> dict[int, tuple[str, IssuedInstance]]:
    """The instances already created for `context_id` (seq 1), by customer: (earned_from_type, instance)."""
    if not _postgres():
        rows = EarnedPromotion.objects.filter(
            promotion=promotion, customer_id__in=customer_ids, earned_from_id=context_id, seq=1
        ).values_list("customer_id", "earned_from_type", "id", "earned_from_id", "event_time", "valid_till")
        return {row[0]: (row[1], IssuedInstance(*row[2:])) for row in rows}
    # Times as epoch microseconds: loading 20,000 timestamptz values through Django's loader
    # costs more than the query, and a retried request's instances share one or two times.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id, earned_from_type, id, earned_from_id,"
            " (extract(epoch FROM event_time) * 1000000)::bigint,"
            " (extract(epoch FROM valid_till) * 1000000)::bigint"
            f" FROM {EarnedPromotion._meta.db_table}"
            " WHERE promotion_id = %s AND customer_id = ANY(%s::bigint[]) AND earned_from_id = %s AND seq = 1",
            [promotion.pk, list(customer_ids), context_id],
        )
        rows = cursor.fetchall()
    moment = functools.cache(_from_epoch_us)
    return {
        customer_id: (
            earned_from_type,
            IssuedInstance(pk, earned_from_id, moment(event_us), moment(valid_us)),
        )
        for customer_id, earned_from_type, pk, earned_from_id, event_us, valid_us in rows
    }


def _from_epoch_us(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def _issued_counts(promotion: Promotion, customer_ids: set[int]) -> dict[int, int]:
    """Issued, not revoked instances of `promotion` held by each of the customers (absent: none)."""
    if _postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id, count(*) FROM {EarnedPromotion._meta.db_table}"
                " WHERE promotion_id = %s AND customer_id = ANY(%s::bigint[]) AND kind = %s AND status <> %s"
                " GROUP BY customer_id",
                [
                    promotion.pk,
                    list(customer_ids),
                    EarnedPromotion.Kind.ISSUED.value,
                    EarnedPromotion.Status.REVOKED.value,
                ],
            )
            return dict(cursor.fetchall())
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
    constant = tuple(
        _copy_value(f.get_db_prep_save(f.pre_save(template, add=True), connection)) for f in fields
    )
    columns = ", ".join(["id", "customer_id", *(f.column for f in fields)])
    statement = f"COPY {EarnedPromotion._meta.db_table} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.copy(statement) as copy_in:
        for instance_id, customer_id in zip(ids, customer_ids, strict=True):
            copy_in.write_row((instance_id, customer_id, *constant))
    return ids


def _copy_value(value):
    """A prepared value as COPY takes it: JSON as its text, encoded once rather than once per row."""
    if isinstance(value, Jsonb):
        return (value.dumps or json.dumps)(value.obj)
    return value


def _error(customer_id: int, code: ErrorCode, message: str | None = None) -> dict:
    return {"customerId": customer_id, "code": int(code), "message": message or code.message}


EARNABLE_TYPES = {PromotionType.EARNING, PromotionType.REWARD}
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
) -> list[EarnOutcome]:
    """Earn `earn_count` instances of each promotion for the customer (earn and earn/bulk).

    Request-level errors (nothing written): 714 the type cannot be earned (only EARNING and
    REWARD can); 706 the promotion has ended (or had ended at eventTime); 709 inactive or not
    started (or not started at eventTime); 705 org over its active-promotion cap; 400 eventTime
    more than 24 h ahead.
    Per-entry errors: 713 the earnedFromId was already used with another earnedFromType;
    708 instances beyond `maxEarningPerCustomer` (counted, as failedEarnCount).

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
        EarnedPromotion.objects.bulk_create(to_create, batch_size=INSERT_BATCH)
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
