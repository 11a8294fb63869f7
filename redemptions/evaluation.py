"""Cart evaluation (`POST /promotions/evaluate`): what the engine needs read from the database, the
engine call, and the stored Evaluation.

The engine (`promotions/engine/`) is pure; this module feeds it. Per request: the org (read with the
API client at authentication: its `rules_version` and settings), the customer with its usable wallet
instances, and the counters of the org's stateful limits; the compiled rules come from the
per-process cache of `promotions/rules.py`, compiled again only when `rules_version` moved. Limits are read, never
taken: an evaluation is indicative, the redemption takes the limits (docs/api.md, "Evaluate").
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from promotions.engine import adjusted_tenders, evaluate
from promotions.engine.types import Applied, Cart, Context, Headroom, Line, Result, StoreScope, Tender
from promotions.models import (
    ApiClient,
    Organization,
    PromotionRestriction,
    PromotionType,
    new_object_id,
)
from promotions.rules import OrgRules, org_rules
from promotions.selectors import engine_settings_for
from promotions.windows import window_at
from promotions_site.auth import CLIENT_STILL_AS_CACHED_SQL, ClientStale
from promotions_site.errors import ErrorCode, PromotionError
from redemptions.models import ANONYMOUS_CUSTOMER_ID, Evaluation
from redemptions.selectors import window_sums
from redemptions.serializers import decimal_text
from wallets.models import Customer, EarnedPromotion
from wallets.selectors import rows_activated

Kpi = PromotionRestriction.Kpi
Level = PromotionRestriction.Level
ZERO = Decimal(0)
# promoCodes and paymentVouchers are accepted and answered in the logs: codes do not exist yet.
CODES_NOT_ENABLED = 1001
CODES_NOT_ENABLED_MESSAGE = "Invalid code: promo codes and payment vouchers are not enabled for this org."


# --- Input ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CartLineInput:
    sku: str
    amount: Decimal
    qty: Decimal
    discount: Decimal = ZERO
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)


def evaluation_lines(items) -> list[CartLineInput]:
    """Validated `cartItems` (the evaluate API's, or a capped redemption's reported cart) as the
    services take them."""
    return [
        CartLineInput(
            sku=item["sku"],
            amount=item["amount"],
            qty=item["qty"],
            discount=item.get("discount") or Decimal(0),
            categories=tuple(item.get("categoryList") or ()),
            brands=tuple(item.get("brandList") or ()),
            attributes=dict(item.get("attributes") or {}),
        )
        for item in items
    ]


@dataclass(frozen=True)
class EvaluationInput:
    """A validated evaluate request. `customer_id` None: the customer is not identified (anonymous)."""

    customer_id: int | None
    amount: Decimal
    lines: list[CartLineInput]
    tenders: list[tuple[str, Decimal | None]] = field(default_factory=list)
    promo_codes: list[str] = field(default_factory=list)
    payment_vouchers: list[str] = field(default_factory=list)
    category_hierarchy_sent: bool = False
    request: dict = field(default_factory=dict)
    # The same request as the JSON text it was sent as, when the parser kept it: stored as it is, not
    # encoded again from `request` (about 4% of an evaluation of 50 lines).
    request_json: str | None = None


# --- Output -----------------------------------------------------------------------------------------


@dataclass
class LinePromotion:
    """One line-level promotion's part on one cart line (`cartItems[].appliedPromotions[]`)."""

    promotion_id: str
    name: str
    message_label: str
    mode: str
    redemption_count: int
    discount: Decimal
    discount_qty: Decimal
    promotion_qty: Decimal
    earned_promotion_id: str | None
    identifier: str


@dataclass
class EvaluatedLine:
    reference_id: str
    sku: str
    amount: Decimal
    qty: Decimal
    discount: Decimal
    promotions: list[LinePromotion] = field(default_factory=list)


@dataclass
class AppliedPromotion:
    """One applied promotion with its whole discount (top-level `appliedPromotions[]`)."""

    promotion_id: str
    name: str
    message_label: str
    mode: str
    redemption_count: int
    discount: Decimal
    identifier: str
    earned_promotion_id: str | None


@dataclass
class EvaluatedTender:
    identifier: str
    amount: Decimal
    reference_id: str
    adjusted_amount: Decimal


