"""Reads of customers and their wallets, scoped to the caller's org."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import CharField, Prefetch, Q, QuerySet
from django.db.models.functions import Cast
from django.http import Http404
from django.utils import timezone

from promotions.models import Organization, PromoCode, PromotionRestriction, PromotionType
from promotions.windows import (
    LIFETIME,
    LIFETIME_WINDOW,
    OVERALL,
    Window,
    WindowRule,
    window_at,
    window_rule_stored,
)
from promotions_site.auth import CLIENT_STILL_AS_CACHED_SQL, ClientStale
from wallets.identifiers import email_normalize, mobile_normalize
from wallets.models import Customer, EarnedPromotion, PromotionActivation

WALLET_LEVELS = (
    PromotionRestriction.Level.CART,
    PromotionRestriction.Level.CUSTOMER,
    PromotionRestriction.Level.PROMOTION,
    PromotionRestriction.Level.EARN,
    # A linked promo code's own limits (its items only; left out of the body when empty).
    PromotionRestriction.Level.CODE,
)
# A promo code linked to the customer, as a wallet item (docs/code-link.md, "In the wallet").
CODE_KIND = "CODE"
CODE_LINKED_FROM = "CODE_LINK"
_BIGINT_MAX = 2**63 - 1
# The admin's customer search matches a substring only for a text this long (trigram indexes need 3).
CUSTOMER_SUBSTRING_MIN = 3


def customer_get(
    *, org: Organization, customer_id: int, client_id: int | None = None, client_check: str | None = None
) -> Customer:
    """The org's customer with this id; another org's customer (or an impossible id) is 404.

    `client_check`: the state of the API client (`client_id`) the request was served from the worker's cache
    (`promotions_site.auth.client_check`), verified by the same query; `ClientStale` when it no longer
    holds, or when there is no such customer (the caller verifies the client afresh before it answers
    404)."""
    if not 0 < customer_id <= _BIGINT_MAX:
        if client_check is not None:
            raise ClientStale
        raise Http404("Customer not found")
    if client_check is not None:
        with connection.cursor() as cursor:
            cursor.execute(_CUSTOMER_VERIFIED, [client_id, client_check, org.pk, customer_id])
            row = cursor.fetchone()
        if row is None or not row[-1]:
            raise ClientStale
        customer = Customer.from_db(connection.alias, _CUSTOMER_COLUMNS, row[:-1])
        customer.org = org
        return customer
    customer = Customer.objects.for_org(org).select_related("org").filter(pk=customer_id).first()
    if customer is None:
        raise Http404("Customer not found")
    return customer


_CUSTOMER_COLUMNS = [field.attname for field in Customer._meta.concrete_fields]
# The customer, and whether the cached API client (of the same org) is still as cached.
_CUSTOMER_VERIFIED = (
    f"SELECT {', '.join(f'cu.{field.column}' for field in Customer._meta.concrete_fields)},"
    f" {CLIENT_STILL_AS_CACHED_SQL.format(org='cu.org_id')}"
    f" FROM {Customer._meta.db_table} AS cu WHERE cu.org_id = %s AND cu.id = %s"
)


@dataclass(frozen=True)
class RestrictionUsage:
    """One limit of a promotion and how much of it is used, at one level (Cart, Customer, ...): in
    its current window (`window`, promotions/windows.py) for a limit that resets, else over its life.
    `reserved`: what open carts hold of it (docs/cart-locks.md), not used yet but not free either."""

    restriction: PromotionRestriction
    used: Decimal
    rule: WindowRule = OVERALL
    window: Window = LIFETIME_WINDOW
    reserved: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        """The limit less what is used and what open carts reserve, never below 0."""
        return max(Decimal(0), self.restriction.limit - self.used - self.reserved)


@dataclass
class WalletEntry:
    """One instance in a customer's wallet with the states the wallet API shows."""

    instance: EarnedPromotion
    status: str
    earned_status: str
    promotion_status: str
    # Every wallet level when counted (include_redemptions), else empty: the body then has no `restrictions`.
    restrictions: dict[str, list[RestrictionUsage]] = field(default_factory=dict)


WALLET_PROMOTION_DEFERRED = ("condition", "action", "earning_criteria", "store_criteria", "time_criteria")


class _Restrictions(list):
    """A promotion's restrictions read by `wallet_read`, answering `.all()` like the related manager."""

    def all(self) -> list:
        return self


