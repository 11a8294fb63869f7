"""Writes to customers and their wallets: issuing (issueBulk) and earning (earn, earn/bulk) cart
promotions, creating customers, and issuing loyalty promotions (v2 issue)."""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
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
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion, Issual, LoyaltyEarnedPromotion
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
