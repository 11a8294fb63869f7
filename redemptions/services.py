"""Recording and reversing redemptions.

A redemption is idempotent per (org, transactionIdentifier): the Redemption row is inserted as soon as
the customer is locked, so a concurrent or later replay meets the unique constraint, waits for the
first to commit, and gets the recorded answer (or 800 when its body differs). Every limit is taken
inside the same transaction with conditional writes, so limits hold under any concurrency:

- the earned instance's own counters (`redemption_count`, `transaction_count`, `discount_total`)
  carry its lifetime Earn-level limits; without an Earn REDEMPTION limit an instance is single-use;
- RedemptionCounter rows carry the Customer (scope: customer id), Promotion (scope: ""), Code
  (scope: `code:<PromoCode.id>`, the code the CODE promotion is redeemed through) limits and the
  Earn limits whose window resets (scope: `earn:<EarnedPromotion.id>`, the instance taken),
  one row per window the limit counts in (the window the transactionDate falls in, in the org's time
  zone: promotions/windows.py), all taken with one upsert that only grows a counter while it stays
  within its limit (a MOVING window's day buckets are then summed);
- Cart limits apply to the one transaction and need no counter.

Locks are taken in one order (the customer row, the transaction's key, earned instances, counters
sorted by restriction and scope), so concurrent redemptions never deadlock. A reversal gives back
exactly what the recording took, computed from the recorded lines by the same function.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import json
import logging
import operator
import os
import tempfile
import threading
import types
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.engine import RuleSet, evaluate
from promotions.engine.types import Context, StoreScope
from promotions.models import (
    ApiClient,
    Organization,
    PromoCode,
    Promotion,
    PromotionRestriction,
    PromotionType,
    RedemptionStrategy,
)
from promotions.rules import org_rules
from promotions.selectors import engine_settings_for, till_code_usable, till_resolve, till_unknown
from promotions.windows import LIFETIME, window_at, window_rule_stored
from promotions_site import metrics
from promotions_site.auth import ClientStale
from promotions_site.csvexport import CsvWriter
from promotions_site.errors import ErrorCode, PromotionError
from promotions_site.request_context import current_request_id
from redemptions.cart_locks import cart_lock_close, cart_locks_release_expired, units_reserved, window_peak
from redemptions.evaluation import CartLineInput, evaluation_cart
from redemptions.models import (
    ANONYMOUS_CUSTOMER_ID,
    CartLock,
    Evaluation,
    Redemption,
    RedemptionCounter,
    RedemptionDay,
    RedemptionLine,
    RedemptionPromotion,
    RedemptionReversal,
    code_scope,
    earn_scope,
)
from redemptions.selectors import redemption_records, redemptions_filtered, window_buckets
from redemptions.serializers import EXPORT_COLUMNS, REDEMPTION_LIST_RECORD
from redemptions.summaries import org_day
from wallets.models import BulkJob, Customer, EarnedPromotion, PromotionActivation
from wallets.selectors import customer_identifier_column, customers_by_identifier, instances_not_activated

logger = logging.getLogger(__name__)
COUNTED_LEVELS = (
    PromotionRestriction.Level.CUSTOMER,
    PromotionRestriction.Level.PROMOTION,
    PromotionRestriction.Level.CODE,
)
Kpi = PromotionRestriction.Kpi
Level = PromotionRestriction.Level


def _columns(model, names: set[str]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields if f.attname in names)


# The columns a redemption reads (`Model.from_db` wants them in the model's order): not the JSON rules.
PROMOTION_COLUMNS = _columns(Promotion, {"id", "org_id", "type", "active", "start_date", "end_date"})
RESTRICTION_COLUMNS = _columns(
    PromotionRestriction,
    {
        "id", "promotion_id", "level", "kpi", "limit", "window_kind", "window_cycle", "window_days",
        "window_week_start", "window_anchor_ms",
    },
)  # fmt: skip
# An earned instance's own counter of each kpi its Earn limits bound.
EARN_COLUMNS = (
    (Kpi.REDEMPTION, "redemption_count"),
    (Kpi.TRANSACTION, "transaction_count"),
    (Kpi.DISCOUNT, "discount_total"),
)


@dataclass(frozen=True)
class LineInput:
    """One `lineItems[]` (level LINEITEM) or `redemptions[]` (level CART) entry, validated."""

    level: str
    position: int
    promotion_id: str
    redemption_count: int
    discount: Decimal
    discount_applied_on_quantity: Decimal
    promotion_applied_on_quantity: Decimal
    sku: str = ""
    earned_promotion_id: str | None = None
    # `promoCode`: the code a CODE promotion is redeemed through (any case; docs/code-redemption.md).
    promo_code: str | None = None


@dataclass(frozen=True)
class RedemptionInput:
    """A validated redeem request."""

    # How the request names its customer: ("id", customerId), or an identifier name and value;
    # None for an anonymous sale (customerId -1).
    customer_lookup: tuple[str, str] | None
    transaction_identifier: str
    transaction_number: str
    transaction_date: dt.datetime
    amount: Decimal
    lines: list[LineInput]
    customer_identifier_type: str = ""
    customer_identifier_value: str = ""
    # The cart the discounts were computed on (`cartItems`, the evaluate API's shape) and the till's
    # store: read only when the org redeems on the capped strategy, which checks the discounts.
    cart_lines: list[CartLineInput] | None = None
    store: StoreScope | None = None
    # REDEMPTION_WITH_CART_EVALUATION: the evaluation redeemed (`promotionEvaluationId`) and the
    # identifiers of the promotions it applied (`appliedPromotionIdentifiers`).
    evaluation_id: str | None = None
    applied_identifiers: tuple[str, ...] | None = None
    # The X-CAP-API-ATTRIBUTION-TILL-CODE header as sent (None: not sent): the redemption's till is
    # the org's till of this code (none: 4001), else the API client's default till (`till_resolve`).
    till_code: str | None = None


class RecordedRow(types.SimpleNamespace):
    """A row as `redemption_record_v1` wrote it: its columns as attributes (`pk` too), no model."""


@dataclass
class RecordOutcome:
    """The redemption and its lines: model instances, or `RecordedRow`s with the same attributes."""

    redemption: Redemption | RecordedRow
    lines: list[RedemptionLine] | list[RecordedRow]
    replayed: bool = False


@dataclass
class _Usage:
    """What one promotion, or one earned instance, takes from its limits in one transaction."""

    redemptions: int = 0
    discount: Decimal = Decimal(0)
    transactions: int = 1

    def add(self, line) -> None:
        self.redemptions += line.redemption_count
        self.discount += line.discount

    def of(self, kpi: str) -> Decimal:
        return {
            Kpi.REDEMPTION: Decimal(self.redemptions),
            Kpi.TRANSACTION: Decimal(1),
            Kpi.DISCOUNT: self.discount,
        }[kpi]


@dataclass
class _Plan:
    promotions: dict[str, Promotion]
    restrictions: dict[str, list[PromotionRestriction]]  # per promotion id
    by_promotion: dict[str, _Usage] = field(default_factory=lambda: defaultdict(_Usage))
    by_instance: dict[str, _Usage] = field(default_factory=lambda: defaultdict(_Usage))
    # promotion id -> the PromoCode id a CODE promotion is redeemed through (its Code limits' scope)
    codes: dict[str, int] = field(default_factory=dict)
    # earned instance id -> its promotion id (its resetting Earn limits' counters, scope earn:<id>)
    instance_promotion: dict[str, str] = field(default_factory=dict)


def redemption_record(
    *,
    org: Organization,
    data: RedemptionInput,
    fingerprint: str,
    actor: Actor,
    api_client: ApiClient | None,
    client_check: str | None = None,
) -> RecordOutcome:
    """Record a redemption (`POST /redemptions`), or return the one already recorded under its key.

    On PostgreSQL, unless the org is on the capped strategy, in one statement: the function
    `redemption_record_v1` (migration redemptions 0011) does what `redemption_record_general` does,
    in the same order, with the same answers. `client_check` (`promotions_site.auth.client_check`)
    is the state of the API client and its org the caller read from its cache: the statement verifies
    it, and `ClientStale` asks the caller to authenticate afresh when it no longer holds.
    """
    # The capped strategy checks discounts, the cart-evaluation strategy binds the redemption to its
    # evaluation and its cart lock: both only on the general path (the function knows neither).
    general = org.redemption_strategy in (
        RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED,
        RedemptionStrategy.REDEMPTION_WITH_CART_EVALUATION,
    )
    if connection.vendor == "postgresql" and not general:
        return redemption_record_one_statement(
            org=org,
            data=data,
            fingerprint=fingerprint,
            actor=actor,
            api_client=api_client,
            client_check=client_check,
        )
    if client_check is not None:
        raise ClientStale  # the general path does not verify a cached client: the caller verifies it first
    return redemption_record_general(
        org=org, data=data, fingerprint=fingerprint, actor=actor, api_client=api_client
    )


def redemption_record_general(
    *, org: Organization, data: RedemptionInput, fingerprint: str, actor: Actor, api_client: ApiClient | None
) -> RecordOutcome:
    """`redemption_record` step by step through the ORM: on SQLite, for the capped strategy, and as the
    reference the tests hold the one-statement function to.

    Errors (nothing written): 4001 (400) the till-code header names no till of the org (checked
    first, as evaluate does); 404 the org has no such customer; 800 (409) the transactionIdentifier
    was recorded with another body; 400 a promotion not in the org, or `earnedPromotionId` on a
    POS/CODE promotion; 709 a promotion inactive or not started at transactionDate; 706 ended at
    transactionDate, or the earned instance expired; 715 an earned instance that is not this
    customer's instance of the line's promotion, or a wallet promotion (CUSTOMER, EARNING, REWARD)
    the customer holds no usable instance of; 731 the instance was revoked; 729 (409) the instance
    is used up; 409 a Cart, Customer or Promotion limit would be exceeded (the message names it).
    A LOCKED instance (an EARNING promotion issued, not yet earned) is never taken: 715. Nor is an
    instance of a promotion requiring the customer's activation (customerActivationRequired) that
    the customer has not activated (for the promotion, or for the instance): 715.

    An anonymous sale (`customer_lookup` None: customerId -1) is recorded without a customer. It
    can redeem POS and CODE promotions only (a wallet promotion: 715); their Cart and Promotion
    limits apply, Customer limits do not (there is nobody to count them for).

    Under REDEMPTION_WITH_CART_EVALUATION the redemption completes one evaluation
    (`_evaluation_bind`): 803 without one, or for an evaluation that is not this customer's, has
    expired, or whose cart was cancelled, replaced or already redeemed; 802 when the promotions or
    their identifiers differ from the evaluated ones; 804 when a promotion's discount exceeds the
    evaluated one. The cart's reservation becomes the redemption in the same transaction.
    """
    bound = org.redemption_strategy == RedemptionStrategy.REDEMPTION_WITH_CART_EVALUATION
    till_code = _till_code(api_client, data.till_code)
    now = timezone.now()
    if bound:
        if data.evaluation_id is None:
            raise _evaluation_refused(
                "promotionEvaluationId is required: this org redeems with cart evaluation."
            )
        cart_locks_release_expired(now=now, org=org)  # release on read
    key_inserted = False
    try:
        with transaction.atomic():
            customer_id = _customer_lock(org, data) if data.customer_lookup is not None else None
            redemption = Redemption(
                org=org,
                customer_id=customer_id,
                customer_identifier_type=data.customer_identifier_type if customer_id else "",
                customer_identifier_value=data.customer_identifier_value if customer_id else "",
                transaction_identifier=data.transaction_identifier,
                transaction_number=data.transaction_number,
                transaction_date=data.transaction_date,
                amount=data.amount,
                request_fingerprint=fingerprint,
                api_client=api_client,
                evaluation_id=data.evaluation_id if bound else None,
                till_code=till_code,
            )
            # A conflict on the key ends the transaction (nothing else is written yet); it is
            # answered below, from the redemption recorded under that key (or, bound to an
            # evaluation another transaction redeemed, 803).
            redemption.save(force_insert=True)
            key_inserted = True
            reserved_own: dict[tuple[int, str, dt.date], Decimal] = {}
            if bound:
                data, reserved_own = _evaluation_bind(org, data, customer_id, redemption, now)
            plan = _plan_load(Promotion.objects.for_org(org), {line.promotion_id for line in data.lines})
            _promotions_check(org, data, plan.promotions)
            if org.redemption_strategy == RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED:
                _discounts_check(org, data, customer_id)
            if customer_id is None:
                _anonymous_check(plan.promotions)
            data = _codes_check(org, data, customer_id, plan)
            earned = _instances_take(data, customer_id, plan)
            _limits_check_cart(plan)
            lines = _lines_record(redemption, data, earned, plan.codes)
            _promotions_redeemed_record(redemption, lines)
            _redemption_days_apply(org, redemption, lines, reversal=False)
            audit_event_record(
                org=org,
                actor=actor,
                action="redemption.record",
                object_type="Redemption",
                object_id=redemption.pk,
                data={
                    "transactionIdentifier": redemption.transaction_identifier,
                    "customerId": ANONYMOUS_CUSTOMER_ID if customer_id is None else customer_id,
                    "promotions": sorted(plan.promotions),
                    "earnedPromotions": sorted(plan.by_instance),
                },
            )
            metrics.redeemed_count()
            # Last: a Promotion counter is one row every redemption of the promotion updates, so it
            # is held only from here to the commit (a refusal still rolls back everything above).
            _counters_take(org, customer_id, plan, data.transaction_date, reserved_own)
    except IntegrityError as error:
        if key_inserted:
            raise
        if (
            bound
            and not Redemption.objects.for_org(org)
            .filter(transaction_identifier=data.transaction_identifier)
            .exists()
        ):
            raise _evaluation_refused(
                f"Cart evaluation {data.evaluation_id} was already redeemed by another transaction."
            ) from error
        return _recorded(org, data, fingerprint, error)
    return RecordOutcome(redemption, lines)


def _till_code(api_client: ApiClient | None, header: str | None) -> str:
    """The code of the till a redemption is recorded at (`RedemptionInput.till_code`); '' for none.
    4001 for a header naming no till of the org."""
    if api_client is None:
        return ""
    till = till_resolve(client=api_client, till_code=header)
    return till.code if till is not None else ""


def _evaluation_refused(message: str) -> PromotionError:
    return PromotionError(ErrorCode.CART_EVALUATION_INVALID, f"No valid cart evaluation id passed: {message}")


def _evaluation_bind(
    org: Organization, data: RedemptionInput, customer_id: int | None, redemption: Redemption, now
) -> tuple[RedemptionInput, dict[tuple[int, str, dt.date], Decimal]]:
    """Check a redemption against the evaluation it names and close that evaluation's cart as
    REDEEMED (its row locked: a cancel, an expiry or another redemption of it waits, then finds it
    closed). The request with each wallet line's instance filled from the evaluation (the one the
    cart reserved), and what the cart reserved of each counter (which the redemption's counters
    take over). Errors: 803, 802, 804 (see `redemption_record_general`)."""
    evaluation = Evaluation.objects.for_org(org).filter(pk=data.evaluation_id).first()
    if evaluation is None or evaluation.customer_id != customer_id:
        raise _evaluation_refused(f"{data.evaluation_id} is not an evaluation of this customer in the org.")
    lock = CartLock.objects.select_for_update().filter(pk=evaluation.pk).first()
    if lock is not None:
        if lock.status == CartLock.Status.REDEEMED:
            raise _evaluation_refused(f"the cart of evaluation {evaluation.pk} was already redeemed.")
        if lock.status != CartLock.Status.OPEN:
            raise _evaluation_refused(f"the cart of evaluation {evaluation.pk} was {lock.status.lower()}.")
        expires_at = lock.expires_at
    else:
        expires_at = evaluation.created_at + dt.timedelta(seconds=org.cart_lock_ttl_seconds)
    if expires_at <= now:
        raise _evaluation_refused(f"evaluation {evaluation.pk} expired.")
    evaluated = {entry["promotionId"]: entry for entry in evaluation.applied}
    if data.applied_identifiers is None or sorted(data.applied_identifiers) != sorted(
        entry["identifier"] for entry in evaluation.applied
    ):
        raise PromotionError(
            ErrorCode.REDEMPTION_IDENTIFIER_INVALID,
            "Redemption identifier is invalid: appliedPromotionIdentifiers must be the identifiers of "
            f"the promotions evaluation {evaluation.pk} applied.",
        )
    redeemed: dict[str, Decimal] = defaultdict(Decimal)
    for line in data.lines:
        redeemed[line.promotion_id] += line.discount
    if set(redeemed) != set(evaluated):
        raise PromotionError(
            ErrorCode.REDEMPTION_IDENTIFIER_INVALID,
            f"Redemption identifier is invalid: the promotions redeemed ({', '.join(sorted(redeemed))}) "
            f"are not the ones evaluation {evaluation.pk} applied ({', '.join(sorted(evaluated)) or 'none'}).",
        )
    for promotion_id in sorted(redeemed):
        if redeemed[promotion_id] > Decimal(evaluated[promotion_id]["discount"]):
            raise PromotionError(
                ErrorCode.DISCOUNT_NOT_GIVEN_FOR_CART,
                f"Promotion {promotion_id}: the discount redeemed, {redeemed[promotion_id].normalize():f}, "
                f"exceeds the {Decimal(evaluated[promotion_id]['discount']).normalize():f} evaluation "
                f"{evaluation.pk} gave.",
            )
    lines = []
    for line in data.lines:
        instance_id = evaluated[line.promotion_id].get("earnedPromotionId")
        if line.earned_promotion_id and instance_id and line.earned_promotion_id != instance_id:
            raise PromotionError(
                ErrorCode.REDEMPTION_IDENTIFIER_INVALID,
                f"Redemption identifier is invalid: evaluation {evaluation.pk} applied promotion "
                f"{line.promotion_id} with earned promotion {instance_id}, not {line.earned_promotion_id}.",
            )
        code = evaluated[line.promotion_id].get("promoCode")
        if line.promo_code and line.promo_code.strip().upper() != code:
            raise PromotionError(
                ErrorCode.REDEMPTION_IDENTIFIER_INVALID,
                f"Redemption identifier is invalid: evaluation {evaluation.pk} applied promotion "
                f"{line.promotion_id} "
                + (f"through code {code}" if code else "without a code")
                + f", not through {line.promo_code}.",
            )
        lines.append(
            replace(
                line,
                earned_promotion_id=line.earned_promotion_id or instance_id,
                promo_code=line.promo_code or code,
            )
        )
    reserved_own: dict[tuple[int, str, dt.date], Decimal] = {}
    if lock is not None:
        reserved_own = units_reserved(lock.pk)
        cart_lock_close(
            lock_id=lock.pk, status=CartLock.Status.REDEEMED, now=now, redemption_id=redemption.pk
        )
    return replace(data, lines=lines), reserved_own


def redemption_record_one_statement(
    *,
    org: Organization,
    data: RedemptionInput,
    fingerprint: str,
    actor: Actor,
    api_client: ApiClient | None,
    client_check: str | None = None,
) -> RecordOutcome:
    """`redemption_record` in one statement on PostgreSQL (`redemption_record_v1`): one round trip, one
    implicit transaction, nothing written when it refuses. Not for the capped strategy."""
    till_code = (data.till_code or "").strip() or None  # blank reads as not sent
    customer = None
    if data.customer_lookup is not None:
        customer = customer_identifier_column(*data.customer_lookup)
        if customer is None:
            raise PromotionError(ErrorCode.NOT_FOUND, "Customer not found")
    now = timezone.now()
    day = org_day(org, data.transaction_date)
    lines = json.dumps(
        [
            {
                "ord": ord_,
                "level": line.level,
                "position": line.position,
                "promotion_id": line.promotion_id,
                "sku": line.sku,
                "earned": line.earned_promotion_id,
                "count": line.redemption_count,
                "discount": str(line.discount),
                "daq": str(line.discount_applied_on_quantity),
                "paq": str(line.promotion_applied_on_quantity),
                "code": line.promo_code.strip().upper() if line.promo_code else None,
            }
            for ord_, line in enumerate(data.lines)
        ]
    )
    params = [
        org.pk,
        api_client.pk if api_client is not None else None,
        client_check,
        customer[0] if customer else None,
        str(customer[1]) if customer else None,
        data.customer_identifier_type,
        data.customer_identifier_value,
        data.transaction_identifier,
        data.transaction_number,
        data.transaction_date,
        data.amount,
        fingerprint,
        lines,
        now,
        # A day before today that is materialised keeps its counts exact; today and later never are.
        day if day < timezone.localdate(timezone=org.tz) else None,
        actor.type,
        actor.id,
        actor.name,
        current_request_id(),
        # A code that cannot name a till (too long, a NUL: PostgreSQL text holds none) is sent as '',
        # which names none either: refused by the statement, after it has verified a cached client.
        till_code if till_code is None or till_code_usable(till_code) else "",
        api_client.default_till_id if api_client is not None else None,
    ]
    with connection.server_bound_cursor(prepared=True) as cursor:
        cursor.execute(_RECORD_STATEMENT, params)
        answer = json.loads(cursor.fetchone()[0], parse_float=Decimal)
    if answer.get("stale"):
        raise ClientStale
    if answer.get("replay"):
        return _recorded(org, data, fingerprint, None)
    if "error" in answer:
        raise till_unknown(till_code or "") if answer["error"] == "till" else _refusal(org, answer)
    customer_id = answer["customer"]
    # What was written, as plain records (the answer renders them; building model instances cost
    # about a tenth of the request's Python time).
    redemption = RecordedRow(
        pk=answer["id"],
        id=answer["id"],
        org_id=org.pk,
        customer_id=customer_id,
        customer_identifier_type=data.customer_identifier_type if customer_id else "",
        customer_identifier_value=data.customer_identifier_value if customer_id else "",
        transaction_identifier=data.transaction_identifier,
        transaction_number=data.transaction_number,
        transaction_date=data.transaction_date,
        amount=data.amount,
        request_fingerprint=fingerprint,
        api_client_id=api_client.pk if api_client is not None else None,
        created_at=now,
        till_code=answer["till"],
    )
    written = {(level, position): (pk, earned, code) for level, position, pk, earned, code in answer["lines"]}
    recorded = []
    for line in data.lines:
        pk, earned, code_id = written[line.level, line.position]
        recorded.append(
            RecordedRow(
                pk=pk,
                id=pk,
                redemption_id=redemption.pk,
                level=line.level,
                position=line.position,
                sku=line.sku,
                promotion_id=line.promotion_id,
                earned_promotion_id=earned,
                promo_code_id=code_id,
                redemption_count=line.redemption_count,
                discount=line.discount,
                discount_applied_on_quantity=line.discount_applied_on_quantity,
                promotion_applied_on_quantity=line.promotion_applied_on_quantity,
            )
        )
    metrics.redeemed_count()
    return RecordOutcome(redemption, recorded)


# Prepared on each connection at its first run (`server_bound_cursor(prepared=True)`): PostgreSQL parses
# and plans it once per connection. Each parameter cast to the function's type: bound on the server,
# a parameter carries the type psycopg gave its Python value (a str is text, not jsonb).
_RECORD_TYPES = (
    "integer", "bigint", *["text"] * 7, "timestamptz", "numeric", "text", "jsonb", "timestamptz", "date",
    *["text"] * 5, "bigint",
)  # fmt: skip
_RECORD_STATEMENT = f"SELECT redemption_record_v1({', '.join(f'%s::{kind}' for kind in _RECORD_TYPES)})::text"


def _refusal(org: Organization, answer: dict) -> PromotionError:
    """The refusal `redemption_record_v1` answered, worded as the general path words it."""
    error, promotion_id = answer["error"], answer.get("promotion")
    if error == "customer":
        return PromotionError(ErrorCode.NOT_FOUND, "Customer not found")
    if error == "missing":
        return _missing(answer["ids"], org.pk)
    if error == "ended":
        return _ended(promotion_id)
    if error == "not_running":
        return _not_running(promotion_id)
    if error == "earned_not_wallet":
        return _earned_not_wallet(promotion_id, answer["type"])
    if error == "anonymous_wallet":
        return _anonymous_wallet(promotion_id, answer["type"])
    if error == "not_issued":
        return _not_issued(answer["instance"], answer["customer"], promotion_id)
    if error == "instance":
        return _instance_refused(
            answer["instance"],
            status=answer["status"],
            locked=answer["locked"],
            expired=answer["expired"],
            customer_id=answer["customer"],
            promotion_id=promotion_id,
        )
    if error == "no_instance":
        return _no_instance(promotion_id, answer["customer"])
    if error == "code":
        return _code_refused(
            answer["reason"], promotion_id, answer.get("code") or "", anonymous=bool(answer.get("anonymous"))
        )
    if error == "code_not_code":
        return PromotionError(
            ErrorCode.BAD_REQUEST,
            f"promoCode is only for CODE promotions ({promotion_id} is {answer['type']}).",
        )
    if error == "limit":
        return _limit_reached_of(answer["level"], answer["kpi"], Decimal(str(answer["limit"])), promotion_id)
    raise ValueError(f"redemption_record_v1 answered an unknown refusal: {answer}")


def _lines_record(
    redemption: Redemption,
    data: RedemptionInput,
    earned: dict[tuple[int, str], str | None],
    codes: dict[str, int] | None = None,
) -> list[RedemptionLine]:
    """Write the request's lines, each with the earned instance it took (`earned`, by position and
    level) and the promo code its CODE promotion is redeemed through (`codes`, by promotion id)."""
    codes = codes or {}
    return RedemptionLine.objects.bulk_create(
        RedemptionLine(
            redemption=redemption,
            level=line.level,
            position=line.position,
            sku=line.sku,
            promotion_id=line.promotion_id,
            earned_promotion_id=earned[line.position, line.level],
            promo_code_id=codes.get(line.promotion_id),
            redemption_count=line.redemption_count,
            discount=line.discount,
            discount_applied_on_quantity=line.discount_applied_on_quantity,
            promotion_applied_on_quantity=line.promotion_applied_on_quantity,
        )
        for line in data.lines
    )


def _promotions_redeemed_record(redemption: Redemption, lines: list[RedemptionLine]) -> None:
    """One row per promotion the transaction redeemed, with its date: what the audit's promotion filter reads."""
    RedemptionPromotion.objects.bulk_create(
        RedemptionPromotion(
            redemption=redemption, promotion_id=promotion_id, transaction_date=redemption.transaction_date
        )
        for promotion_id in dict.fromkeys(line.promotion_id for line in lines)
    )