@dataclass(frozen=True, slots=True)
class WalletPromotion:
    """The promotion of a `WalletInstance`: what the wallet shows of it, under the model's names."""

    pk: str
    name: str
    mode: str
    custom_field_values: object
    active: bool
    end_date: dt.datetime
    customer_activation_required: bool
    start_date: dt.datetime
    restrictions: _Restrictions = field(default_factory=_Restrictions)


@dataclass(frozen=True, slots=True)
class WalletInstance:
    """An instance as `wallet_read` reads it: the `EarnedPromotion` attributes the wallet shows."""

    pk: str
    customer_id: int
    kind: str
    status: str
    locked: bool
    valid_till: dt.datetime
    event_time: dt.datetime
    event_details: object
    earn_from_type: str
    earn_from_id: str
    promotion: WalletPromotion
    # A linked promo code's item (kind CODE): the code; None for an issued or earned instance.
    promo_code: str | None = None

    @property
    def promotion_id(self) -> str:
        return self.promotion.pk


def code_wallet_instance(code: PromoCode) -> WalletInstance:
    """A promo code linked to the customer as a wallet item: `pk` the code's id (as text), kind CODE,
    ACTIVE (REVOKED when the code is deactivated), valid till its promotion ends, `event_time` when
    it was linked, `earn_from_type` CODE_LINK and `earn_from_id` the code."""
    return WalletInstance(
        str(code.pk),
        code.customer_id,
        CODE_KIND,
        EarnedPromotion.Status.ACTIVE if code.active else EarnedPromotion.Status.REVOKED,
        False,
        code.promotion.end_date,
        code.linked_on,
        {},
        CODE_LINKED_FROM,
        code.code,
        promotion=code.promotion,
        promo_code=code.code,
    )


# `wallet_read`'s one statement: the customer of the org (and, for a client served from the worker's
# cache, whether it still holds), and its wallet items, latest validTill first, at most a limit: its
# instances of wallet promotions and the promo codes linked to it (`code_wallet_instance`); a customer
# without items is one row of NULLs after the first two columns.
_WALLET_READ_SQL = (
    "SELECT {client_ok}, x.* FROM wallets_customer AS cu LEFT JOIN LATERAL ("
    " SELECT * FROM ("
    " SELECT ep.id AS item_id, ep.customer_id, ep.kind, ep.status, ep.locked, ep.valid_till, ep.event_time,"
    " ep.event_details, coalesce(nullif(ep.unlocked_from_type, ''), ep.earned_from_type),"
    " coalesce(nullif(ep.unlocked_from_id, ''), ep.earned_from_id),"
    " p.id, p.name, p.mode, p.custom_field_values, p.active, p.end_date, p.customer_activation_required,"
    " p.start_date, NULL::text"
    " FROM wallets_earnedpromotion AS ep JOIN promotions_promotion AS p ON p.id = ep.promotion_id"
    " WHERE ep.org_id = cu.org_id AND ep.customer_id = cu.id AND p.type IN ({types}){active}"
    " ORDER BY ep.valid_till DESC, ep.id LIMIT %s) AS instances"
    " UNION ALL SELECT * FROM ("
    " SELECT pc.id::text, pc.customer_id, '{code_kind}', CASE WHEN pc.active THEN '{active_status}'"
    " ELSE '{revoked_status}' END, false, p.end_date, pc.linked_on, '{{}}'::jsonb, '{code_from}', pc.code,"
    " p.id, p.name, p.mode, p.custom_field_values, p.active, p.end_date, p.customer_activation_required,"
    " p.start_date, pc.code"
    " FROM promotions_promocode AS pc JOIN promotions_promotion AS p ON p.id = pc.promotion_id"
    " WHERE pc.org_id = cu.org_id AND pc.customer_id = cu.id{code_active}"
    " ORDER BY p.end_date DESC, pc.id::text LIMIT %s) AS codes"
    " ORDER BY valid_till DESC, item_id LIMIT %s) AS x ON true"
    " WHERE cu.org_id = %s AND cu.id = %s"
)
_WALLET_ACTIVE_SQL = " AND ep.status = %s AND ep.valid_till > %s AND p.active AND p.end_date > %s"
_WALLET_CODE_ACTIVE_SQL = " AND pc.active AND p.active AND p.end_date > %s"
_WALLET_TYPES_SQL = ", ".join(f"'{kind}'" for kind in PromotionType.WALLET_TYPES)


