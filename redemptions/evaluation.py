"""Cart evaluation (`POST /promotions/evaluate`): what the engine needs read from the database, the
engine call, and the stored Evaluation.

The engine (`promotions/engine/`) is pure; this module feeds it. Per request: the org (read with the
API client at authentication: its `rules_version` and settings), the customer with its usable wallet
instances, and the counters of the org's stateful limits; the compiled rules come from the
per-process cache of `promotions/rules.py`, compiled again only when `rules_version` moved. Limits are read, never
taken: an evaluation is indicative, the redemption takes the limits (docs/api.md, "Evaluate"), except
under cart locks, where an evaluation for an identified customer reserves what it applied
(`_evaluation_create_locked`, docs/cart-locks.md).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from promotions.engine import adjusted_tenders, evaluate
from promotions.engine.types import EMPTY, Applied, Cart, Context, Headroom, Line, Result, StoreScope, Tender
from promotions.models import (
    ApiClient,
    Organization,
    PromoCode,
    PromotionRestriction,
    PromotionType,
    RedemptionStrategy,
    new_object_id,
)
from promotions.rules import OrgRules, org_rules
from promotions.selectors import engine_settings_for
from promotions.windows import window_at
from promotions_site.auth import ClientStale
from promotions_site.errors import ErrorCode, PromotionError
from redemptions.cart_locks import (
    ReservedUnit,
    cart_lock_close,
    cart_lock_units_reserve,
    cart_locks_release_expired,
    instance_units_reserved,
    limit_units_left,
    window_peak,
)
from redemptions.models import ANONYMOUS_CUSTOMER_ID, CartLock, Evaluation, JSONText, code_scope, earn_scope
from redemptions.selectors import window_buckets, window_used_reserved
from redemptions.serializers import decimal_text
from wallets.models import Customer, EarnedPromotion
from wallets.selectors import rows_activated

Kpi = PromotionRestriction.Kpi
Level = PromotionRestriction.Level
ZERO = Decimal(0)
ONE = Decimal(1)
# What an unused single-use wallet instance still allows (a Headroom is immutable: one for them all).
_ONE_LEFT = Headroom(redemptions=ONE, discount=None)
# paymentVouchers are accepted and answered in the logs: payment vouchers do not exist yet.
CODES_NOT_ENABLED = 1001
CODES_NOT_ENABLED_MESSAGE = "Invalid code: payment vouchers are not enabled for this org."

# promoCodeEvaluationLogs[].errorCode (docs/code-redemption.md): Capillary's code errors where one
# fits, ours (1020-1024) for why a valid code's promotion did not apply to this cart.
CODE_UNKNOWN = 1001
CODE_EXPIRED = 1002
CODE_LIMIT_REACHED = 1004
CODE_OTHER_CUSTOMER = 1005
CODE_NOT_VALID = 1009
CODE_CONDITION_NOT_MET = 1020
CODE_NOT_CHOSEN = 1021
CODE_OUT_OF_SCOPE = 1022
CODE_PROMOTION_LIMIT_REACHED = 1023
CODE_SAME_PROMOTION = 1024
# The engine's reason a CODE promotion with a valid code did not apply -> (log code, message).
CODE_REASONS = {
    "CONDITION_NOT_MET": (
        CODE_CONDITION_NOT_MET,
        "The cart does not meet the conditions of the code's promotion.",
    ),
    "NO_DISCOUNT": (CODE_CONDITION_NOT_MET, "The code's promotion gives no discount on this cart."),
    "BLOCKED_BY_EXCLUSIVE": (
        CODE_NOT_CHOSEN,
        "An exclusive promotion applies alone: the code's promotion lost to it.",
    ),
    "CART_PROMOTION_APPLIED": (
        CODE_NOT_CHOSEN,
        "Cart first: a cart promotion applied, so the code's line promotion does not.",
    ),
    "OUTSIDE_TIME_WINDOW": (CODE_OUT_OF_SCOPE, "Outside the time window of the code's promotion."),
    "STORE_NOT_IN_SCOPE": (
        CODE_OUT_OF_SCOPE,
        "The till's store is not in the stores of the code's promotion.",
    ),
    "LOYALTY_ONLY": (CODE_OUT_OF_SCOPE, "The code's promotion is loyalty-only: it needs a known customer."),
    "LIMIT_REACHED": (CODE_PROMOTION_LIMIT_REACHED, "The limits of the code's promotion are reached."),
    "NOT_STARTED": (CODE_NOT_VALID, "Code validation failed: its promotion has not started yet."),
    "EXPIRED": (CODE_EXPIRED, "Code expired: its promotion has ended."),
    "INACTIVE": (CODE_NOT_VALID, "Code validation failed: its promotion is not active."),
}


# --- Input ------------------------------------------------------------------------------------------


class CartLineInput(NamedTuple):
    """One validated cart line as the services take it: immutable, and a named tuple rather than a
    frozen dataclass, which took three times as long to make (50 per evaluation of a 50-line cart)."""

    sku: str
    amount: Decimal
    qty: Decimal
    discount: Decimal = ZERO
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    attributes: Mapping[str, str] = MappingProxyType({})


def evaluation_lines(items) -> list[CartLineInput]:
    """Validated `cartItems` (the evaluate API's, or a capped redemption's reported cart) as the
    services take them."""
    return [
        CartLineInput(
            item["sku"],
            item["amount"],
            item["qty"],
            item.get("discount") or ZERO,
            tuple(item.get("categoryList") or ()),
            tuple(item.get("brandList") or ()),
            dict(item.get("attributes") or {}),
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
    # `cartEvaluationId`: the open cart this request evaluates again (cart locking: its reservation
    # is reversed and the cart evaluated afresh); None for a new cart.
    cart_evaluation_id: str | None = None


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
    promo_code: str | None = None


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
class CodeState:
    """The promo codes of one evaluation (`codes_resolve`): the codes sent, the refusals decided before
    the engine (by upper-cased code), and per CODE promotion the codes that may make it eligible, best
    first, as (PromoCode id, code, typed). `choice` (promotion id -> PromoCode id) is filled by the
    headroom read: the first candidate whose Code limits have room. `unknown_count`: the codes sent
    (each distinct code once) that no code of the org matches."""

    sent: list[str] = field(default_factory=list)
    logs: dict[str, CodeLog] = field(default_factory=dict)
    candidates: dict[str, list[tuple[int, str, bool]]] = field(default_factory=dict)
    choice: dict[str, int] = field(default_factory=dict)
    unknown_count: int = 0

    def offered(self) -> dict[str, str]:
        """promotion id -> the code that makes it eligible (the engine's `Context.codes`)."""
        text = {code_id: code for candidates in self.candidates.values() for code_id, code, _ in candidates}
        return {promotion_id: text[code_id] for promotion_id, code_id in self.choice.items()}

    @property
    def typed_offered(self) -> bool:
        return any(
            typed
            for promotion_id, code_id in self.choice.items()
            for candidate_id, _, typed in self.candidates[promotion_id]
            if candidate_id == code_id
        )


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
    # How many distinct codes of `promoCodes` matched no code of the org: what a guess throttle counts
    # (docs/code-redemption.md).
    unknown_code_count: int = 0
    # promotion id -> PromoCode id of the code each applied CODE promotion applied through.
    code_ids: dict[str, int] = field(default_factory=dict)


# --- Identifiers ------------------------------------------------------------------------------------


# An identifier is Base64 of compact JSON of its documented payload, keys in the documented order (the
# token a redemption passes back), formatted directly: json.dumps of a dict per line and promotion was
# about a tenth of a 50-line evaluation's own time. The strings are quoted as json.dumps quotes them
# (`_quote`, its own C function); tests/redemptions/test_evaluation_identifiers.py holds the two to the
# same bytes.
_quote = json.encoder.encode_basestring_ascii


def cart_identifier(promotion_id: str, discount: Decimal, amount: Decimal, redemption_count: int) -> str:
    text = (
        f'{{"promotionId":{_quote(promotion_id)},"discount":"{decimal_text(discount)}",'
        f'"amount":"{decimal_text(amount)}","redemptionCount":{int(redemption_count)},"version":"v1"}}'
    )
    return base64.b64encode(text.encode()).decode()


def line_identifier(
    promotion_id: str,
    discount: Decimal,
    amount: Decimal,
    redemption_count: int,
    discount_qty: Decimal,
    promotion_qty: Decimal,
    sku: str,
) -> str:
    text = (
        f'{{"promotionId":{_quote(promotion_id)},"discount":"{decimal_text(discount)}",'
        f'"amount":"{decimal_text(amount)}","redemptionCount":{int(redemption_count)},'
        f'"discountAppliedQty":"{decimal_text(discount_qty)}","promotionAppliedQty":"{decimal_text(promotion_qty)}",'
        f'"sku":{_quote(sku)},"version":"v1"}}'
    )
    return base64.b64encode(text.encode()).decode()


# --- Reads ------------------------------------------------------------------------------------------


def _wallet_sql(org: Organization, customer_id: int, now: dt.datetime) -> tuple[str, list]:
    """The customer LEFT JOIN its usable instances (ACTIVE, not expired, not LOCKED: an EARNING
    promotion issued and not yet earned), as (promotion id, instance id, redemption_count,
    transaction_count, discount_total, rank) rows, `rank` their order by (promotion id, valid_till,
    id) (an integer is cheaper to read than the timestamp); one row of NULLs when the customer holds none,
    none when the org has no such customer. In SQL: the ORM took several times the statement's own
    cost to build this join."""
    quote = connection.ops.quote_name
    statement = (
        "SELECT e.promotion_id, e.id, e.redemption_count, e.transaction_count, e.discount_total,"
        " row_number() OVER (ORDER BY e.promotion_id, e.valid_till, e.id) AS rank"
        f" FROM {quote(Customer._meta.db_table)} c LEFT JOIN {quote(EarnedPromotion._meta.db_table)} e"
        " ON e.customer_id = c.id AND e.status = %s AND e.valid_till > %s AND NOT e.locked"
        " WHERE c.id = %s AND c.org_id = %s"
    )
    params = [
        EarnedPromotion.Status.ACTIVE.value,
        connection.ops.adapt_datetimefield_value(now),
        customer_id,
        org.pk,
    ]
    return statement, params


def _wallet_from_rows(customer_id: int, rows: list, rules: OrgRules) -> dict[str, tuple]:
    """The usable instance per wallet promotion of the rules from `_wallet_sql`'s rows in their rank's order
    (by promotion id, valid_till, id): the one that expires first, then the smallest id (the one a
    redemption without `earnedPromotionId` takes), as (id, redemption_count, transaction_count,
    discount_total). 404 when there is no row (the org has no such customer)."""
    if not rows:
        raise PromotionError(ErrorCode.NOT_FOUND, "Customer not found")
    # An instance of a promotion the customer must activate, and has not, is not offered.
    rows = rows_activated(customer_id=customer_id, rows=rows, required=rules.activation_required)
    wallet: dict[str, tuple] = {}
    wallet_types = PromotionType.WALLET_TYPES
    for promotion_id, instance_id, redemptions, transactions, discount, _ in rows:
        if (
            promotion_id not in wallet
            and promotion_id in rules.rules
            and rules.types[promotion_id] in wallet_types
        ):
            wallet[promotion_id] = (instance_id, redemptions, transactions, discount)
    return wallet


def _customer_wallet(
    org: Organization, customer_id: int, rules: OrgRules, now: dt.datetime
) -> dict[str, tuple]:
    """The org's customer's usable instance per wallet promotion of the rules, in one query
    (`_wallet_sql`, `_wallet_from_rows`). 404 when the org has no such customer."""
    statement, params = _wallet_sql(org, customer_id, now)
    with connection.cursor() as cursor:
        cursor.execute(f"{statement} ORDER BY rank", params)
        rows = cursor.fetchall()
    return _wallet_from_rows(customer_id, rows, rules)


def _wallet_and_counters(
    org: Organization,
    customer_id: int,
    rules: OrgRules,
    now: dt.datetime,
    ranges: dict[tuple[int, str], tuple[dt.date, dt.date]],
) -> tuple[dict[str, tuple], dict[tuple[int, str], tuple[Decimal, Decimal]]]:
    """PostgreSQL: the customer's wallet (`_customer_wallet`) and the counters of `ranges`
    (`window_used_reserved`), read by one call of `evaluation_context_v1` (migration 0023): one round
    trip where they were two, and planned once per connection (a PL/pgSQL function keeps its plans),
    where planning the statements was three quarters of their cost; the call itself is prepared on the
    connection (`server_bound_cursor(prepared=True)`), so neither is parsed nor planned again."""
    keys = list(ranges)
    with connection.server_bound_cursor(prepared=True) as cursor:
        cursor.execute(
            "SELECT * FROM evaluation_context_v1(%s, %s, %s, %s::bigint[], %s::text[], %s::date[], %s::date[])"
            " ORDER BY r_part, r_rank",
            [
                org.pk,
                customer_id,
                now,
                [restriction_id for restriction_id, _ in keys],
                [scope for _, scope in keys],
                [ranges[key][0] for key in keys],
                [ranges[key][1] for key in keys],
            ],
        )
        rows = cursor.fetchall()
    instances = [row[1:6] + row[7:] for row in rows if row[0] == 0]
    counters = {(int(row[1]), row[2]): (row[5], row[6]) for row in rows if row[0] == 1}
    return _wallet_from_rows(customer_id, instances, rules), counters


def _remaining(kpi: str, left: Decimal, headroom: dict[str, Decimal]) -> None:
    """Fold one limit's remaining units into (redemptions, discount) headroom."""
    if kpi == Kpi.DISCOUNT:
        headroom["discount"] = min(headroom.get("discount", left), left)
    elif kpi == Kpi.REDEMPTION:
        headroom["redemptions"] = min(headroom.get("redemptions", left), left)
    elif left < 1:  # TRANSACTION: this evaluation would be one more transaction
        headroom["redemptions"] = ZERO


def _headroom(
    org: Organization,
    customer_id: int | None,
    rules: OrgRules,
    wallet: dict[str, tuple],
    now: dt.datetime,
    instance_reserved: dict[tuple[str, str], Decimal] | None = None,
    code_candidates: dict[str, list[int]] | None = None,
    code_choice: dict[str, int] | None = None,
    counters: dict[tuple[int, str], tuple[Decimal, Decimal]] | None = None,
) -> dict[str, Headroom]:
    """What each promotion's Customer, Promotion and Earn limits still allow, read from the counters
    the redemption service takes, each in its window at `now` in the org's time zone (a FIXED
    cycle's counter; a used-up window offers nothing), less what open carts reserve in that window
    (`limit_units_left`; no lock: an evaluation without cart locks is indicative). A MOVING limit's
    day buckets (used and reserved) are summed over every window of its length that holds today, as
    a redemption now and a cart's reservation check them (`window_peak`: a bucket dated later, by a
    sale reported up to a day ahead, counts too). `instance_reserved`: what open carts hold of the
    wallet's instances (cart locking only). Customer limits are not counted for an anonymous cart,
    as for an anonymous sale.

    Code limits are counted per code (scope `code:<PromoCode.id>`, docs/code-redemption.md):
    `code_candidates` lists, per CODE promotion, the ids of the codes that could make it eligible,
    best first; the first whose Code limits have room is written to `code_choice` (the caller's dict)
    and its room joins the promotion's headroom. A CODE promotion none of whose codes has room gets
    no entry in `code_choice`. `counters`: those of every limit but the resetting Earn limits, already
    read (`_wallet_and_counters`); None: read here."""
    instance_reserved = instance_reserved or {}
    code_candidates = code_candidates or {}
    if code_choice is None:
        code_choice = {}
    if counters is None:
        counters = _counters_read(
            *_counter_keys(org, customer_id, rules, wallet, now, code_candidates, earn=None)
        )
    else:  # the others were read with the wallet: the resetting Earn limits of its instances
        counters = {
            **counters,
            **_counters_read(
                *_counter_keys(org, customer_id, rules, wallet, now, code_candidates, earn=True)
            ),
        }
    headroom: dict[str, Headroom] = {}
    # the others have no stateful limit
    for promotion_id in rules.limits.keys() | wallet.keys() | code_candidates.keys():
        limits = rules.limits.get(promotion_id, ())
        instance = wallet.get(promotion_id)
        if not limits and instance is not None and promotion_id not in code_candidates:
            # Most of a wallet: an instance, single-use (no Earn REDEMPTION limit), and no other limit.
            reserved = (
                instance_reserved.get((instance[0], Kpi.REDEMPTION), ZERO) if instance_reserved else ZERO
            )
            if not instance[1] and not reserved:  # unused and not held by a cart: one left, shared
                headroom[promotion_id] = _ONE_LEFT
                continue
            single_use = limit_units_left(limit=ONE, used=Decimal(instance[1]), reserved=reserved)
            headroom[promotion_id] = Headroom(redemptions=max(single_use, ZERO), discount=None)
            continue
        left: dict[str, Decimal] = {}
        code_limits = [limit for limit in limits if limit.level == Level.CODE]
        if code_limits:
            for code_id in code_candidates.get(promotion_id, ()):
                code_left: dict[str, Decimal] = {}
                for limit in code_limits:
                    used, reserved = counters.get((limit.restriction_id, code_scope(code_id)), (ZERO, ZERO))
                    _remaining(
                        limit.kpi,
                        limit_units_left(limit=limit.limit, used=used, reserved=reserved),
                        code_left,
                    )
                if all(value > 0 for value in code_left.values()):
                    code_choice[promotion_id] = code_id
                    left = code_left
                    break
        elif code_candidates.get(promotion_id):
            code_choice[promotion_id] = code_candidates[promotion_id][0]
        for limit in limits:
            if limit.level in (Level.EARN, Level.CODE):
                continue
            if limit.level == Level.CUSTOMER:
                if customer_id is None:
                    continue
                scope = str(customer_id)
            else:
                scope = ""
            used, reserved = counters.get((limit.restriction_id, scope), (ZERO, ZERO))
            _remaining(limit.kpi, limit_units_left(limit=limit.limit, used=used, reserved=reserved), left)
        if instance is not None:
            instance_id, redemptions, transactions, discount = instance
            earn_limits = [limit for limit in limits if limit.level == Level.EARN]
            # Lifetime Earn limits on the instance's own counters; resetting ones on its window's
            # counter (docs/code-redemption.md#earn-limits-that-reset).
            earn = {limit.kpi: limit.limit for limit in earn_limits if not limit.window.resets}
            if not any(limit.kpi == Kpi.REDEMPTION for limit in earn_limits):
                earn.setdefault(Kpi.REDEMPTION, ONE)  # an instance is single-use by default
            for limit in earn_limits:
                if limit.window.resets:
                    used_window, reserved_window = counters.get(
                        (limit.restriction_id, earn_scope(instance_id)), (ZERO, ZERO)
                    )
                    _remaining(
                        limit.kpi,
                        limit_units_left(limit=limit.limit, used=used_window, reserved=reserved_window),
                        left,
                    )
            used = {
                Kpi.REDEMPTION: Decimal(redemptions),
                Kpi.TRANSACTION: Decimal(transactions),
                Kpi.DISCOUNT: discount,
            }
            for kpi, limit in earn.items():
                reserved = instance_reserved.get((instance_id, kpi), ZERO)
                _remaining(kpi, limit_units_left(limit=limit, used=used[kpi], reserved=reserved), left)
        if left:
            headroom[promotion_id] = Headroom(
                redemptions=max(left["redemptions"], ZERO) if "redemptions" in left else None,
                discount=max(left["discount"], ZERO) if "discount" in left else None,
            )
    return headroom


def _counter_keys(
    org: Organization,
    customer_id: int | None,
    rules: OrgRules,
    wallet: dict[str, tuple],
    now: dt.datetime,
    code_candidates: dict[str, list[int]],
    *,
    earn: bool | None,
) -> tuple[
    dict[tuple[int, str], tuple[dt.date, dt.date]], dict[tuple[int, str], tuple[dt.date, dt.timedelta]]
]:
    """The counter rows `_headroom` reads, as ({(restriction id, scope): (first key, last key)} of the
    lifetime and FIXED limits, {(restriction id, scope): (day, length)} of the MOVING ones), each in
    its window at `now` in the org's time zone. `earn` None: every limit; False: all but the resetting
    Earn limits (they need the wallet's instances, so these can be read with the wallet); True: those
    alone, for `wallet`'s instances."""
    ranges: dict[tuple[int, str], tuple[dt.date, dt.date]] = {}
    moving: dict[tuple[int, str], tuple[dt.date, dt.timedelta]] = {}
    tz = org.tz
    for promotion_id, limits in rules.limits.items():
        for limit in limits:
            if limit.level == Level.CUSTOMER and customer_id is None:
                continue
            resetting_earn = limit.level == Level.EARN and limit.window.resets
            if earn is not None and earn != resetting_earn:
                continue
            if limit.level == Level.EARN:
                # A resetting Earn limit: the counter of the wallet's instance (scope earn:<id>).
                if not limit.window.resets or promotion_id not in wallet:
                    continue
                scopes = [earn_scope(wallet[promotion_id][0])]
            elif limit.level == Level.CODE:
                scopes = [code_scope(code_id) for code_id in code_candidates.get(promotion_id, ())]
            else:
                scopes = [str(customer_id) if limit.level == Level.CUSTOMER else ""]
            window = window_at(limit.window, tz=tz, at=now, promotion_start=limit.promotion_start)
            for scope in scopes:
                if limit.window.kind == "MOVING":
                    moving[limit.restriction_id, scope] = (window.key, window.last_day - window.first_day)
                    continue
                ranges[limit.restriction_id, scope] = (
                    window.first_day or window.key,
                    window.last_day or window.key,
                )
    return ranges, moving


def _counters_read(
    ranges: dict[tuple[int, str], tuple[dt.date, dt.date]],
    moving: dict[tuple[int, str], tuple[dt.date, dt.timedelta]],
) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """(used, reserved) per counter key of `_counter_keys`: summed over a range's window keys; for a
    MOVING limit the peak of its day buckets (used and reserved together, passed as used) over every
    window of its length that holds today, as a redemption now and a cart's reservation check them
    (`window_peak`: a bucket dated later, by a sale reported up to a day ahead, counts too)."""
    counters = window_used_reserved(_range_list(ranges)) if ranges else {}
    if moving:
        buckets = window_buckets(
            [(*key, day - length, day + length) for key, (day, length) in moving.items()]
        )
        for key, (day, length) in moving.items():
            counters[key] = (window_peak(buckets.get(key, {}), day, length), ZERO)
    return counters


def _range_list(
    ranges: dict[tuple[int, str], tuple[dt.date, dt.date]],
) -> list[tuple[int, str, dt.date, dt.date]]:
    return [(*key, first, last) for key, (first, last) in ranges.items()]


# --- Promo codes ------------------------------------------------------------------------------------


def codes_resolve(
    org: Organization, customer_id: int | None, sent: list[str], rules: OrgRules, now: dt.datetime
) -> CodeState:
    """The promo codes of an evaluation (docs/code-redemption.md), read with one query whatever was
    sent (an unknown code costs what a known one costs): the org's codes matching the codes sent
    (case-insensitive) and, for an identified customer, the active codes linked to it of the org's
    running CODE promotions (they apply without being typed). A code sent is refused here (its log)
    when it is unknown (1001), deactivated (1009), of a promotion that ended (1002) or is not running
    or cannot be evaluated (1009), or linked to another customer, or to a customer when the cart's
    customer is not identified (1005). The others are candidates of their promotion: the codes sent
    in the order sent, then the linked ones by id; their Code limits are read with the others
    (`_headroom`)."""
    state = CodeState(sent=list(sent))
    wanted = list(dict.fromkeys(code.strip().upper() for code in sent))
    code_promotions = rules.code_promotion_ids
    linked = customer_id is not None and bool(code_promotions)
    if not wanted and not linked:
        return state
    condition = Q(code__in=wanted)
    if linked:
        condition |= Q(customer_id=customer_id, active=True, promotion_id__in=list(code_promotions))
    rows = {
        row[1]: row
        for row in PromoCode.objects.filter(condition, org_id=org.pk)
        .order_by("id")
        .values_list(
            "id",
            "code",
            "promotion_id",
            "customer_id",
            "active",
            "promotion__type",
            "promotion__active",
            "promotion__start_date",
            "promotion__end_date",
        )
    }
    for code in wanted:
        row = rows.get(code)
        if row is None:
            state.unknown_count += 1
            state.logs[code] = _code_log(code, CODE_UNKNOWN, "Invalid code: the org has no such promo code.")
            continue
        code_id, _, promotion_id, owner, active, kind, running, start, end = row
        refusal = None
        if not active:
            refusal = (CODE_NOT_VALID, "Code validation failed: the code is deactivated.")
        elif end <= now:
            refusal = (CODE_EXPIRED, f"Code expired: its promotion {promotion_id} has ended.")
        elif kind != PromotionType.CODE or not running:
            refusal = (CODE_NOT_VALID, f"Code validation failed: its promotion {promotion_id} is not active.")
        elif start > now:
            refusal = (
                CODE_NOT_VALID,
                f"Code validation failed: its promotion {promotion_id} has not started yet.",
            )
        elif promotion_id not in rules.rules:
            refusal = (
                CODE_NOT_VALID,
                f"Code validation failed: its promotion {promotion_id} cannot be evaluated.",
            )
        elif owner is not None and customer_id is None:
            refusal = (
                CODE_OTHER_CUSTOMER,
                "Code is linked to a customer: it applies only to that customer's identified cart.",
            )
        elif owner is not None and owner != customer_id:
            refusal = (CODE_OTHER_CUSTOMER, "Code is linked to another customer.")
        if refusal is not None:
            state.logs[code] = _code_log(code, *refusal)
            continue
        state.candidates.setdefault(promotion_id, []).append((code_id, code, True))
    if linked:
        for code_id, code, promotion_id, owner, active, *_ in rows.values():
            if owner == customer_id and active and promotion_id in rules.rules and code not in state.logs:
                candidates = state.candidates.setdefault(promotion_id, [])
                if all(candidate_id != code_id for candidate_id, _, _ in candidates):
                    candidates.append((code_id, code, False))
    return state


def _code_log(code: str, error_code: int, message: str) -> CodeLog:
    return CodeLog(code, "DISCOUNT", message, error_code)


def _codes_logs(state: CodeState, result: Result) -> list[CodeLog]:
    """One `promoCodeEvaluationLogs` entry per code sent that did not apply (as sent, in order): the
    refusal decided before the engine, 1004 for a code whose Code limits are used up (or reserved by
    open carts), 1024 for a valid code whose promotion another code makes eligible (one code per
    promotion), else the engine's reason its promotion did not apply (`CODE_REASONS`)."""
    if not state.sent:
        return []
    applied = {promotion.promotion_id for promotion in result.applied}
    skipped = {entry.promotion_id: entry.reason for entry in result.skipped}
    decided: dict[str, CodeLog | None] = dict(state.logs)
    for promotion_id, candidates in state.candidates.items():
        chosen = state.choice.get(promotion_id)
        passed = False
        for code_id, code, typed in candidates:
            if not typed:
                passed = passed or code_id == chosen
                continue
            if code_id == chosen:
                passed = True
                if promotion_id in applied:
                    decided[code] = None
                else:
                    error_code, message = CODE_REASONS.get(
                        skipped.get(promotion_id, "CONDITION_NOT_MET"), CODE_REASONS["CONDITION_NOT_MET"]
                    )
                    decided[code] = _code_log(code, error_code, message)
            elif passed:
                decided[code] = _code_log(
                    code,
                    CODE_SAME_PROMOTION,
                    f"Another code of promotion {promotion_id} applies to this cart: one code per promotion.",
                )
            else:
                decided[code] = _code_log(
                    code, CODE_LIMIT_REACHED, "Code already redeemed: its Code limits are used up."
                )
    logs = []
    for sent in state.sent:
        log = decided.get(sent.strip().upper())
        if log is not None:
            logs.append(CodeLog(sent, log.code_type, log.message, log.error_code))
    return logs


# --- The service ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _uuid4_bits(count: int) -> tuple[int, int]:
    """For `count` UUIDs' random bytes read as one big-endian integer: the bits kept and the bits set,
    so that each UUID's byte 6 starts with its version (4) and byte 8 with the RFC 4122 variant."""
    keep, put = bytearray(b"\xff" * 16 * count), bytearray(16 * count)
    for n in range(6, 16 * count, 16):
        keep[n], put[n] = 0x0F, 0x40  # version 4
        keep[n + 2], put[n + 2] = 0x3F, 0x80  # the RFC 4122 variant
    return int.from_bytes(keep), int.from_bytes(put)


def _reference_ids(count: int) -> list[str]:
    """`count` random (version 4) UUIDs as text, from one read of the OS's random source and formatted
    here: `str(uuid.uuid4())` per line cost about 0.3 ms of a 50-line evaluation."""
    keep, put = _uuid4_bits(count)
    h = ((int.from_bytes(os.urandom(16 * count)) & keep | put).to_bytes(16 * count)).hex()
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
            Line.made(
                key,
                line.sku,
                line.amount - line.discount if line.discount else line.amount,
                line.qty,
                frozenset(line.categories),
                frozenset(line.brands),
                dict(line.attributes) if line.attributes else EMPTY,
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
    with_reserved_instances: bool = False,
    codes: CodeState | None = None,
) -> Context:
    """The engine's context: the moment, the org's zone, the till's store, the customer's wallet and
    the limits' headroom. 404 when the org has no customer `customer_id` (None: not identified).
    `with_reserved_instances`: also subtract what open carts hold of the wallet's instances.
    `codes` (`codes_resolve`): the promo codes' candidates; the one chosen per CODE promotion (its
    Code limits have room) is written to `codes.choice` and makes the promotion eligible."""
    codes = codes if codes is not None else CodeState()
    code_candidates = {
        pid: [code_id for code_id, _, _ in candidates] for pid, candidates in codes.candidates.items()
    }
    counters = None
    if customer_id is None:
        wallet = {}
    elif connection.vendor == "postgresql":
        # One statement for the wallet and the counters that do not depend on it.
        ranges, moving = _counter_keys(org, customer_id, rules, {}, now, code_candidates, earn=False)
        wallet, counters = _wallet_and_counters(org, customer_id, rules, now, ranges)
        if moving:
            counters.update(_counters_read({}, moving))
    else:
        wallet = _customer_wallet(org, customer_id, rules, now)
    instance_reserved = (
        instance_units_reserved([instance[0] for instance in wallet.values()], now)
        if with_reserved_instances
        else None
    )
    return Context(
        now=now,
        timezone=org.timezone,
        store=store,
        customer_known=customer_id is not None,
        wallet={promotion_id: instance[0] for promotion_id, instance in wallet.items()},
        headroom=_headroom(
            org,
            customer_id,
            rules,
            wallet,
            now,
            instance_reserved,
            code_candidates,
            codes.choice,
            counters,
        ),
        settings=settings,
        codes=codes.offered(),
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
    and inserts the evaluation (`_evaluation_store`): takes nothing and locks nothing, unless the org
    locks carts and the customer is identified (`_evaluation_create_locked`: 116, 120, 521). Errors: 404 the org has no such
    customer. A promotion that does not compile was skipped when the rules were compiled (and
    logged); it never makes the evaluation fail. `client_check`: the state of the API client served
    from the cache, verified by the insert (`ClientStale` when it no longer holds).
    """
    now = now or timezone.now()
    customer_id = data.customer_id
    if customer_id is not None and client_check is not None and _may_lock(org):
        # The locked path does not verify a cached client, and the cached state does not cover the
        # locking setting (the one-statement redemption verifies that state as it was): the caller
        # verifies the client and reads its org afresh first.
        raise ClientStale
    if org.locks_carts and customer_id is not None:
        return _evaluation_create_locked(
            org=org, data=data, api_client=api_client, till_code=till_code, store=store, now=now
        )
    rules = org_rules(org.pk, org.rules_version)
    codes = codes_resolve(org, customer_id, data.promo_codes, rules, now)
    context = evaluation_context(
        org=org,
        customer_id=customer_id,
        rules=rules,
        store=store,
        settings=engine_settings_for(org),
        now=now,
        codes=codes,
    )
    cart, keys = evaluation_cart(data.lines, data.tenders)
    # The answer says why a rule did not apply only for a code sent: recorded only then.
    result = evaluate(cart, rules.ruleset, context, reasons=codes.typed_offered)
    outcome = _outcome(data, customer_id, keys, cart, result, codes)
    outcome.evaluation = _evaluation_store(
        Evaluation(
            org=org,
            customer_id=customer_id,
            api_client=api_client,
            till_code=till_code,
            request=data.request,
            amount=data.amount,
            discount=result.discount,
            applied=_applied_text(outcome, keys, data),
            rules_version=rules.version,
        ),
        client_check,
        request_json=data.request_json,
    )
    return outcome


def _may_lock(org: Organization) -> bool:
    """Whether the org's strategy is the one cart locks work under (whatever its locking setting)."""
    return org.redemption_strategy == RedemptionStrategy.REDEMPTION_WITH_CART_EVALUATION


# Evaluations tried again when a limit's last units went to another cart between reading and reserving.
RESERVE_ATTEMPTS = 3


def _evaluation_create_locked(
    *,
    org: Organization,
    data: EvaluationInput,
    api_client: ApiClient | None,
    till_code: str,
    store: StoreScope | None,
    now: dt.datetime,
) -> EvaluationOutcome:
    """`evaluation_create` under cart locking for an identified customer (docs/cart-locks.md): in one
    transaction, lock the customer's row without waiting (521 when another request holds it), reverse
    the cart named by `cartEvaluationId` (120 when it is not an open cart of this customer), refuse a
    new cart beyond the org's open carts per customer (116), evaluate with what other open carts
    reserve subtracted, store the evaluation and reserve what it applied (a CartLock until
    `cart_lock_ttl_seconds` from now). When a counted limit's last units went to another customer's
    cart in between, the evaluation is rolled back and made again (it then no longer offers them).
    An evaluation that applies nothing opens no cart. Expired carts of the org are released first."""
    customer_id = data.customer_id
    cart_locks_release_expired(now=now, org=org)
    rules = org_rules(org.pk, org.rules_version)
    settings = engine_settings_for(org)
    try:
        with transaction.atomic():
            _customer_lock_or_refuse(org, customer_id)
            open_carts = set(
                CartLock.objects.filter(
                    org=org, customer_id=customer_id, status=CartLock.Status.OPEN, expires_at__gt=now
                ).values_list("pk", flat=True)
            )
            if data.cart_evaluation_id is not None:
                if data.cart_evaluation_id not in open_carts:
                    raise PromotionError(
                        ErrorCode.PENDING_CART_NOT_FOUND,
                        f"Pending cart not found: {data.cart_evaluation_id} is not an open cart of customer "
                        f"{customer_id} (redeemed, cancelled, expired, or never opened).",
                    )
                cart_lock_close(lock_id=data.cart_evaluation_id, status=CartLock.Status.REPLACED, now=now)
                open_carts.discard(data.cart_evaluation_id)
            if len(open_carts) >= org.cart_lock_max_pending_carts:
                raise PromotionError(
                    ErrorCode.MAX_PENDING_CARTS_EXCEEDED,
                    f"Max pending open carts exceeded: customer {customer_id} holds {len(open_carts)} open "
                    f"cart(s) ({', '.join(sorted(open_carts))}), the org allows "
                    f"{org.cart_lock_max_pending_carts}. Redeem or cancel it, evaluate it again with its "
                    "cartEvaluationId, or wait for it to expire.",
                )
            for _ in range(RESERVE_ATTEMPTS):
                savepoint = transaction.savepoint()
                outcome = _evaluation_locked_attempt(
                    org, data, api_client, till_code, store, now, rules, settings
                )
                if outcome is not None:
                    transaction.savepoint_commit(savepoint)
                    return outcome
                transaction.savepoint_rollback(savepoint)
            raise PromotionError(
                ErrorCode.RESOURCE_LOCKED,
                "Could not acquire the lock on the resource: the limits of the applied promotions are "
                "being reserved by other carts right now. Retry.",
            )
    except OperationalError as error:
        if _lock_conflict(error):
            raise PromotionError(
                ErrorCode.RESOURCE_LOCKED,
                f"Could not acquire the lock on the resource: another request is evaluating or redeeming "
                f"a cart of customer {customer_id} right now. Retry.",
            ) from error
        raise


def _evaluation_locked_attempt(
    org, data, api_client, till_code, store, now, rules, settings
) -> EvaluationOutcome | None:
    """One try of the locked evaluation: the outcome with its cart reserved, or None when a counted
    limit no longer had room for it (the caller rolls the try back)."""
    customer_id = data.customer_id
    codes = codes_resolve(org, customer_id, data.promo_codes, rules, now)
    context = evaluation_context(
        org=org,
        customer_id=customer_id,
        rules=rules,
        store=store,
        settings=settings,
        now=now,
        with_reserved_instances=True,
        codes=codes,
    )
    cart, keys = evaluation_cart(data.lines, data.tenders)
    # reasons only for a code sent (its log says why it did not apply)
    result = evaluate(cart, rules.ruleset, context, reasons=codes.typed_offered)
    outcome = _outcome(data, customer_id, keys, cart, result, codes)
    evaluation = Evaluation(
        org=org,
        customer_id=customer_id,
        api_client=api_client,
        till_code=till_code,
        request=data.request,
        amount=data.amount,
        discount=result.discount,
        applied=_applied_text(outcome, keys, data),
        rules_version=rules.version,
    )
    evaluation.save(force_insert=True)
    outcome.evaluation = evaluation
    units = cart_units(org, customer_id, rules, result, now, codes.choice)
    if not result.applied:
        return outcome
    lock = CartLock.objects.create(
        evaluation=evaluation,
        org=org,
        customer_id=customer_id,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=org.cart_lock_ttl_seconds),
    )
    if not cart_lock_units_reserve(org=org, lock=lock, units=units):
        return None
    return outcome


def cart_units(
    org: Organization,
    customer_id: int,
    rules: OrgRules,
    result: Result,
    now: dt.datetime,
    code_ids: dict[str, int] | None = None,
) -> list[ReservedUnit]:
    """What a cart's applied promotions take of their counted limits and earned instances, as the
    redemption of that cart would take them: per promotion its redemption count (REDEMPTION), one
    transaction (TRANSACTION) and its discount (DISCOUNT); an instance without an Earn REDEMPTION
    limit is single-use. A counted limit's units are reserved in the window `now` falls in, in the
    org's time zone: its lifetime row, its FIXED cycle's row, or its MOVING window's day row (with
    the window's days, which `cart_lock_units_reserve` sums; docs/cart-locks.md). A CODE promotion's
    Code limits are reserved for the code it applied through (`code_ids`: promotion id -> PromoCode
    id; scope `code:<id>`). An Earn limit whose window resets is reserved on the applied instance's
    window row (scope `earn:<id>`); the instance's own units are its lifetime Earn limits'."""
    code_ids = code_ids or {}
    units: list[ReservedUnit] = []
    tz = org.tz
    for applied in result.applied:
        usage = {
            Kpi.REDEMPTION: Decimal(applied.redemption_count),
            Kpi.TRANSACTION: Decimal(1),
            Kpi.DISCOUNT: applied.discount,
        }
        limits = rules.limits.get(applied.promotion_id, ())
        instance_id = applied.earned_promotion_id
        for limit in limits:
            if limit.level == Level.EARN:
                # A resetting Earn limit: the window's row of the instance (scope earn:<id>).
                if not limit.window.resets or not instance_id:
                    continue
                scope = earn_scope(instance_id)
            elif limit.level == Level.CODE:
                if applied.promotion_id not in code_ids:
                    continue
                scope = code_scope(code_ids[applied.promotion_id])
            else:
                scope = str(customer_id) if limit.level == Level.CUSTOMER else ""
            window = window_at(limit.window, tz=tz, at=now, promotion_start=limit.promotion_start)
            units.append(
                ReservedUnit(
                    kpi=limit.kpi,
                    amount=usage[limit.kpi],
                    restriction_id=limit.restriction_id,
                    scope=scope,
                    limit=limit.limit,
                    window_start=window.key,
                    moving=(window.first_day, window.last_day) if limit.window.kind == "MOVING" else None,
                )
            )
        if instance_id:
            earn_limits = [limit for limit in limits if limit.level == Level.EARN]
            # The instance's own units: its lifetime Earn limits (single-use without any Earn
            # REDEMPTION limit).
            earn = {limit.kpi: limit for limit in earn_limits if not limit.window.resets}
            kpis = earn.keys() | (
                set() if any(lim.kpi == Kpi.REDEMPTION for lim in earn_limits) else {Kpi.REDEMPTION}
            )
            for kpi in sorted(kpis):
                units.append(
                    ReservedUnit(
                        kpi=kpi,
                        amount=usage[kpi],
                        restriction_id=earn[kpi].restriction_id if kpi in earn else None,
                        earned_promotion_id=instance_id,
                    )
                )
    return units


def _customer_lock_or_refuse(org: Organization, customer_id: int) -> None:
    """Lock the org's customer row without waiting (PostgreSQL: NOWAIT raises at once when another
    request holds it); 404 when the org has no such customer."""
    customers = Customer.objects.filter(org=org, pk=customer_id)
    if connection.vendor == "postgresql":
        customers = customers.select_for_update(nowait=True)
    if customers.values_list("pk", flat=True).first() is None:
        raise PromotionError(ErrorCode.NOT_FOUND, "Customer not found")


def _lock_conflict(error: OperationalError) -> bool:
    """A row lock not available at once (NOWAIT), or a deadlock PostgreSQL broke by failing us."""
    return getattr(error.__cause__, "sqlstate", None) in ("55P03", "40P01")


def _evaluation_store(
    evaluation: Evaluation, client_check: str | None = None, *, request_json: str | None = None
) -> Evaluation:
    """Insert the evaluation without waiting for its WAL flush (PostgreSQL's `synchronous_commit`
    off, for this transaction only): an evaluation is indicative, and the flush was the largest
    part of the request's database time under load. A crash within a fraction of a second of the
    answer can lose the record of the last evaluations (never a redemption: those commit as
    always); the database stays consistent.

    On PostgreSQL one statement, `evaluation_record_v1` (migration 0023; a PL/pgSQL function plans its
    statements once per connection, where the insert sent as a statement was planned every time): it
    verifies `client_check` (the cached client's state, `promotions_site.auth.client_check`; False,
    and `ClientStale` here, when it no longer holds: nothing inserted), sets `synchronous_commit` off
    for its own transaction (the statement's, which it commits) and inserts. The call is prepared on
    the connection (`server_bound_cursor(prepared=True)`)."""
    if connection.vendor != "postgresql":
        if client_check is not None:
            raise ClientStale  # verified by the caller afresh
        with transaction.atomic():
            evaluation.save(force_insert=True)
        return evaluation
    evaluation.created_at = timezone.now()
    request_field = Evaluation._meta.get_field("request")
    with connection.server_bound_cursor(prepared=True) as cursor:
        cursor.execute(
            "SELECT evaluation_record_v1(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                evaluation.id,
                evaluation.org_id,
                evaluation.customer_id,
                evaluation.api_client_id,
                client_check,
                evaluation.till_code,
                request_json
                if request_json is not None
                else request_field.get_prep_value(evaluation.request),
                evaluation.amount,
                evaluation.discount,
                request_field.get_prep_value(evaluation.applied),
                evaluation.rules_version,
                evaluation.created_at,
            ],
        )
        if not cursor.fetchone()[0]:
            raise ClientStale
    evaluation._state.adding, evaluation._state.db = False, connection.alias
    return evaluation