def _customer_lock(org: Organization, data: RedemptionInput) -> int:
    """The id of the transaction's customer, found and locked by one query; 404 when the org has none such."""
    name, value = data.customer_lookup
    customer_id = (
        customers_by_identifier(org=org, identifier_name=name, identifier_value=value)
        .select_for_update()
        .values_list("pk", flat=True)
        .first()
    )
    if customer_id is None:
        raise PromotionError(ErrorCode.NOT_FOUND, "Customer not found")
    return customer_id


def _anonymous_check(promotions: dict[str, Promotion]) -> None:
    """An anonymous sale redeems no wallet promotion: those are redeemed through a customer's instance."""
    for promotion in sorted(promotions.values(), key=lambda p: p.pk):
        if promotion.type in PromotionType.WALLET_TYPES:
            raise _anonymous_wallet(promotion.pk, promotion.type)


def _recorded(
    org: Organization, data: RedemptionInput, fingerprint: str, error: IntegrityError | None
) -> RecordOutcome:
    """The answer for a transactionIdentifier already recorded: the same answer, or 800 for another body."""
    existing = (
        Redemption.objects.for_org(org).filter(transaction_identifier=data.transaction_identifier).first()
    )
    if existing is None:  # the key's holder is gone again (deleted): a conflict, not an answer
        raise error or PromotionError(
            ErrorCode.CONFLICT, "The transactionIdentifier is being changed: retry."
        )
    if existing.request_fingerprint != fingerprint:
        raise PromotionError(
            ErrorCode.REDEMPTION_ALREADY_PRESENT,
            f"Promotion redemption already present: transactionIdentifier "
            f"{data.transaction_identifier} was recorded with a different body.",
        ) from error
    return RecordOutcome(existing, list(existing.lines.order_by("level", "position")), replayed=True)