def _wallet_read_sql(*, cached: bool, active_only: bool) -> str:
    return _WALLET_READ_SQL.format(
        client_ok=CLIENT_STILL_AS_CACHED_SQL.format(org="cu.org_id") if cached else "true",
        types=_WALLET_TYPES_SQL,
        active=_WALLET_ACTIVE_SQL if active_only else "",
        code_active=_WALLET_CODE_ACTIVE_SQL if active_only else "",
        code_kind=CODE_KIND,
        code_from=CODE_LINKED_FROM,
        active_status=EarnedPromotion.Status.ACTIVE,
        revoked_status=EarnedPromotion.Status.REVOKED,
    )


_WALLET_READ = {
    (cached, active_only): _wallet_read_sql(cached=cached, active_only=active_only)
    for cached in (False, True)
    for active_only in (False, True)
}


def wallet_read(
    *,
    org: Organization,
    customer_id: int,
    limit: int,
    active_only: bool = False,
    include_redemptions: bool = False,
    client_id: int | None = None,
    client_check: str | None = None,
    now: dt.datetime | None = None,
) -> list[WalletEntry]:
    """`customer_get` and `wallet_get` in one statement, for PostgreSQL: the same entries, the
    instances read as `WalletInstance` rows rather than models (the wallet API's hot path).

    404 when the org has no such customer; with `client_check` (a client served from the worker's
    cache, `customer_get`), `ClientStale` when the client no longer holds or there is no such customer."""
    if not 0 < customer_id <= _BIGINT_MAX:
        if client_check is not None:
            raise ClientStale
        raise Http404("Customer not found")
    now = now or timezone.now()
    cached = client_check is not None
    params: list = [client_id, client_check] if cached else []
    if active_only:
        params += [EarnedPromotion.Status.ACTIVE, now, now]
    params.append(limit)
    if active_only:
        params.append(now)
    params += [limit, limit, org.pk, customer_id]
    with connection.cursor() as cursor:
        cursor.execute(_WALLET_READ[cached, active_only], params)
        rows = cursor.fetchall()
    if not rows or not rows[0][0]:
        if cached:
            raise ClientStale
        raise Http404("Customer not found")
    promotions: dict[str, WalletPromotion] = {}
    instances = []
    for row in rows:
        if row[1] is None:  # the customer holds no instance
            break
        # JSON columns arrive as text (Django's loader for jsonb) and are decoded as JSONField does.
        promotion = promotions.get(row[11])
        if promotion is None:
            promotion = promotions[row[11]] = WalletPromotion(
                row[11], row[12], row[13], _json(row[14]), row[15], row[16], row[17], row[18]
            )
        instances.append(
            WalletInstance(*row[1:8], _json(row[8]), row[9], row[10], promotion=promotion, promo_code=row[19])
        )
    if include_redemptions and promotions:
        for restriction in PromotionRestriction.objects.filter(
            promotion_id__in=promotions, level__in=WALLET_LEVELS
        ).order_by("kpi", "id"):
            promotions[restriction.promotion_id].restrictions.append(restriction)
    return _wallet_entries(Customer(pk=customer_id, org=org), instances, include_redemptions, now)