@dataclass
class CodeLog:
    promo_code: str
    code_type: str
    message: str
    error_code: int


@dataclass
class EvaluationOutcome:
    evaluation: Evaluation
    amount: Decimal
    customer_id: int  # -1 when the customer is not identified
    lines: list[EvaluatedLine]
    applied: list[AppliedPromotion]
    tenders: list[EvaluatedTender]
    promo_code_logs: list[CodeLog]
    payment_voucher_logs: list[CodeLog]
    category_hierarchy_sent: bool
    result: Result


# --- Identifiers ------------------------------------------------------------------------------------


def _identifier(payload: dict) -> str:
    """Base64 of compact JSON, keys in the documented order (the token a redemption passes back)."""
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def cart_identifier(promotion_id: str, discount: Decimal, amount: Decimal, redemption_count: int) -> str:
    return _identifier(
        {
            "promotionId": promotion_id,
            "discount": decimal_text(discount),
            "amount": decimal_text(amount),
            "redemptionCount": redemption_count,
            "version": "v1",
        }
    )


def line_identifier(
    promotion_id: str,
    discount: Decimal,
    amount: Decimal,
    redemption_count: int,
    discount_qty: Decimal,
    promotion_qty: Decimal,
    sku: str,
) -> str:
    return _identifier(
        {
            "promotionId": promotion_id,
            "discount": decimal_text(discount),
            "amount": decimal_text(amount),
            "redemptionCount": redemption_count,
            "discountAppliedQty": decimal_text(discount_qty),
            "promotionAppliedQty": decimal_text(promotion_qty),
            "sku": sku,
            "version": "v1",
        }
    )


# --- Reads ------------------------------------------------------------------------------------------


def _customer_wallet(
    org: Organization, customer_id: int, rules: OrgRules, now: dt.datetime
) -> dict[str, tuple]:
    """The org's customer's usable instance per wallet promotion of the rules, in one query (the
    customer LEFT JOIN its instances): ACTIVE, not expired, not LOCKED (an EARNING promotion issued
    and not yet earned), the one that expires first (then the smallest id: the one a redemption
    without `earnedPromotionId` takes), as (id, redemption_count, transaction_count, discount_total).
    404 when the org has no such customer."""
    # In SQL: the ORM took several times the statement's own cost to build this join.
    quote = connection.ops.quote_name
    statement = (
        "SELECT e.promotion_id, e.id, e.redemption_count, e.transaction_count, e.discount_total"
        f" FROM {quote(Customer._meta.db_table)} c LEFT JOIN {quote(EarnedPromotion._meta.db_table)} e"
        " ON e.customer_id = c.id AND e.status = %s AND e.valid_till > %s AND NOT e.locked"
        " WHERE c.id = %s AND c.org_id = %s ORDER BY e.promotion_id, e.valid_till, e.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            statement,
            [
                EarnedPromotion.Status.ACTIVE.value,
                connection.ops.adapt_datetimefield_value(now),
                customer_id,
                org.pk,
            ],
        )
        rows = cursor.fetchall()
    if not rows:
        raise PromotionError(ErrorCode.NOT_FOUND, "Customer not found")
    # An instance of a promotion the customer must activate, and has not, is not offered.
    rows = rows_activated(customer_id=customer_id, rows=rows, required=rules.activation_required)
    wallet: dict[str, tuple] = {}
    for promotion_id, *instance in rows:
        if promotion_id in rules.rules and rules.types[promotion_id] in PromotionType.WALLET_TYPES:
            wallet.setdefault(promotion_id, tuple(instance))
    return wallet


def _remaining(kpi: str, left: Decimal, headroom: dict[str, Decimal]) -> None:
    """Fold one limit's remaining units into (redemptions, discount) headroom."""
    if kpi == Kpi.DISCOUNT:
        headroom["discount"] = min(headroom.get("discount", left), left)
    elif kpi == Kpi.REDEMPTION:
        headroom["redemptions"] = min(headroom.get("redemptions", left), left)
    elif left < 1:  # TRANSACTION: this evaluation would be one more transaction
        headroom["redemptions"] = ZERO