def _plan_load(promotions: QuerySet, ids: set[str]) -> _Plan:
    """A plan over the promotions of `promotions` with these ids and their restrictions, read in one
    query (promotions LEFT JOIN restrictions). The instances hold PROMOTION_COLUMNS and
    RESTRICTION_COLUMNS; any other field is loaded on access, as with `.only()`."""
    plan = _Plan(promotions={}, restrictions=defaultdict(list))
    rows = (
        promotions.filter(pk__in=ids)
        .order_by("pk", "restrictions__level", "restrictions__kpi")
        .values_list(*PROMOTION_COLUMNS, *(f"restrictions__{name}" for name in RESTRICTION_COLUMNS))
    )
    split = len(PROMOTION_COLUMNS)
    for row in rows:
        promotion_id = row[PROMOTION_COLUMNS.index("id")]
        if promotion_id not in plan.promotions:
            plan.promotions[promotion_id] = Promotion.from_db(rows.db, PROMOTION_COLUMNS, row[:split])
        if row[split] is not None:  # a promotion without restrictions comes with NULLs
            restriction = PromotionRestriction.from_db(rows.db, RESTRICTION_COLUMNS, row[split:])
            plan.restrictions[promotion_id].append(restriction)
    return plan


def _promotions_check(org: Organization, data: RedemptionInput, promotions: dict[str, Promotion]) -> None:
    ids = list(dict.fromkeys(line.promotion_id for line in data.lines))
    missing = [pid for pid in ids if pid not in promotions]
    if missing:
        raise _missing(missing, org.pk)
    when = data.transaction_date
    for promotion in promotions.values():
        if promotion.end_date <= when:
            raise _ended(promotion.pk)
        if not promotion.active or promotion.start_date > when:
            raise _not_running(promotion.pk)
    for line in data.lines:
        if line.earned_promotion_id and promotions[line.promotion_id].type not in PromotionType.WALLET_TYPES:
            raise _earned_not_wallet(line.promotion_id, promotions[line.promotion_id].type)