def wallet_get(
    *,
    customer: Customer,
    limit: int,
    active_only: bool = False,
    include_redemptions: bool = False,
    now: dt.datetime | None = None,
) -> list[WalletEntry]:
    """The customer's issued and earned promotions, latest `validTill` first (then by id), at most `limit`.

    - `active_only`: only ACTIVE instances still valid whose promotion is active and has not ended.
    - `status`: the instance's status, except that an ACTIVE instance past its validTill reads EXPIRED
      (the expiry job may not have run yet).
    - `earned_status`: LOCKED for an instance of an EARNING promotion issued and not yet earned
      (not redeemable until an earn unlocks it), UNLOCKED otherwise.
    - `promotion_status`: ACTIVE when the promotion is active and has not ended and, when it requires
      the customer's activation (customerActivationRequired), the customer activated it (or this
      instance); else INACTIVE (Capillary: such a promotion is issued INACTIVE until activated).
    - `include_redemptions`: each entry gets its promotion's limits per level with the amount used,
      counted from the redemption lines of unreversed redemptions (see `_restriction_usage`).

    A fixed number of queries, however many entries: the instances with their promotions, the
    promotions' restrictions, and at most three aggregates over the redemption lines.
    """
    now = now or timezone.now()
    instances = (
        EarnedPromotion.objects.for_org(customer.org_id)
        .filter(customer=customer, promotion__type__in=PromotionType.WALLET_TYPES)
        .select_related("promotion")
        # The promotion's rules are not shown in a wallet: not read (large JSON, decoded per row).
        .defer(*(f"promotion__{name}" for name in WALLET_PROMOTION_DEFERRED))
        .order_by("-valid_till", "id")
    )
    if active_only:
        instances = instances.filter(
            status=EarnedPromotion.Status.ACTIVE,
            valid_till__gt=now,
            promotion__active=True,
            promotion__end_date__gt=now,
        )
    if include_redemptions:
        instances = instances.prefetch_related(
            Prefetch(
                "promotion__restrictions",
                queryset=PromotionRestriction.objects.filter(level__in=WALLET_LEVELS).order_by("kpi", "id"),
            )
        )
    items = list(instances[:limit]) + _linked_codes(customer, limit, active_only, include_redemptions, now)
    # Both lists are in wallet order: merged, latest validTill first, then by id (as text).
    items.sort(key=lambda item: str(item.pk))
    items.sort(key=lambda item: item.valid_till, reverse=True)
    return _wallet_entries(customer, items[:limit], include_redemptions, now)


def _linked_codes(
    customer: Customer, limit: int, active_only: bool, include_redemptions: bool, now: dt.datetime
) -> list[WalletInstance]:
    """The promo codes linked to the customer as wallet items (`code_wallet_instance`), latest
    promotion end first, then by id as text (the one statement's order), at most `limit`."""
    codes = (
        PromoCode.objects.filter(org_id=customer.org_id, customer=customer)
        .select_related("promotion")
        .defer(*(f"promotion__{name}" for name in WALLET_PROMOTION_DEFERRED))
        .annotate(id_text=Cast("id", CharField()))
        .order_by("-promotion__end_date", "id_text")
    )
    if active_only:
        codes = codes.filter(active=True, promotion__active=True, promotion__end_date__gt=now)
    if include_redemptions:
        codes = codes.prefetch_related(
            Prefetch(
                "promotion__restrictions",
                queryset=PromotionRestriction.objects.filter(level__in=WALLET_LEVELS).order_by("kpi", "id"),
            )
        )
    return [code_wallet_instance(code) for code in codes[:limit]]


def _json(text):
    return json.loads(text) if isinstance(text, str) else text


def _wallet_entries(
    customer: Customer, instances: list, include_redemptions: bool, now: dt.datetime
) -> list[WalletEntry]:
    usage = _restriction_usage(customer, instances, now) if include_redemptions else {}
    not_activated = instances_not_activated(
        customer_id=customer.pk,
        instances=[(i.promotion_id, i.pk) for i in instances if i.promotion.customer_activation_required],
    )
    return [
        WalletEntry(
            instance=instance,
            status=_instance_status(instance, now),
            earned_status="LOCKED" if instance.locked else "UNLOCKED",
            promotion_status="ACTIVE"
            if instance.promotion.active
            and instance.promotion.end_date > now
            and instance.pk not in not_activated
            else "INACTIVE",
            restrictions=usage.get(instance.pk, {}),
        )
        for instance in instances
    ]


def instances_not_activated(*, customer_id: int, instances: list[tuple[str, str]]) -> set[str]:
    """Of the customer's `(promotion id, instance id)` pairs, each of a promotion that requires the
    customer's activation, the instance ids not activated: neither the promotion for the customer
    nor the instance. One query, none for no pairs."""
    if not instances:
        return set()
    rows = PromotionActivation.objects.filter(
        customer_id=customer_id, promotion_id__in={promotion_id for promotion_id, _ in instances}
    ).values_list("promotion_id", "earned_promotion_id")
    promotions: set[str] = set()
    activated: set[str] = set()
    for promotion_id, earned_id in rows:
        if earned_id is None:
            promotions.add(promotion_id)
        else:
            activated.add(earned_id)
    return {
        instance_id
        for promotion_id, instance_id in instances
        if promotion_id not in promotions and instance_id not in activated
    }