def _outcome(
    data: EvaluationInput,
    customer_id: int | None,
    keys: list[str],
    cart: Cart,
    result: Result,
    codes: CodeState | None = None,
) -> EvaluationOutcome:
    codes = codes if codes is not None else CodeState(sent=list(data.promo_codes))
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
                promo_code=promotion.promo_code,
            )
        )
        if promotion.level == "LINE":
            _line_promotions(promotion, by_key)
    code_logs = _codes_logs(codes, result)
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
        unknown_code_count=codes.unknown_count,
        code_ids={
            promotion.promotion_id: codes.choice[promotion.promotion_id]
            for promotion in result.applied
            if promotion.promo_code is not None
        },
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


def _applied_text(outcome: EvaluationOutcome, keys: list[str], data: EvaluationInput) -> JSONText:
    """What the Evaluation row keeps of the result, as the JSON text it is stored as: per applied
    promotion, in order, `promotionId`, `identifier`, `discount`, `redemptionCount`,
    `earnedPromotionId`, `promoCode` and `promoCodeId` (a CODE promotion's), `level`, and `lines` (per
    line share: `referenceId`, `sku`, `discount`, `discountAppliedOnQuantity`,
    `promotionAppliedOnQuantity`); decimals as six-decimal strings. Formatted directly, as the
    identifiers are: the dicts and json.dumps of them were about a tenth of an evaluation of 50 lines.
    tests/redemptions/test_evaluation_identifiers.py holds it to the bytes json.dumps gives of them."""
    sku_of = dict(zip(keys, (line.sku for line in data.lines), strict=True))
    applied_by_id = {promotion.promotion_id: promotion for promotion in outcome.result.applied}
    entries = []
    for promotion in outcome.applied:
        earned = promotion.earned_promotion_id
        code = (
            f',"promoCode":{_quote(promotion.promo_code)},"promoCodeId":{int(outcome.code_ids[promotion.promotion_id])}'
            if promotion.promo_code is not None
            else ""
        )
        found = applied_by_id[promotion.promotion_id]
        lines = ",".join(
            f'{{"referenceId":{_quote(share.line_key)},"sku":{_quote(sku_of[share.line_key])},'
            f'"discount":"{decimal_text(share.discount)}",'
            f'"discountAppliedOnQuantity":"{decimal_text(share.discount_qty)}",'
            f'"promotionAppliedOnQuantity":"{decimal_text(share.promotion_qty)}"}}'
            for share in found.lines
        )
        entries.append(
            f'{{"promotionId":{_quote(promotion.promotion_id)},"identifier":{_quote(promotion.identifier)},'
            f'"discount":"{decimal_text(promotion.discount)}","redemptionCount":{int(promotion.redemption_count)},'
            f'"earnedPromotionId":{"null" if earned is None else _quote(earned)}{code},'
            f'"level":{_quote(found.level)},"lines":[{lines}]}}'
        )
    return JSONText(f"[{','.join(entries)}]")