def _codes_check(
    org: Organization, data: RedemptionInput, customer_id: int | None, plan: _Plan
) -> RedemptionInput:
    """The promo codes of a redemption (docs/code-redemption.md): each CODE promotion is redeemed
    through one code, named by `promoCode` on its lines (upper-cased; a line of the promotion without
    one takes it), and each code is read with one query. Sets `plan.codes` (promotion id -> PromoCode
    id, whose Code limits `_counters_take` takes) and returns the request with every line of a CODE
    promotion naming its code. Errors (nothing written): 400 a code on a promotion that is not a
    CODE promotion; 1001 a CODE promotion without a code, with two codes, or a code the org does not
    have for that promotion; 1009 a deactivated code; 1005 a code linked to another customer (or to
    a customer, in an anonymous sale). A code's Code limits reached is 1004, when they are taken."""
    named: dict[str, set[str]] = defaultdict(set)
    for line in data.lines:
        if line.promo_code:
            promotion = plan.promotions[line.promotion_id]
            if promotion.type != PromotionType.CODE:
                raise PromotionError(
                    ErrorCode.BAD_REQUEST,
                    f"promoCode is only for CODE promotions ({promotion.pk} is {promotion.type}).",
                )
            named[line.promotion_id].add(line.promo_code.strip().upper())
    ordered = [
        promotion_id
        for promotion_id in dict.fromkeys(line.promotion_id for line in data.lines)
        if plan.promotions[promotion_id].type == PromotionType.CODE
    ]
    if not ordered:
        return data
    wanted = [next(iter(named[pid])) for pid in ordered if len(named.get(pid, ())) == 1]
    rows = {
        code: (code_id, promotion_id, owner, active)
        for code_id, code, promotion_id, owner, active in PromoCode.objects.filter(
            org_id=org.pk, code__in=wanted
        ).values_list("id", "code", "promotion_id", "customer_id", "active")
    }
    for promotion_id in ordered:
        codes = named.get(promotion_id, set())
        if len(codes) != 1:
            raise _code_refused("several" if codes else "missing", promotion_id, ", ".join(sorted(codes)))
        (code,) = codes
        row = rows.get(code)
        if row is None or row[1] != promotion_id:
            raise _code_refused("unknown", promotion_id, code)
        code_id, _, owner, active = row
        if not active:
            raise _code_refused("inactive", promotion_id, code)
        if owner is not None and owner != customer_id:
            raise _code_refused("other_customer", promotion_id, code, anonymous=customer_id is None)
        plan.codes[promotion_id] = code_id
    return replace(
        data,
        lines=[
            replace(line, promo_code=next(iter(named[line.promotion_id])))
            if line.promotion_id in named
            else line
            for line in data.lines
        ],
    )


def _code_refused(reason: str, promotion_id: str, code: str, *, anonymous: bool = False) -> PromotionError:
    """A promo code refused at redemption, worded alike on both paths."""
    if reason == "missing":
        return PromotionError(
            ErrorCode.CODE_INVALID,
            f"Invalid code: promotion {promotion_id} is a CODE promotion, redeemed through one of its codes: "
            "promoCode is required on its lines.",
        )
    if reason == "several":
        return PromotionError(
            ErrorCode.CODE_INVALID,
            f"Invalid code: promotion {promotion_id} is redeemed through one code per transaction, not {code}.",
        )
    if reason == "unknown":
        return PromotionError(
            ErrorCode.CODE_INVALID, f"Invalid code: {code} is not a code of promotion {promotion_id}."
        )
    if reason == "inactive":
        return PromotionError(
            ErrorCode.CODE_VALIDATION_FAILED, f"Code validation failed: {code} is deactivated."
        )
    if anonymous:
        return PromotionError(
            ErrorCode.CODE_LINKED_TO_ANOTHER_CUSTOMER,
            f"Code {code} is linked to a customer: an anonymous sale (customerId {ANONYMOUS_CUSTOMER_ID}) "
            "cannot redeem it.",
        )
    return PromotionError(
        ErrorCode.CODE_LINKED_TO_ANOTHER_CUSTOMER, f"Code {code} is linked to another customer."
    )