def rows_activated(*, customer_id: int, rows: list, required: frozenset[str]) -> list:
    """The customer's wallet rows `(promotion id, instance id, ...)` without the instances of a
    promotion in `required` (customerActivationRequired) that are not activated. No query when no
    row is of such a promotion."""
    not_activated = instances_not_activated(
        customer_id=customer_id, instances=[row[:2] for row in rows if row[0] in required]
    )
    return [row for row in rows if row[1] not in not_activated] if not_activated else rows


def _instance_status(instance: EarnedPromotion, now: dt.datetime) -> str:
    if instance.status == EarnedPromotion.Status.ACTIVE and instance.valid_till <= now:
        return EarnedPromotion.Status.EXPIRED
    return instance.status


def _usage_key(restriction: PromotionRestriction, instance: EarnedPromotion) -> str:
    """What a level's counter is kept per: the earned instance for Earn limits, else the promotion."""
    return instance.pk if restriction.level == PromotionRestriction.Level.EARN else instance.promotion_id


# The usage of a promotion's Customer, Promotion and Earn limits is counted from redemption lines,
# which the redemptions app owns and which build on the wallet, not the other way round: that app
# registers its counting here (RedemptionsConfig.ready). A counter takes the customer and
# {level: keys} (a key is a promotion id, or an instance id for Earn) and returns
# {level: {key: {kpi: amount used}}}; with none registered, nothing is used.
UsageCounter = Callable[[Customer, dict[str, set]], dict[str, dict]]
_usage_counters: list[UsageCounter] = []


def restriction_usage_counter_register(counter: UsageCounter) -> None:
    if counter not in _usage_counters:
        _usage_counters.append(counter)


# A Customer or Promotion limit's counter rows (RedemptionCounter, the redemptions app's too, registered
# likewise): takes [(restriction id, scope, first key, last key)] and returns {(restriction id, scope):
# (used, reserved)} summed over the keys in each range; `reserved` is what open carts hold
# (docs/cart-locks.md). A limit that resets is read from its window's rows (used and reserved); a
# lifetime limit's use is counted from the lines, its reservations from its LIFETIME row.
WindowCounter = Callable[
    [list[tuple[int, str, dt.date, dt.date]]], dict[tuple[int, str], tuple[Decimal, Decimal]]
]
_window_counters: list[WindowCounter] = []


def window_usage_counter_register(counter: WindowCounter) -> None:
    if counter not in _window_counters:
        _window_counters.append(counter)


# What open carts hold of earned instances' Earn limits (CartLockUnit rows, registered by the
# redemptions app): takes the instance ids and now, returns {(instance id, kpi): amount}.
InstanceReservedCounter = Callable[[list[str], dt.datetime], dict[tuple[str, str], Decimal]]
_instance_reserved_counters: list[InstanceReservedCounter] = []


def instance_reserved_counter_register(counter: InstanceReservedCounter) -> None:
    if counter not in _instance_reserved_counters:
        _instance_reserved_counters.append(counter)


def window_counts(
    ranges: list[tuple[int, str, dt.date, dt.date]],
) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
    """{(restriction id, scope): (used, reserved)} from the registered window counters."""
    counted: dict[tuple[int, str], tuple[Decimal, Decimal]] = {}
    for window_counter in _window_counters if ranges else ():
        counted.update(window_counter(ranges))
    return counted