def _headroom(
    org: Organization, customer_id: int | None, rules: OrgRules, wallet: dict[str, tuple], now: dt.datetime
) -> dict[str, Headroom]:
    """What each promotion's Customer, Promotion and Earn limits still allow, read from the counters
    the redemption service takes (no lock: an evaluation is indicative), each in its window at `now`
    in the org's time zone (a FIXED cycle's counter, a MOVING window's day buckets summed; a window
    used up offers nothing). Customer limits are not counted for an anonymous cart, as for an
    anonymous sale."""
    ranges: dict[tuple[int, str], tuple[dt.date, dt.date]] = {}
    tz = org.tz
    for limits in rules.limits.values():
        for limit in limits:
            if limit.level == Level.EARN or (limit.level == Level.CUSTOMER and customer_id is None):
                continue
            scope = str(customer_id) if limit.level == Level.CUSTOMER else ""
            window = window_at(limit.window, tz=tz, at=now, promotion_start=limit.promotion_start)
            ranges[limit.restriction_id, scope] = (
                window.first_day or window.key,
                window.last_day or window.key,
            )
    counters = window_sums([(*key, first, last) for key, (first, last) in ranges.items()])
    headroom: dict[str, Headroom] = {}
    for promotion_id in rules.limits.keys() | wallet.keys():  # the others have no stateful limit
        limits = rules.limits.get(promotion_id, ())
        left: dict[str, Decimal] = {}
        for limit in limits:
            if limit.level == Level.EARN:
                continue
            if limit.level == Level.CUSTOMER:
                if customer_id is None:
                    continue
                scope = str(customer_id)
            else:
                scope = ""
            _remaining(limit.kpi, limit.limit - counters.get((limit.restriction_id, scope), ZERO), left)
        instance = wallet.get(promotion_id)
        if instance is not None:
            _, redemptions, transactions, discount = instance
            earn = {limit.kpi: limit.limit for limit in limits if limit.level == Level.EARN}
            earn.setdefault(Kpi.REDEMPTION, Decimal(1))  # an instance is single-use by default
            used = {
                Kpi.REDEMPTION: Decimal(redemptions),
                Kpi.TRANSACTION: Decimal(transactions),
                Kpi.DISCOUNT: discount,
            }
            for kpi, limit in earn.items():
                _remaining(kpi, limit - used[kpi], left)
        if left:
            headroom[promotion_id] = Headroom(
                redemptions=max(left["redemptions"], ZERO) if "redemptions" in left else None,
                discount=max(left["discount"], ZERO) if "discount" in left else None,
            )
    return headroom


# --- The service ------------------------------------------------------------------------------------


def _reference_ids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text, from one read of the OS's random source and formatted
    here: `str(uuid.uuid4())` per line cost about 0.3 ms of a 50-line evaluation."""
    raw = bytearray(os.urandom(16 * count))
    for n in range(6, 16 * count, 16):
        raw[n] = raw[n] & 0x0F | 0x40  # version 4
        raw[n + 2] = raw[n + 2] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def evaluation_cart(
    lines: list[CartLineInput], tenders: list[tuple[str, Decimal | None]]
) -> tuple[Cart, list[str]]:
    """The engine's cart (each line keyed by a new referenceId) and the keys, in request order. A line's
    value for the engine is its amount less the till's own `discount`."""
    keys = _reference_ids(len(lines))
    cart = Cart(
        lines=tuple(
            Line(
                key=key,
                sku=line.sku,
                amount=line.amount - line.discount,
                qty=line.qty,
                categories=frozenset(line.categories),
                brands=frozenset(line.brands),
                attributes=dict(line.attributes),
            )
            for key, line in zip(keys, lines, strict=True)
        ),
        tenders=tuple(Tender(identifier, amount or ZERO) for identifier, amount in tenders),
    )
    return cart, keys


def evaluation_context(
    *,
    org: Organization,
    customer_id: int | None,
    rules: OrgRules,
    store: StoreScope | None,
    settings,
    now: dt.datetime,
) -> Context:
    """The engine's context: the moment, the org's zone, the till's store, the customer's wallet and
    the limits' headroom. 404 when the org has no customer `customer_id` (None: not identified)."""
    wallet = _customer_wallet(org, customer_id, rules, now) if customer_id is not None else {}
    return Context(
        now=now,
        timezone=org.timezone,
        store=store,
        customer_known=customer_id is not None,
        wallet={promotion_id: instance[0] for promotion_id, instance in wallet.items()},
        headroom=_headroom(org, customer_id, rules, wallet, now),
        settings=settings,
    )