def _discounts_check(org: Organization, data: RedemptionInput, customer_id: int | None) -> None:
    """The capped strategy: each promotion redeemed must apply to the reported cart (`cartItems`), and
    its discount in this redemption (all its lines together) must not exceed what the engine gives
    for that cart. Each promotion is evaluated alone, as Capillary's capped strategy reports them
    independently; at `transactionDate`, in the till's store. Limits and wallet instances are left to
    the checks that take them (the customer's instance is assumed, the limits are taken later).
    Errors: 400 no `cartItems`; 804 a promotion the cart does not qualify for, or a discount over
    what it gives.
    """
    if data.cart_lines is None:
        raise PromotionError(
            ErrorCode.BAD_REQUEST,
            "cartItems: required: this org redeems on the capped strategy, which checks each discount "
            "against the reported cart.",
        )
    rules = org_rules(org.pk, org.rules_version)  # the org as read with the API client, in this request
    cart, _ = evaluation_cart(data.cart_lines, [])
    reported: dict[str, Decimal] = defaultdict(Decimal)
    wallet: dict[str, str] = {}
    for line in data.lines:
        reported[line.promotion_id] += line.discount
        wallet.setdefault(line.promotion_id, line.earned_promotion_id or "reported")
    context = Context(
        now=data.transaction_date,
        timezone=org.timezone,
        store=data.store,
        customer_known=customer_id is not None,
        wallet=wallet,
        settings=engine_settings_for(org),
        # A CODE promotion applies through the code its lines name (checked with the codes, later).
        codes={line.promotion_id: line.promo_code.strip().upper() for line in data.lines if line.promo_code},
    )
    for promotion_id in sorted(reported):
        rule = rules.rules.get(promotion_id)
        if rule is None:
            raise PromotionError(
                ErrorCode.DISCOUNT_NOT_GIVEN_FOR_CART,
                f"Promotion {promotion_id} cannot be evaluated: "
                f"{rules.failed.get(promotion_id, 'it is not running')}.",
            )
        result = evaluate(cart, RuleSet([rule]), context)
        if not result.applied:
            reason = result.skipped[0].reason if result.skipped else "CONDITION_NOT_MET"
            raise PromotionError(
                ErrorCode.DISCOUNT_NOT_GIVEN_FOR_CART,
                f"Promotion {promotion_id} does not apply to the reported cart ({reason}).",
            )
        if reported[promotion_id] > result.discount:
            raise PromotionError(
                ErrorCode.DISCOUNT_NOT_GIVEN_FOR_CART,
                f"Promotion {promotion_id}: the discount redeemed, {reported[promotion_id].normalize():f}, "
                f"exceeds the {result.discount.normalize():f} it gives for the reported cart.",
            )


def _earn_limits(restrictions: list[PromotionRestriction]) -> dict[str, Decimal]:
    """The lifetime Earn-level limits of an instance, carried by its own counters; an instance is
    single-use unless an Earn REDEMPTION limit (lifetime or resetting) says otherwise. An Earn limit
    whose window resets is counted in RedemptionCounter rows (scope `earn:<id>`), not here."""
    earn = [r for r in restrictions if r.level == Level.EARN]
    limits = {r.kpi: r.limit for r in earn if not window_rule_stored(r).resets}
    if not any(r.kpi == Kpi.REDEMPTION for r in earn):
        limits.setdefault(Kpi.REDEMPTION, Decimal(1))
    return limits


def _instances_take(
    data: RedemptionInput, customer_id: int | None, plan: _Plan
) -> dict[tuple[int, str], str | None]:
    """Take each wallet line's earned instance (its own limits included); the instance id per line."""
    explicit: dict[str, list[LineInput]] = defaultdict(list)
    automatic: dict[str, list[LineInput]] = defaultdict(list)
    chosen: dict[tuple[int, str], str | None] = {}
    for line in data.lines:
        plan.by_promotion[line.promotion_id].add(line)
        chosen[line.position, line.level] = None
        if plan.promotions[line.promotion_id].type in PromotionType.WALLET_TYPES:
            (
                explicit[line.earned_promotion_id]
                if line.earned_promotion_id
                else automatic[line.promotion_id]
            ).append(line)
    for instance_id in sorted(explicit):
        lines = explicit[instance_id]
        promotion = plan.promotions[lines[0].promotion_id]
        if any(line.promotion_id != promotion.pk for line in lines):
            raise _not_issued(instance_id, customer_id, promotion.pk)
        usage, limits = _usage_of(lines), _earn_limits(plan.restrictions[promotion.pk])
        if not _instance_take(instance_id, customer_id, data, promotion, usage, limits):
            raise _instance_refusal(instance_id, customer_id, data, promotion)
        plan.by_instance[instance_id] = usage
        plan.instance_promotion[instance_id] = promotion.pk
        for line in lines:
            chosen[line.position, line.level] = instance_id
    for promotion_id in sorted(automatic):
        lines, promotion = automatic[promotion_id], plan.promotions[promotion_id]
        usage, limits = _usage_of(lines), _earn_limits(plan.restrictions[promotion_id])
        candidates = (
            EarnedPromotion.objects.filter(
                customer_id=customer_id,
                promotion=promotion,
                status=EarnedPromotion.Status.ACTIVE,
                valid_till__gt=data.transaction_date,
                locked=False,
            )
            .exclude(pk__in=list(plan.by_instance))
            .order_by("valid_till", "pk")
            .values_list("pk", flat=True)
        )
        # The first instance (soonest to expire) whose limits still allow this use; a concurrent
        # redemption that took one moves us to the next, because each take is conditional.
        instance_id = next(
            (pk for pk in candidates if _instance_take(pk, customer_id, data, promotion, usage, limits)), None
        )
        if instance_id is None:
            raise _no_instance(promotion.pk, customer_id)
        plan.by_instance[instance_id] = usage
        plan.instance_promotion[instance_id] = promotion.pk
        for line in lines:
            chosen[line.position, line.level] = instance_id
    return chosen


def _usage_of(lines) -> _Usage:
    usage = _Usage()
    for line in lines:
        usage.add(line)
    return usage