def _restriction_usage(
    customer: Customer, instances: list[EarnedPromotion], now: dt.datetime
) -> dict[str, dict[str, list[RestrictionUsage]]]:
    """For each instance: {level: [usage per kpi]} of its promotion's restrictions, the amounts used
    as the registered usage counters report them (`redemptions.selectors.restriction_usage_count`).

    Customer level counts this customer's lines of the promotion, Promotion level every line of the
    promotion, Earn level the lines that redeemed this instance; a Cart limit holds per transaction,
    so all of it remains for the next one. REDEMPTION sums redemptionCount, TRANSACTION counts
    distinct redemptions, DISCOUNT sums the discount. Lines of reversed redemptions do not count.
    A Customer or Promotion limit whose window resets (FIXED, MOVING, CLASSIC with a frequency) is
    read from the counters of its window at `now`, in the org's time zone (the registered window
    counter: `redemptions.selectors.window_used_reserved`).

    What open carts reserve is `reserved` (docs/cart-locks.md): of a Customer or Promotion limit, the
    `reserved` of its counter rows (its window's, or its LIFETIME row for a lifetime limit); of an
    Earn limit, the instance's units held by open, unexpired carts. `remaining` subtracts both. An Earn
    limit whose window resets is read like a Code limit: the instance's counter rows (scope
    `earn:<id>`) of its window at `now`, used and reserved.
    """
    Level = PromotionRestriction.Level
    tz = customer.org.tz
    by_level: dict[str, set] = {level: set() for level in WALLET_LEVELS}
    windows: dict[int, tuple[WindowRule, Window]] = {}
    ranges = []
    earn_instances: list[str] = []
    code_windows: dict[int, tuple[WindowRule, Window]] = {}
    earn_windows: dict[tuple[int, str], tuple[WindowRule, Window]] = {}
    for instance in instances:
        promo_code = getattr(instance, "promo_code", None)
        for restriction in instance.promotion.restrictions.all():
            rule = window_rule_stored(restriction)
            if restriction.level == Level.CODE:
                # A code's own limits, counted for the code (its counters' scope); none for an instance.
                if promo_code is not None:
                    window = code_windows.get(restriction.pk)
                    if window is None:
                        at = window_at(rule, tz=tz, at=now, promotion_start=instance.promotion.start_date)
                        window = code_windows[restriction.pk] = (rule, at)
                    first, last = (
                        (window[1].first_day, window[1].last_day) if rule.resets else (LIFETIME, LIFETIME)
                    )
                    ranges.append((restriction.pk, code_scope(int(instance.pk)), first, last))
                continue
            if restriction.level == Level.EARN and rule.resets:
                # Counted per instance in its window's counter rows (scope earn:<id>).
                window = window_at(rule, tz=tz, at=now, promotion_start=instance.promotion.start_date)
                earn_windows[restriction.pk, instance.pk] = (rule, window)
                ranges.append((restriction.pk, earn_scope(instance.pk), window.first_day, window.last_day))
                continue
            if restriction.level not in (Level.CUSTOMER, Level.PROMOTION):
                by_level[restriction.level].add(_usage_key(restriction, instance))
                if restriction.level == Level.EARN:
                    earn_instances.append(instance.pk)
                continue
            if restriction.pk in windows:
                continue
            scope = str(customer.pk) if restriction.level == Level.CUSTOMER else ""
            if rule.resets:
                window = window_at(rule, tz=tz, at=now, promotion_start=instance.promotion.start_date)
                ranges.append((restriction.pk, scope, window.first_day, window.last_day))
            else:
                window = LIFETIME_WINDOW
                by_level[restriction.level].add(_usage_key(restriction, instance))
                ranges.append((restriction.pk, scope, LIFETIME, LIFETIME))
            windows[restriction.pk] = (rule, window)

    # Cart limits hold per transaction: nothing is used before the next one.
    del by_level[PromotionRestriction.Level.CART]
    used: dict[str, dict] = {}
    for counter in _usage_counters:
        used.update(counter(customer, by_level))
    in_windows = window_counts(ranges)
    held: dict[tuple[str, str], Decimal] = {}
    for instance_counter in _instance_reserved_counters if earn_instances else ():
        held.update(instance_counter(sorted(set(earn_instances)), now))

    zero = Decimal(0)
    usage: dict[str, dict[str, list[RestrictionUsage]]] = {}
    for instance in instances:
        levels: dict[str, list[RestrictionUsage]] = {level: [] for level in WALLET_LEVELS}
        for restriction in instance.promotion.restrictions.all():
            if restriction.level == Level.CODE:
                if getattr(instance, "promo_code", None) is not None:
                    rule, window = code_windows[restriction.pk]
                    code_used, reserved = in_windows.get(
                        (restriction.pk, code_scope(int(instance.pk))), (zero, zero)
                    )
                    levels[Level.CODE].append(
                        RestrictionUsage(restriction, code_used or zero, rule, window, reserved or zero)
                    )
                continue
            if (restriction.pk, instance.pk) in earn_windows:
                rule, window = earn_windows[restriction.pk, instance.pk]
                window_used, reserved = in_windows.get(
                    (restriction.pk, earn_scope(instance.pk)), (zero, zero)
                )
                levels[Level.EARN].append(
                    RestrictionUsage(restriction, window_used or zero, rule, window, reserved or zero)
                )
                continue
            counted = used.get(restriction.level, {}).get(_usage_key(restriction, instance), {})
            amount = counted.get(restriction.kpi, zero)
            if restriction.pk in windows:
                rule, window = windows[restriction.pk]
                scope = str(customer.pk) if restriction.level == Level.CUSTOMER else ""
                window_used, reserved = in_windows.get((restriction.pk, scope), (zero, zero))
                if rule.resets:
                    amount = window_used
                levels[restriction.level].append(
                    RestrictionUsage(restriction, amount, rule, window, reserved or zero)
                )
                continue
            reserved = zero
            if restriction.level == Level.EARN:
                reserved = held.get((instance.pk, restriction.kpi), zero)
            levels[restriction.level].append(RestrictionUsage(restriction, amount, reserved=reserved))
        usage[instance.pk] = levels
    return usage