def evaluation_create(
    *,
    org: Organization,
    data: EvaluationInput,
    api_client: ApiClient | None,
    till_code: str = "",
    store: StoreScope | None = None,
    now: dt.datetime | None = None,
    client_check: str | None = None,
) -> EvaluationOutcome:
    """Evaluate a cart and store the evaluation (`POST /promotions/evaluate`).

    `org` must be read in this request (the API reads it with the API client that authenticates,
    in one statement): its `rules_version` picks the compiled rules (compiled once per version and
    process) and its settings the rounding and ranking. Reads the customer with its wallet (one
    statement) and the limits' counters (one, when the org has Customer, Promotion or Earn limits),
    and inserts the evaluation (`_evaluation_store`): takes nothing and locks nothing. Errors: 404 the org has no such
    customer. A promotion that does not compile was skipped when the rules were compiled (and
    logged); it never makes the evaluation fail. `client_check`: the state of the API client served
    from the cache, verified by the insert (`ClientStale` when it no longer holds).
    """
    now = now or timezone.now()
    customer_id = data.customer_id
    rules = org_rules(org.pk, org.rules_version)
    context = evaluation_context(
        org=org,
        customer_id=customer_id,
        rules=rules,
        store=store,
        settings=engine_settings_for(org),
        now=now,
    )
    cart, keys = evaluation_cart(data.lines, data.tenders)
    # The answer does not say why a rule did not apply: not recorded.
    result = evaluate(cart, rules.ruleset, context, reasons=False)
    outcome = _outcome(data, customer_id, keys, cart, result)
    outcome.evaluation = _evaluation_store(
        Evaluation(
            org=org,
            customer_id=customer_id,
            api_client=api_client,
            till_code=till_code,
            request=data.request,
            amount=data.amount,
            discount=result.discount,
            applied=_applied_record(outcome, keys, data),
            rules_version=rules.version,
        ),
        client_check,
        request_json=data.request_json,
    )
    return outcome


def _evaluation_store(
    evaluation: Evaluation, client_check: str | None = None, *, request_json: str | None = None
) -> Evaluation:
    """Insert the evaluation without waiting for its WAL flush (PostgreSQL's `synchronous_commit`
    off, for this transaction only): an evaluation is indicative, and the flush was the largest
    part of the request's database time under load. A crash within a fraction of a second of the
    answer can lose the record of the last evaluations (never a redemption: those commit as
    always); the database stays consistent.

    On PostgreSQL one statement: the setting (`set_config(..., true)`, local to the statement's own
    transaction, which it commits) and the insert, which also verifies `client_check` (the cached
    client's state, `promotions_site.auth.client_check`) and raises `ClientStale` when it no longer
    holds (nothing inserted)."""
    if connection.vendor != "postgresql":
        if client_check is not None:
            raise ClientStale  # verified by the caller afresh
        with transaction.atomic():
            evaluation.save(force_insert=True)
        return evaluation
    evaluation.created_at = timezone.now()
    values = [
        request_json
        if request_json is not None and field.attname == "request"
        else field.get_db_prep_save(getattr(evaluation, field.attname), connection)
        for field in _EVALUATION_FIELDS
    ]
    with connection.server_bound_cursor() as cursor:
        cursor.execute(
            _EVALUATION_INSERT,
            [*values, client_check, evaluation.api_client_id, evaluation.org_id, client_check],
        )
        if cursor.fetchone() is None:
            raise ClientStale
    evaluation._state.adding, evaluation._state.db = False, connection.alias
    return evaluation


_EVALUATION_FIELDS = [field for field in Evaluation._meta.concrete_fields]
_EVALUATION_INSERT = (
    "WITH local AS (SELECT set_config('synchronous_commit', 'off', true))"
    f" INSERT INTO {Evaluation._meta.db_table} ({', '.join(f.column for f in _EVALUATION_FIELDS)})"
    f" SELECT {', '.join('%s::jsonb' if f.get_internal_type() == 'JSONField' else '%s' for f in _EVALUATION_FIELDS)}"
    " FROM local"
    f" WHERE %s::text IS NULL OR {CLIENT_STILL_AS_CACHED_SQL.format(org='%s')}"
    " RETURNING id"
)