def _instance_take(
    instance_id: str,
    customer_id: int,
    data: RedemptionInput,
    promotion: Promotion,
    usage: _Usage,
    limits: dict[str, Decimal],
) -> bool:
    """One conditional UPDATE: the instance is this customer's, ACTIVE, not LOCKED, valid at
    transactionDate, activated when its promotion requires the customer's activation, and has room
    under its Earn limits; it becomes REDEEMED when this use exhausts one of them.

    Written in SQL: it runs for every wallet line redeemed, and the ORM took about seven times the
    statement's own cost to compile it (the two CASE columns).
    """
    room, exhausted, bounds = [], [], []
    for kpi, column in EARN_COLUMNS:
        if kpi in limits:
            room.append(f"{column} <= %s")
            exhausted.append(f"{column} >= %s")
            bounds.append(limits[kpi] - usage.of(kpi))
    # Only resetting Earn limits (counted in RedemptionCounter rows): no lifetime bound here.
    when_exhausted = f"({' OR '.join(exhausted)})" if exhausted else "(1 = 0)"
    room = room or ["1 = 1"]
    ops = connection.ops
    quote = ops.quote_name
    statement = (
        f"UPDATE {ops.quote_name(EarnedPromotion._meta.db_table)} SET"
        " redemption_count = redemption_count + %s,"
        " transaction_count = transaction_count + 1,"
        " discount_total = discount_total + %s,"
        f" status = CASE WHEN {when_exhausted} THEN %s ELSE status END,"
        f" status_changed_at = CASE WHEN {when_exhausted} THEN %s ELSE status_changed_at END"
        " WHERE id = %s AND customer_id = %s AND promotion_id = %s AND status = %s AND valid_till > %s"
        f" AND locked = %s AND {' AND '.join(room)}"
        # Activated, when its promotion requires the customer's activation (as redemption_instance_take_v1).
        f" AND (NOT EXISTS (SELECT 1 FROM {quote(Promotion._meta.db_table)} p"
        " WHERE p.id = %s AND p.customer_activation_required)"
        f" OR EXISTS (SELECT 1 FROM {quote(PromotionActivation._meta.db_table)} a"
        " WHERE a.customer_id = %s AND a.promotion_id = %s"
        " AND (a.earned_promotion_id IS NULL OR a.earned_promotion_id = %s)))"
    )
    params = [
        usage.redemptions,
        usage.discount,
        *bounds,
        EarnedPromotion.Status.REDEEMED.value,
        *bounds,
        ops.adapt_datetimefield_value(timezone.now()),
        instance_id,
        customer_id,
        promotion.pk,
        EarnedPromotion.Status.ACTIVE.value,
        ops.adapt_datetimefield_value(data.transaction_date),
        False,
        *bounds,
        promotion.pk,
        customer_id,
        promotion.pk,
        instance_id,
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount == 1


# --- The wording of refusals (both paths) ----------------------------------------------------------


def _missing(ids: list[str], org_id: int) -> PromotionError:
    return PromotionError(
        ErrorCode.BAD_REQUEST, f"Promotion with ids : {', '.join(ids)} not found for org : {org_id} ."
    )


def _ended(promotion_id: str) -> PromotionError:
    return PromotionError(
        ErrorCode.PROMOTION_EXPIRED, f"Promotion {promotion_id} had ended at transactionDate."
    )


def _not_running(promotion_id: str) -> PromotionError:
    return PromotionError(
        ErrorCode.PROMOTION_NOT_RUNNING, f"Promotion {promotion_id} is not running (inactive or not started)."
    )


def _earned_not_wallet(promotion_id: str, kind: str) -> PromotionError:
    return PromotionError(
        ErrorCode.BAD_REQUEST,
        f"earnedPromotionId is only for CUSTOMER, EARNING and REWARD promotions ({promotion_id} is {kind}).",
    )


def _anonymous_wallet(promotion_id: str, kind: str) -> PromotionError:
    return PromotionError(
        ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
        f"Promotion {promotion_id} is a {kind} promotion, redeemed from a customer's wallet: "
        f"an anonymous sale (customerId {ANONYMOUS_CUSTOMER_ID}) can redeem POS and CODE promotions only.",
    )


def _no_instance(promotion_id: str, customer_id: int) -> PromotionError:
    return PromotionError(
        ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
        f"Promotion {promotion_id} was not issued to customer {customer_id}, or every instance "
        "of it is used up, expired, LOCKED (issued, not yet earned) or not activated (a promotion "
        "requiring the customer's activation).",
    )


def _not_issued(instance_id: str, customer_id: int, promotion_id: str) -> PromotionError:
    return PromotionError(
        ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
        f"Earned promotion {instance_id} is not an instance of promotion {promotion_id} held by customer "
        f"{customer_id}.",
    )


def _instance_refusal(
    instance_id: str, customer_id: int, data: RedemptionInput, promotion: Promotion
) -> PromotionError:
    """Why `_instance_take` refused an instance the till named."""
    instance = EarnedPromotion.objects.filter(
        pk=instance_id, customer_id=customer_id, promotion=promotion
    ).first()
    if instance is None:
        return _not_issued(instance_id, customer_id, promotion.pk)
    return _instance_refused(
        instance_id,
        status=instance.status,
        locked=instance.locked,
        expired=instance.valid_till <= data.transaction_date,
        customer_id=customer_id,
        promotion_id=promotion.pk,
    )


def _not_activated(instance_id: str, customer_id: int, promotion_id: str) -> bool:
    """The instance's promotion requires the customer's activation and the instance is not activated."""
    if not Promotion.objects.filter(pk=promotion_id, customer_activation_required=True).exists():
        return False
    return bool(instances_not_activated(customer_id=customer_id, instances=[(promotion_id, instance_id)]))


def _instance_refused(
    instance_id: str, *, status: str, locked: bool, expired: bool, customer_id: int, promotion_id: str
) -> PromotionError:
    if status == EarnedPromotion.Status.REVOKED:
        return PromotionError(ErrorCode.EARN_ID_INVALID, f"Earned promotion {instance_id} was revoked.")
    if locked:
        return PromotionError(
            ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
            f"Earned promotion {instance_id} is LOCKED: issued, not yet earned (an earn unlocks it).",
        )
    if status == EarnedPromotion.Status.EXPIRED or expired:
        return PromotionError(ErrorCode.PROMOTION_EXPIRED, f"Earned promotion {instance_id} had expired.")
    if status == EarnedPromotion.Status.ACTIVE and _not_activated(instance_id, customer_id, promotion_id):
        return PromotionError(
            ErrorCode.PROMOTION_NOT_ISSUED_TO_CUSTOMER,
            f"Earned promotion {instance_id} is not activated: promotion {promotion_id} requires the "
            f"customer's activation (POST /promotions/{promotion_id}/activate?customerId={customer_id}).",
        )
    return PromotionError(
        ErrorCode.EARN_ALREADY_REDEEMED,
        f"Earned promotion {instance_id} is already redeemed (its Earn limits are used up).",
        http_status=409,
    )


def _limits_check_cart(plan: _Plan) -> None:
    for promotion_id, usage in plan.by_promotion.items():
        for restriction in plan.restrictions[promotion_id]:
            if restriction.level == Level.CART and usage.of(restriction.kpi) > restriction.limit:
                raise _limit_reached(restriction, promotion_id)


def _limit_reached(restriction: PromotionRestriction, promotion_id: str) -> PromotionError:
    return _limit_reached_of(restriction.level, restriction.kpi, restriction.limit, promotion_id)


def _limit_reached_of(level: str, kpi: str, limit: Decimal, promotion_id: str) -> PromotionError:
    if level == Level.CODE:
        return PromotionError(
            ErrorCode.CODE_ALREADY_REDEEMED,
            f"Code already redeemed: the code's Code {kpi} limit of {limit.normalize():f} is reached "
            f"for promotion {promotion_id}.",
        )
    return PromotionError(
        ErrorCode.CONFLICT,
        f"{level} {kpi} limit of {limit.normalize():f} reached for promotion {promotion_id}.",
    )


@dataclass(frozen=True)
class _CounterDelta:
    """One counter row a redemption takes `amount` from: (restriction, scope, window key). A MOVING
    limit's use also names the days its window sums (`first_day`..`last_day`)."""

    restriction: PromotionRestriction
    scope: str
    key: dt.date
    amount: Decimal
    first_day: dt.date | None = None
    last_day: dt.date | None = None

    @property
    def sort_key(self) -> tuple:
        return (self.restriction.pk, self.scope, self.key)


def _counter_deltas(
    org: Organization, customer_id: int | None, plan: _Plan, transaction_date: dt.datetime
) -> list[_CounterDelta]:
    """What every Customer and Promotion limit takes, in lock order (restriction, scope, window): each
    in the window `transaction_date` falls in, in the org's time zone (promotions/windows.py); a MOVING
    limit's day bucket, preceded by its lock row (LIFETIME, amount 0). An anonymous sale
    (`customer_id` None) takes no Customer limit."""
    deltas = []
    tz = org.tz
    for promotion_id, usage in plan.by_promotion.items():
        for restriction in plan.restrictions[promotion_id]:
            if restriction.level == Level.CUSTOMER and customer_id is None:
                continue
            if restriction.level not in COUNTED_LEVELS:
                continue
            if restriction.level == Level.CODE:
                if promotion_id not in plan.codes:  # a line recorded without a code: none was taken
                    continue
                scope = code_scope(plan.codes[promotion_id])
            else:
                scope = str(customer_id) if restriction.level == Level.CUSTOMER else ""
            rule = window_rule_stored(restriction)
            window = window_at(
                rule, tz=tz, at=transaction_date, promotion_start=plan.promotions[promotion_id].start_date
            )
            amount = usage.of(restriction.kpi)
            if rule.kind == "MOVING":
                deltas.append(_CounterDelta(restriction, scope, LIFETIME, Decimal(0)))
                deltas.append(
                    _CounterDelta(restriction, scope, window.key, amount, window.first_day, window.last_day)
                )
            else:
                deltas.append(_CounterDelta(restriction, scope, window.key, amount))
    # An Earn limit whose window resets: counted per earned instance (scope earn:<id>).
    for instance_id, usage in plan.by_instance.items():
        promotion_id = plan.instance_promotion[instance_id]
        for restriction in plan.restrictions[promotion_id]:
            if restriction.level != Level.EARN:
                continue
            rule = window_rule_stored(restriction)
            if not rule.resets:
                continue
            scope = earn_scope(instance_id)
            window = window_at(
                rule, tz=tz, at=transaction_date, promotion_start=plan.promotions[promotion_id].start_date
            )
            amount = usage.of(restriction.kpi)
            if rule.kind == "MOVING":
                deltas.append(_CounterDelta(restriction, scope, LIFETIME, Decimal(0)))
                deltas.append(
                    _CounterDelta(restriction, scope, window.key, amount, window.first_day, window.last_day)
                )
            else:
                deltas.append(_CounterDelta(restriction, scope, window.key, amount))
    return sorted(deltas, key=lambda delta: delta.sort_key)


def _counters_take(
    org: Organization,
    customer_id: int | None,
    plan: _Plan,
    transaction_date: dt.datetime,
    reserved_own: dict[tuple[int, str, dt.date], Decimal] | None = None,
) -> None:
    """Take the units of every Customer and Promotion limit with one statement, in lock order.

    One multi-row upsert: a missing counter is created holding this use; an existing one grows only
    while `used + amount <= limit` (the conditional UPDATE of `ON CONFLICT ... DO UPDATE ... WHERE`),
    and a counter missing from RETURNING is full. Rows are written in the order of their VALUES, so
    counters are locked in the order of `_counter_deltas`; the refusal names the first limit in that
    order that is reached. Then a MOVING limit's day buckets over its window must stay within it
    (read after the upsert: its lock row makes the writers of one limit and scope take turns).
    (A counter's limit is its restriction's, copied when the counter is created; restrictions are
    replaced, never edited.)
    """
    reserved_own = reserved_own or {}
    deltas = _counter_deltas(org, customer_id, plan, transaction_date)
    # A use larger than the limit itself never fits (and a new counter holding it would break the
    # check constraint): it is refused without being written.
    fitting = [delta for delta in deltas if delta.amount <= delta.restriction.limit]
    taken = set()
    if fitting or reserved_own:
        ops, quote = connection.ops, connection.ops.quote_name
        now = ops.adapt_datetimefield_value(timezone.now())
        params = []
        # A reservation of this redemption's own cart on a row no use of it takes (its evaluation fell
        # in another window than the transaction's, or the limit was replaced since) is given back by
        # a row of its own, nothing used; the use itself is taken in the transaction's window with
        # the limit's condition, as any.
        keys = {delta.sort_key for delta in fitting}
        rows = [
            (delta.restriction.pk, delta.scope, delta.key, delta.amount, delta.restriction.limit)
            for delta in fitting
        ]
        limits = {delta.restriction.pk: delta.restriction.limit for delta in deltas}
        rows += [
            (restriction_id, scope, key, Decimal(0), limits.get(restriction_id, amount))
            for (restriction_id, scope, key), amount in reserved_own.items()
            if (restriction_id, scope, key) not in keys
        ]
        for restriction_id, scope, key, amount, limit_value in sorted(rows, key=lambda row: row[:3]):
            own = reserved_own.get((restriction_id, scope, key), Decimal(0))
            params += [
                org.pk,
                restriction_id,
                scope,
                ops.adapt_datefield_value(key),
                amount,
                own,
                limit_value,
                now,
            ]
        used, reserved, limit = quote("used"), quote("reserved"), quote("limit")
        # `excluded.reserved` carries what this redemption's own cart reserved of the counter row (of
        # the window its evaluation fell in): the row's reservation shrinks by it as its `used` grows
        # (a new counter has none reserved), and what other open carts still reserve of the window
        # counts against the limit (docs/cart-locks.md). Without cart locks `reserved` stays 0.
        statement = (
            f"INSERT INTO {quote(RedemptionCounter._meta.db_table)} AS counter"
            f" (org_id, restriction_id, scope, window_start, {used}, {reserved}, {limit}, updated_at)"
            f" VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s, %s)'] * len(rows))}"
            " ON CONFLICT (restriction_id, scope, window_start) DO UPDATE"
            f" SET {used} = counter.{used} + excluded.{used},"
            f" {reserved} = counter.{reserved} - excluded.{reserved}, updated_at = excluded.updated_at"
            f" WHERE counter.{used} + excluded.{used} + counter.{reserved} - excluded.{reserved}"
            f" <= counter.{limit}"
            " RETURNING restriction_id, scope, window_start"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            taken = {
                (restriction_id, scope, _as_date(key)) for restriction_id, scope, key in cursor.fetchall()
            }
    for delta in deltas:
        if (delta.restriction.pk, delta.scope, delta.key) not in taken:
            raise _limit_reached(delta.restriction, delta.restriction.promotion_id)
    moving = [delta for delta in deltas if delta.first_day is not None]
    if moving:
        # Every window of the limit's length that holds this use: ending on its day or on a later
        # one, up to a length later (a late report must not push a later window over).
        buckets = window_buckets(
            [(d.restriction.pk, d.scope, d.first_day, d.key + (d.last_day - d.first_day)) for d in moving]
        )
        for delta in moving:
            if (
                _moving_peak(buckets.get((delta.restriction.pk, delta.scope), {}), delta)
                > delta.restriction.limit
            ):
                raise _limit_reached(delta.restriction, delta.restriction.promotion_id)


def _moving_peak(buckets: dict[dt.date, Decimal], delta: _CounterDelta) -> Decimal:
    """The largest sum of a MOVING limit's day buckets (used and reserved) over a window that holds
    `delta`'s day (`cart_locks.window_peak`, which the carts' reservations use too)."""
    return window_peak(buckets, delta.key, delta.last_day - delta.first_day)


def _as_date(value) -> dt.date:
    """A DATE column as RETURNING gives it (SQLite: text)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _used_up_after_giving_back(usage: _Usage, limits: dict[str, Decimal]) -> Q:
    """An instance whose Earn limits stay used up once `usage` is given back (another redemption
    used them up: a reversal without discount gives no discount room back), as a condition on the
    counters before the update; it stays REDEEMED."""
    # Empty when the instance's Earn limits all reset: it never stays REDEEMED for them.
    return functools.reduce(
        operator.or_,
        (
            Q(**{f"{column}__gte": limits[kpi] + usage.of(kpi)})
            for kpi, column in EARN_COLUMNS
            if kpi in limits
        ),
        Q(pk__in=[]),
    )


@dataclass
class ReverseOutcome:
    redemption: Redemption
    reversal: RedemptionReversal
    replayed: bool = False


def redemption_reverse(
    *, org: Organization, transaction_identifier: str, reason: str, actor: Actor, api_client: ApiClient | None
) -> ReverseOutcome:
    """Reverse a whole recorded transaction (a return or a cancelled sale).

    Gives back what the recording took: the Customer and Promotion counters, and each earned
    instance's counters (a REDEEMED instance is ACTIVE again unless one of its Earn limits is still
    used up by other redemptions; it still reads expired past validTill).
    Reversing twice is a no-op that returns the first reversal. Errors: 404 no such transaction in
    the org. The redemption row is locked, so two concurrent reversals give back once.
    """
    with transaction.atomic():
        redemption = (
            Redemption.objects.for_org(org)
            .select_for_update()
            .filter(transaction_identifier=transaction_identifier)
            .first()
        )
        if redemption is None:
            raise PromotionError(ErrorCode.NOT_FOUND, "Redemption not found for this transactionIdentifier.")
        existing = RedemptionReversal.objects.filter(redemption=redemption).first()
        if existing is not None:
            return ReverseOutcome(redemption, existing, replayed=True)
        if redemption.customer_id is not None:
            Customer.objects.select_for_update().filter(pk=redemption.customer_id).values_list("pk").get()
        reversal = RedemptionReversal.objects.create(
            org=org, redemption=redemption, reason=reason, api_client=api_client
        )
        lines = list(redemption.lines.all())
        plan = _plan_load(Promotion.objects.for_org(org), {line.promotion_id for line in lines})
        promotion_of: dict[str, str] = {}
        for line in lines:
            plan.by_promotion[line.promotion_id].add(line)
            if line.promo_code_id is not None:
                plan.codes[line.promotion_id] = line.promo_code_id
            if line.earned_promotion_id:
                plan.by_instance[line.earned_promotion_id].add(line)
                promotion_of[line.earned_promotion_id] = line.promotion_id
                plan.instance_promotion[line.earned_promotion_id] = line.promotion_id
        _taken_give_back(org, redemption, plan, promotion_of)
        _redemption_days_apply(org, redemption, lines, reversal=True)
        audit_event_record(
            org=org,
            actor=actor,
            action="redemption.reverse",
            object_type="Redemption",
            object_id=redemption.pk,
            data={"transactionIdentifier": transaction_identifier, "reason": reason},
        )
        metrics.reversed_count()
    return ReverseOutcome(redemption, reversal)


def _taken_give_back(
    org: Organization, redemption: Redemption, plan: _Plan, promotion_of: dict[str, str]
) -> None:
    """Give back what a recorded redemption took: its Customer and Promotion counters (in lock order),
    each to the window it was taken from (the one its transactionDate falls in, not the current one),
    then each earned instance's counters, in id order (`promotion_of`: instance id -> promotion id).
    A counter never goes below zero (it could only if the org's time zone changed since, moving the
    transaction to another window: that window gives back what it holds)."""
    deltas = _counter_deltas(org, redemption.customer_id, plan, redemption.transaction_date)
    for delta in deltas:
        if delta.amount:
            RedemptionCounter.objects.filter(
                restriction=delta.restriction, scope=delta.scope, window_start=delta.key
            ).update(used=Greatest(F("used") - delta.amount, Value(Decimal(0))))
    for instance_id in sorted(plan.by_instance):
        usage = plan.by_instance[instance_id]
        limits = _earn_limits(plan.restrictions[promotion_of[instance_id]])
        EarnedPromotion.objects.filter(pk=instance_id).update(
            redemption_count=F("redemption_count") - usage.redemptions,
            transaction_count=F("transaction_count") - 1,
            discount_total=F("discount_total") - usage.discount,
            status=Case(
                When(
                    Q(status=EarnedPromotion.Status.REDEEMED) & ~_used_up_after_giving_back(usage, limits),
                    then=Value(EarnedPromotion.Status.ACTIVE),
                ),
                default=F("status"),
            ),
        )


# --- The daily summaries (RedemptionDay) ------------------------------------------------------------


def _redemption_days_apply(
    org: Organization, redemption: Redemption, lines: list[RedemptionLine], *, reversal: bool
) -> None:
    """Keep a materialised day exact: add the recorded redemption to its day's rows (or move it to
    the reversed counts). Nothing when its day is not materialised: today and later never are (no
    query then, the usual case), an earlier day not yet either; the refresh counts it from the tables.
    The org's row is updated first: its row lock orders the writers of one day, so a promotion's
    row is created once."""
    day = org_day(org, redemption.transaction_date)
    if day >= timezone.localdate(timezone=org.tz):
        return
    discount = sum((line.discount for line in lines), Decimal(0))
    count = len(lines)
    by_promotion: dict[str, list[RedemptionLine]] = defaultdict(list)
    for line in lines:
        by_promotion[line.promotion_id].append(line)
    rows = RedemptionDay.objects.filter(org=org, day=day)
    if reversal:
        change = {
            "redeemed": F("redeemed") - 1,
            "reversed": F("reversed") + 1,
            "discount": F("discount") - discount,
            "lines": F("lines") - count,
            "reversed_lines": F("reversed_lines") + count,
        }
    else:
        change = {
            "redeemed": F("redeemed") + 1,
            "discount": F("discount") + discount,
            "lines": F("lines") + count,
        }
    if not rows.filter(promotion__isnull=True).update(**change):
        return
    for promotion_id in sorted(by_promotion):
        own = by_promotion[promotion_id]
        own_discount, own_count = sum((line.discount for line in own), Decimal(0)), len(own)
        row = rows.filter(promotion_id=promotion_id)
        if reversal:
            row.update(
                redeemed=F("redeemed") - 1,
                reversed=F("reversed") + 1,
                discount=F("discount") - own_discount,
                lines=F("lines") - own_count,
                reversed_lines=F("reversed_lines") + own_count,
            )
        elif not row.update(
            redeemed=F("redeemed") + 1, discount=F("discount") + own_discount, lines=F("lines") + own_count
        ):
            RedemptionDay.objects.create(
                org=org,
                promotion_id=promotion_id,
                day=day,
                redeemed=1,
                discount=own_discount,
                lines=own_count,
            )


# --- Exports: a background job writes the file -----------------------------------------------------

EXPORT_TASK = "redemptions.tasks.redemption_export_task"
EXPORT_REDEMPTIONS_PER_CHUNK = 2000  # redemptions read per keyset step (their lines follow)


def redemption_export_create(*, org: Organization, user, filters: dict[str, str], time_zone: str) -> BulkJob:
    """Start exporting the org's redemptions matching `filters` (the audit list's: `promotion`,
    `customer`, `status`, `date_from`, `date_to`, `q`; dates in `time_zone`) as a CSV file: a
    BulkJob of kind EXPORT, run after the commit by a Celery worker (or in-process without a broker,
    like the bulk jobs), never in the request. The job page shows its progress and, once DONE, offers
    the file; a failure is recorded on the job (FAILED, with the reason)."""
    promotion = Promotion.objects.for_org(org).filter(pk=filters.get("promotion") or "").first()
    with transaction.atomic():
        job = BulkJob.objects.create(
            org=org,
            kind=BulkJob.Kind.EXPORT,
            promotion=promotion,
            params={"filters": filters, "timeZone": time_zone},
            created_by=user,
        )
        audit_event_record(
            org=org,
            actor=Actor.for_user(user),
            action="redemption.export",
            object_type="BulkJob",
            object_id=job.pk,
            data={"filters": filters},
        )
        transaction.on_commit(lambda: _export_dispatch(job.pk))
    return job


def _export_dispatch(job_id: int) -> None:
    task = current_app.tasks[EXPORT_TASK]
    if settings.CELERY_BROKER_URL and settings.BULK_JOBS_IN_PROCESS != "sync":
        try:
            task.delay(job_id)
        except Exception as error:  # the broker is unreachable: say so on the job
            BulkJob.objects.filter(pk=job_id).update(
                status=BulkJob.Status.FAILED,
                error=f"Could not queue the export: {type(error).__name__}: {error}"[:2000],
                finished_at=timezone.now(),
            )
    elif settings.BULK_JOBS_IN_PROCESS == "sync":
        try:
            redemption_export_run(job_id=job_id)
        except Exception:  # recorded on the job (FAILED, with the reason) for its page
            logger.exception("export %s failed", job_id)
    else:
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(_export_run_own_connection, job_id),
            name=f"export-{job_id}",
            daemon=True,
        ).start()


def _export_run_own_connection(job_id: int) -> None:
    try:
        redemption_export_run(job_id=job_id)
    except Exception:  # recorded on the job (FAILED, with the reason) for its page
        logger.exception("export %s failed", job_id)
    finally:
        connection.close()


def redemption_export_run(*, job_id: int) -> BulkJob:
    """Write an EXPORT job's file: one row per redemption line with the list API's record fields
    (`promotions_site.csvexport`, the one CSV writer), newest transaction first. Walks the
    redemptions by keyset (transaction date, id), a chunk at a time, committing the progress (`done`
    lines of `total`) after each, so the job page's bar moves and memory stays flat whatever the
    size. Runs once: a job already DONE is left as it is. Any failure marks the job FAILED with the
    reason and leaves no partial file."""
    job = BulkJob.objects.select_related("org").get(pk=job_id, kind=BulkJob.Kind.EXPORT)
    if job.status == BulkJob.Status.DONE:
        return job
    org = job.org
    filters, tz = job.params.get("filters", {}), zoneinfo.ZoneInfo(job.params.get("timeZone") or "UTC")
    promotion_id = filters.get("promotion") or None
    started = timezone.now()
    BulkJob.objects.filter(pk=job.pk).update(status=BulkJob.Status.RUNNING, started_at=started, done=0)
    handle = tempfile.NamedTemporaryFile("w+", encoding="utf-8", newline="", suffix=".csv", delete=False)  # noqa: SIM115
    try:
        redemptions = redemptions_filtered(org=org, filters=filters, tz=tz)
        # What exists now is exported; redemptions recorded while it runs are not.
        last_id = redemptions.order_by("-id").values_list("id", flat=True).first() or 0
        redemptions = redemptions.filter(id__lte=last_id)
        lines = RedemptionLine.objects.filter(redemption__in=redemptions.values("pk"))
        if promotion_id:
            lines = lines.filter(promotion_id=promotion_id)
        BulkJob.objects.filter(pk=job.pk).update(total=lines.count())
        writer = CsvWriter(handle)
        writer.writerow(EXPORT_COLUMNS)
        written = 0
        for chunk in _export_chunks(redemptions):
            chunk_lines = RedemptionLine.objects.filter(redemption_id__in=chunk)
            if promotion_id:
                chunk_lines = chunk_lines.filter(promotion_id=promotion_id)
            rows = list(
                redemption_records(chunk_lines).order_by(
                    "-redemption__transaction_date", "-redemption_id", "level", "position"
                )
            )
            for line in rows:
                record = REDEMPTION_LIST_RECORD.render(line)
                writer.writerow([record[column] for column in EXPORT_COLUMNS])
            written += len(rows)
            BulkJob.objects.filter(pk=job.pk).update(done=Least(F("done") + len(rows), F("total")))
        handle.close()
        name = f"bulk_jobs/exports/{started:%Y/%m}/redemptions-{org.pk}-job-{job.pk}.csv"
        with open(handle.name, "rb") as done_file:
            stored = default_storage.save(name, File(done_file))
        BulkJob.objects.filter(pk=job.pk).update(
            status=BulkJob.Status.DONE,
            output_file=stored,
            total=written,
            done=written,
            error="",
            finished_at=timezone.now(),
        )
    except Exception as error:
        BulkJob.objects.filter(pk=job.pk).update(
            status=BulkJob.Status.FAILED,
            error=f"The export failed: {type(error).__name__}: {error}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    finally:
        handle.close()
        os.unlink(handle.name)
    job.refresh_from_db()
    return job


def _export_chunks(redemptions: QuerySet[Redemption]):
    """The ids of `redemptions`, newest transaction first, EXPORT_REDEMPTIONS_PER_CHUNK at a time, by
    keyset on (transaction date, id): each step one indexed query, however deep."""
    ordered = redemptions.order_by("-transaction_date", "-id").values_list("transaction_date", "id")
    after = None
    while True:
        page = ordered
        if after is not None:
            when, pk = after
            page = page.filter(Q(transaction_date__lt=when) | Q(transaction_date=when, id__lt=pk)).filter(
                transaction_date__lte=when
            )
        batch = list(page[:EXPORT_REDEMPTIONS_PER_CHUNK])
        if not batch:
            return
        yield [pk for _, pk in batch]
        after = batch[-1]