# --- Customers by identifier ---------------------------------------------------------------------


def customer_get_by_identifier(
    *, org: Organization, identifier_name: str, identifier_value: str
) -> Customer | None:
    """The org's customer with this identifier (`mobile`, `email`, `externalId` or `id`), else None.

    Values are compared in their stored spelling (mobile digits without `+`, email lower-case); a value
    that cannot be such an identifier (an `id` that is not a number, a NUL character) finds nobody. Another org's
    customer is None, exactly like a missing one. Callers turn None into their API's not-found answer.
    """
    return (
        customers_by_identifier(org=org, identifier_name=identifier_name, identifier_value=identifier_value)
        .select_related("org")
        .first()
    )


def customers_by_identifier(*, org: Organization, identifier_name: str, identifier_value: str) -> QuerySet:
    """The queryset behind `customer_get_by_identifier` (at most one customer), for callers that lock it."""
    customers = Customer.objects.for_org(org)
    found = customer_identifier_column(identifier_name, identifier_value)
    if found is None:
        return customers.none()
    column, value = found
    return customers.filter(**{"pk" if column == "id" else column: value})


def customer_identifier_column(identifier_name: str, identifier_value: str) -> tuple[str, str | int] | None:
    """(column, value): the column of `wallets_customer` an identifier is stored in, and the value in its
    stored spelling; None when no customer can hold it (a malformed id, a blank value, a NUL)."""
    value = identifier_value.strip()
    if "\x00" in value:
        # No stored identifier holds a NUL (PostgreSQL text cannot): nobody, not a database error.
        return None
    if identifier_name == "id":
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 2**63):
            return None
        return "id", int(value)
    if identifier_name == "mobile":
        mobile = mobile_normalize(value)
        return ("mobile", mobile) if mobile else None
    if identifier_name == "email":
        return ("email", email_normalize(value)) if value else None
    if identifier_name == "externalId":
        return ("external_id", value) if value else None
    raise ValueError(f"unknown identifier name: {identifier_name}")


def customer_identifier_match(value: str) -> Q:
    """The customers whose id, mobile, email or externalId is `value`, each compared in its stored
    spelling: exact matches only, so each part can use the identifier's unique index."""
    value = value.strip()
    match = Q(external_id=value) | Q(email=email_normalize(value))
    mobile = mobile_normalize(value)
    if mobile:
        match |= Q(mobile=mobile)
    if value.isascii() and value.isdigit() and 0 < int(value) <= _BIGINT_MAX:
        match |= Q(pk=int(value))
    return match


def customers_matching(*, value: str, org_id: int | None) -> QuerySet[Customer]:
    """The customers whose id, mobile, email or externalId is `value` (`customer_identifier_match`;
    the admin's search boxes take any of them); `org_id` None means every org (a superuser)."""
    if not value.strip():
        return Customer.objects.none()
    customers = Customer.objects.filter(customer_identifier_match(value))
    return customers if org_id is None else customers.filter(org_id=org_id)


# --- Promo codes ---------------------------------------------------------------------------------

CODE_LOOKUP_MAX = 100
# A code no look-up can find: the placeholder that keeps the look-up's queries when nothing is found.
_NO_CODE = ""
# A restriction id no row has: the placeholder range that keeps the counters' query when no code is found.
_NO_RANGE = (0, "", LIFETIME, LIFETIME)


def code_scope(code_id: int) -> str:
    """The RedemptionCounter scope of one promo code's Code-level limits (`code:<PromoCode.id>`)."""
    return f"code:{code_id}"


