"""Issuing cart promotions to customers (issueBulk, the issue_promotion command, the admin's issue jobs)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization, Promotion, PromotionType, new_object_ids
from promotions_site import metrics
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion
from wallets.services._sql import INSERT_BATCH, copy_text, on_postgres
from wallets.services.tallies import promotion_tally_add
from wallets.validity import issued_valid_till

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


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
    if promotion.type not in PromotionType.ISSUABLE_TYPES:
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
        to_create, replayed = _issue_decide(promotion, wanted, known, existing, outcome, instances)
        if to_create:
            _issue_write(promotion, to_create, context_id, now, outcome, instances)
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


def _issue_decide(
    promotion: Promotion,
    wanted: list[int],
    known: set[int],
    existing: dict[int, tuple[str, IssuedInstance | None]],
    outcome: IssueOutcome,
    instances: bool,
) -> tuple[list[int], int]:
    """Decide each wanted customer, in id order: refused (into `outcome.errors`), a replay (its
    instance into `outcome.issued`) or due a new instance. Returns those due one, and the replays.

    `known`: the customers found (and locked); `existing`: their instances for the contextId.
    """
    limit = promotion.max_issuance_per_customer
    # Only customers without an instance for this contextId can be given one: a replay counts nothing.
    candidates = known - existing.keys()
    held = _issued_counts(promotion, candidates) if candidates and limit != -1 else {}
    to_create: list[int] = []
    replayed = 0
    for customer_id in wanted:
        if customer_id not in known:
            outcome.errors.append(_error(customer_id, ErrorCode.CUSTOMER_FETCH_FAILED, "Customer not found."))
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
    return to_create, replayed


def _issue_write(
    promotion: Promotion,
    customer_ids: list[int],
    context_id: str,
    now: dt.datetime,
    outcome: IssueOutcome,
    instances: bool,
) -> None:
    """Write one new instance for `context_id` per customer; with `instances`, into `outcome.issued` too."""
    valid_till = issued_valid_till(promotion)
    values = {
        "org": promotion.org,
        "promotion": promotion,
        "kind": EarnedPromotion.Kind.ISSUED,
        "earned_from_type": EarnedPromotion.EarnedFromType.BULK_ISSUE,
        "earned_from_id": context_id,
        "seq": 1,
        "event_time": now,
        "valid_till": valid_till,
        "event_details": {},
        # An issued EARNING instance waits for its earn (LOCKED); a CUSTOMER one is usable at once.
        "locked": promotion.type == PromotionType.EARNING,
    }
    ids = _earned_promotions_insert(values, customer_ids)
    promotion_tally_add(org_id=promotion.org_id, promotion_id=promotion.pk, issued=len(ids))
    if instances:
        for customer_id, instance_id in zip(customer_ids, ids, strict=True):
            outcome.issued[customer_id] = IssuedInstance(instance_id, context_id, now, valid_till)


# The set-based steps of a bulk issue. On PostgreSQL an id list is bound as one bigint array
# rather than 10,000 `IN` parameters (typed, so the server can hash it whatever the plan: psycopg
# would type small ids as int2[], and a cross-type array is scanned linearly for every row), and
# rows are written with COPY. Elsewhere (the embedded SQLite) the ORM does the same work.


def _bigint_array(ids) -> str:
    """Integer ids as one array literal for `%s::bigint[]`: formatting it costs a tenth of what
    binding a list of 10,000 ints does (the driver dumps a list element by element in Python)."""
    return "{" + ",".join(map(str, map(int, ids))) + "}"


def _customers_lock(org: Organization, customer_ids: list[int]) -> set[int]:
    """Lock the org's customers among `customer_ids`, in id order; the ids found."""
    if on_postgres():
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
    if not on_postgres():
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
    if on_postgres():
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
    if not on_postgres():
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
        copy_text(f.get_db_prep_save(f.pre_save(template, add=True), connection)) for f in fields
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


def _error(customer_id: int, code: ErrorCode, message: str | None = None) -> dict:
    return {"customerId": customer_id, "code": int(code), "message": message or code.message}