def _outcome(
    data: EvaluationInput, customer_id: int | None, keys: list[str], cart: Cart, result: Result
) -> EvaluationOutcome:
    lines = [
        EvaluatedLine(key, line.sku, line.amount, line.qty, line.discount)
        for key, line in zip(keys, data.lines, strict=True)
    ]
    by_key = {line.reference_id: line for line in lines}
    applied = []
    for promotion in result.applied:
        applied.append(
            AppliedPromotion(
                promotion_id=promotion.promotion_id,
                name=promotion.name,
                message_label=promotion.message_label,
                mode=promotion.mode,
                redemption_count=promotion.redemption_count,
                discount=promotion.discount,
                identifier=cart_identifier(
                    promotion.promotion_id, promotion.discount, data.amount, promotion.redemption_count
                ),
                earned_promotion_id=promotion.earned_promotion_id,
            )
        )
        if promotion.level == "LINE":
            _line_promotions(promotion, by_key)
    code_logs = [
        CodeLog(code, "DISCOUNT", CODES_NOT_ENABLED_MESSAGE, CODES_NOT_ENABLED) for code in data.promo_codes
    ]
    voucher_logs = [
        CodeLog(code, "PAYMENT_VOUCHER", CODES_NOT_ENABLED_MESSAGE, CODES_NOT_ENABLED)
        for code in data.payment_vouchers
    ]
    return EvaluationOutcome(
        evaluation=None,  # set once stored
        amount=data.amount,
        customer_id=ANONYMOUS_CUSTOMER_ID if customer_id is None else customer_id,
        lines=lines,
        applied=applied,
        tenders=_tenders(cart, result),
        promo_code_logs=code_logs,
        payment_voucher_logs=voucher_logs,
        category_hierarchy_sent=data.category_hierarchy_sent,
        result=result,
    )


def _line_promotions(promotion: Applied, by_key: dict[str, EvaluatedLine]) -> None:
    for share in promotion.lines:
        line = by_key[share.line_key]
        line.promotions.append(
            LinePromotion(
                promotion_id=promotion.promotion_id,
                name=promotion.name,
                message_label=promotion.message_label,
                mode=promotion.mode,
                redemption_count=promotion.redemption_count,
                discount=share.discount,
                discount_qty=share.discount_qty,
                promotion_qty=share.promotion_qty,
                earned_promotion_id=promotion.earned_promotion_id,
                identifier=line_identifier(
                    promotion.promotion_id,
                    share.discount,
                    line.amount,
                    promotion.redemption_count,
                    share.discount_qty,
                    share.promotion_qty,
                    line.sku,
                ),
            )
        )


def _tenders(cart: Cart, result: Result) -> list[EvaluatedTender]:
    """The tenders sent, each less the tender promotions' discounts on it, and a CASH tender for what
    they do not cover (the engine's `adjusted_tenders`); none when no tender was sent (Capillary's
    example adds CASH beside a tender sent; a cart sent without tenders is not told how to pay)."""
    if not cart.tenders:
        return []
    return [
        EvaluatedTender(tender.identifier, tender.amount, new_object_id(), tender.adjusted_amount)
        for tender in adjusted_tenders(cart, result)
    ]


def _applied_record(outcome: EvaluationOutcome, keys: list[str], data: EvaluationInput) -> list[dict]:
    """What the Evaluation row keeps of the result (decimals as six-decimal strings)."""
    sku_of = dict(zip(keys, (line.sku for line in data.lines), strict=True))
    applied_by_id = {promotion.promotion_id: promotion for promotion in outcome.result.applied}
    return [
        {
            "promotionId": promotion.promotion_id,
            "identifier": promotion.identifier,
            "discount": decimal_text(promotion.discount),
            "redemptionCount": promotion.redemption_count,
            "earnedPromotionId": promotion.earned_promotion_id,
            "level": applied_by_id[promotion.promotion_id].level,
            "lines": [
                {
                    "referenceId": share.line_key,
                    "sku": sku_of[share.line_key],
                    "discount": decimal_text(share.discount),
                    "discountAppliedOnQuantity": decimal_text(share.discount_qty),
                    "promotionAppliedOnQuantity": decimal_text(share.promotion_qty),
                }
                for share in applied_by_id[promotion.promotion_id].lines
            ],
        }
        for promotion in outcome.applied
    ]