def earn_scope(instance_id: str) -> str:
    """The RedemptionCounter scope of an earned instance's Earn limits whose window resets
    (`earn:<EarnedPromotion.id>`, docs/code-redemption.md#earn-limits-that-reset)."""
    return f"earn:{instance_id}"


@dataclass
class CodeRecord:
    """One promo code as the code APIs show it, with its Code-level limits counted for it."""

    code: PromoCode
    restrictions: dict[str, list[RestrictionUsage]] = field(default_factory=dict)


def codes_normalize(texts) -> list[str]:
    """The codes asked for, upper-case (codes are case-insensitive), blanks dropped, each once, in order."""
    return list(dict.fromkeys(text.strip().upper() for text in texts if text.strip()))


def promo_codes_look_up(
    *, org: Organization, codes: list[str], mode: str | None = None, now: dt.datetime | None = None
) -> tuple[list[CodeRecord], list[str]]:
    """(the org's codes among `codes` with their Code-level limits, in request order; the codes it
    does not have, in request order). `codes` are normalized (`codes_normalize`).

    A code of another org, or (with `mode`) of a promotion of the other mode, is not the org's: it is
    unknown, exactly like a missing one. The same three queries run whatever is found, none of them
    skipped when nothing is (no early return): the codes with their promotions (one query for all),
    the promotions' Code-level restrictions, and their counters (`code_restrictions`); so how long a
    look-up takes does not tell an existing code from a missing one (docs/code-link.md)."""
    now = now or timezone.now()
    # A NUL cannot be stored (PostgreSQL text): such a code is unknown without being sent.
    queried = [code for code in codes if "\x00" not in code] or [_NO_CODE]
    rows = {
        row.code: row
        for row in PromoCode.objects.filter(org=org, code__in=queried)
        .select_related("promotion")
        .defer(*(f"promotion__{name}" for name in WALLET_PROMOTION_DEFERRED))
    }
    found = [
        rows[code] for code in codes if code in rows and (mode is None or rows[code].promotion.mode == mode)
    ]
    known = {row.code for row in found}
    usage = code_restrictions(org=org, codes=found, now=now)
    records = [CodeRecord(row, usage.get(row.pk, {})) for row in found]
    return records, [code for code in codes if code not in known]


def code_restrictions(
    *, org: Organization, codes: list[PromoCode], now: dt.datetime
) -> dict[int, dict[str, list[RestrictionUsage]]]:
    """{code id: {"Code": [usage per limit]}}: each code's Code-level limits with what is used and
    reserved of them in the RedemptionCounter rows of scope `code:<id>` (the redemptions app writes
    them when a code is redeemed or an open cart holds it), in the limit's current window at `now`
    (the org's time zone). Two queries, whatever is found."""
    Level = PromotionRestriction.Level
    promotion_ids = {row.promotion_id for row in codes} or {_NO_CODE}
    restrictions: dict[str, list[PromotionRestriction]] = {}
    for restriction in PromotionRestriction.objects.filter(
        promotion_id__in=promotion_ids, level=Level.CODE
    ).order_by("kpi", "id"):
        restrictions.setdefault(restriction.promotion_id, []).append(restriction)
    windows: dict[tuple[int, int], tuple[WindowRule, Window]] = {}
    ranges = [_NO_RANGE]
    for row in codes:
        for restriction in restrictions.get(row.promotion_id, ()):
            rule = window_rule_stored(restriction)
            window = window_at(rule, tz=org.tz, at=now, promotion_start=row.promotion.start_date)
            windows[row.pk, restriction.pk] = (rule, window)
            first, last = (window.first_day, window.last_day) if rule.resets else (LIFETIME, LIFETIME)
            ranges.append((restriction.pk, code_scope(row.pk), first, last))
    counted = window_counts(ranges)
    zero = Decimal(0)
    usage: dict[int, dict[str, list[RestrictionUsage]]] = {}
    for row in codes:
        limits = []
        for restriction in restrictions.get(row.promotion_id, ()):
            rule, window = windows[row.pk, restriction.pk]
            used, reserved = counted.get((restriction.pk, code_scope(row.pk)), (zero, zero))
            limits.append(RestrictionUsage(restriction, used or zero, rule, window, reserved or zero))
        usage[row.pk] = {Level.CODE: limits}
    return usage
