"""Cart locks: what an open cart reserves, and every way a cart closes (docs/cart-locks.md).

An evaluation under cart locking (`Organization.locks_carts`) for an identified customer reserves
the units of the promotions it applied: of each Customer and Promotion limit (added to `reserved` of
the limit's RedemptionCounter row of the window the evaluation's time falls in, with one conditional
upsert `used + reserved + delta <= limit`, so two tills can never both be offered the last unit; a
MOVING limit on its day's row, under its lock row, then its windows summed) and of the earned instance it used (CartLockUnit rows;
only its own customer can use an instance, and a customer's evaluations are serialised by the
customer row). A cart closes exactly once: one conditional UPDATE from OPEN decides who closes it (a
redemption, a cancel, a re-evaluation of the same cart, or expiry on read or by the sweep), and only
that caller gives the units back (or hands them to the redemption).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization
from promotions.windows import LIFETIME
from promotions_site.errors import ErrorCode, PromotionError
from redemptions.models import CartLock, CartLockUnit, RedemptionCounter
from wallets.models import Customer

ZERO = Decimal(0)
EVALUATION_ID = re.compile(r"[0-9a-f]{24}")
# Expired carts released per call of `cart_locks_release_expired` (the sweep loops until none is left).
RELEASE_BATCH = 500


@dataclass(frozen=True)
class ReservedUnit:
    """One amount an open cart takes: of a counted limit (`restriction_id`, `scope`, `window_start`:
    the counter row of the window it is reserved in, with its `limit`) or of an earned instance's Earn
    limit (`earned_promotion_id`, `kpi`). A MOVING limit's unit is reserved on its day's row
    (`window_start`), its window's days in `moving`."""

    kpi: str
    amount: Decimal
    restriction_id: int | None = None
    scope: str = ""
    limit: Decimal | None = None
    earned_promotion_id: str | None = None
    window_start: dt.date = LIFETIME
    # A MOVING limit's window at the evaluation (its first and last day): `window_start` is its day.
    moving: tuple[dt.date, dt.date] | None = None

    @property
    def counted(self) -> bool:
        return self.earned_promotion_id is None


def limit_units_left(*, limit: Decimal, used: Decimal, reserved: Decimal) -> Decimal:
    """The units of one limit still free to offer: the limit, less what redemptions used, less what
    open carts reserve. The one place the evaluation's limit arithmetic lives."""
    return limit - used - reserved


def instance_units_reserved(instance_ids: list[str], now: dt.datetime) -> dict[tuple[str, str], Decimal]:
    """What open, unexpired carts hold of each earned instance's Earn limits: (instance id, kpi) -> amount."""
    if not instance_ids:
        return {}
    rows = (
        CartLockUnit.objects.filter(
            earned_promotion_id__in=instance_ids,
            lock__status=CartLock.Status.OPEN,
            lock__expires_at__gt=now,
        )
        .values_list("earned_promotion_id", "kpi")
        .annotate(total=Sum("amount"))
    )
    return {(instance_id, kpi): total for instance_id, kpi, total in rows}


def cart_lock_units_reserve(*, org: Organization, lock: CartLock, units: list[ReservedUnit]) -> bool:
    """Take `units` for `lock`, inside the caller's transaction. Counted limits with one multi-row
    upsert in (restriction, scope, window) order that grows `reserved` of the window's row only
    while `used + reserved + delta <= limit`; False when one of them does not fit (the caller rolls
    back). A lifetime or FIXED window is one row, so the row's condition is the limit's. A MOVING
    limit holds over the sum of its day rows, as on the redemption path: the same upsert also takes
    the limit's lock row (key LIFETIME, first in lock order, holding nothing), so the writers of one
    limit and scope take turns; then every window of the limit's length that holds the reserved day
    must stay within the limit, summing what is used and reserved (`window_peak`). Instance units
    are recorded as they are: the caller read their room under the customer's row lock."""
    counted = [u for u in units if u.counted]
    if any(unit.amount > unit.limit for unit in counted):
        return False
    if counted:
        ops, quote = connection.ops, connection.ops.quote_name
        now = ops.adapt_datetimefield_value(lock.created_at)
        rows = {(u.restriction_id, u.scope, u.window_start): (u.amount, u.limit) for u in counted}
        for unit in counted:
            if unit.moving is not None:
                rows.setdefault((unit.restriction_id, unit.scope, LIFETIME), (ZERO, unit.limit))
        params: list = []
        for (restriction_id, scope, key), (amount, limit_value) in sorted(rows.items()):
            params += [
                org.pk,
                restriction_id,
                scope,
                ops.adapt_datefield_value(key),
                ZERO,
                amount,
                limit_value,
                now,
            ]
        used, reserved, limit = quote("used"), quote("reserved"), quote("limit")
        statement = (
            f"INSERT INTO {quote(RedemptionCounter._meta.db_table)} AS counter"
            f" (org_id, restriction_id, scope, window_start, {used}, {reserved}, {limit}, updated_at)"
            f" VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s, %s)'] * len(rows))}"
            " ON CONFLICT (restriction_id, scope, window_start) DO UPDATE"
            f" SET {reserved} = counter.{reserved} + excluded.{reserved}, updated_at = excluded.updated_at"
            f" WHERE counter.{used} + counter.{reserved} + excluded.{reserved} <= counter.{limit}"
            " RETURNING restriction_id, scope, window_start"
        )
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            taken = cursor.fetchall()
        if len(taken) < len(rows):  # a lock row always fits: a unit did not
            return False
        moving = [unit for unit in counted if unit.moving is not None]
        if moving:
            # Read after the upsert (a new statement: READ COMMITTED sees the turn before ours): the
            # day buckets of every window of the limit's length that holds the reserved day.
            spans = {
                (u.restriction_id, u.scope): (u.moving[0], u.window_start + (u.moving[1] - u.moving[0]))
                for u in moving
            }
            buckets: dict[tuple[int, str], dict[dt.date, Decimal]] = defaultdict(dict)
            for restriction_id, scope, key, used_units, reserved_units in RedemptionCounter.objects.filter(
                functools.reduce(
                    operator.or_,
                    (
                        Q(
                            restriction_id=restriction_id,
                            scope=scope,
                            window_start__gte=first,
                            window_start__lte=last,
                        )
                        for (restriction_id, scope), (first, last) in spans.items()
                    ),
                )
            ).values_list("restriction_id", "scope", "window_start", "used", "reserved"):
                buckets[restriction_id, scope][key] = used_units + reserved_units
            for unit in moving:
                first, last = unit.moving
                days = buckets.get((unit.restriction_id, unit.scope), {})
                if window_peak(days, unit.window_start, last - first) > unit.limit:
                    return False
    CartLockUnit.objects.bulk_create(
        CartLockUnit(
            lock=lock,
            restriction_id=unit.restriction_id,
            scope=unit.scope,
            window_start=unit.window_start,
            earned_promotion_id=unit.earned_promotion_id,
            kpi=unit.kpi,
            amount=unit.amount,
        )
        for unit in units
    )
    return True


def cart_lock_close(*, lock_id: str, status: str, now: dt.datetime, redemption_id: int | None = None) -> bool:
    """Close an OPEN cart as `status`, inside the caller's transaction; True when this call closed it.

    One conditional UPDATE from OPEN (EXPIRED also requires `expires_at <= now`; the others require it
    not expired): of concurrent closers exactly one wins. A cart closed otherwise than REDEEMED gives
    its counted units back (in lock order); a REDEEMED one leaves them for the redemption to convert."""
    open_locks = CartLock.objects.filter(pk=lock_id, status=CartLock.Status.OPEN)
    if status == CartLock.Status.EXPIRED:
        open_locks = open_locks.filter(expires_at__lte=now)
    else:
        open_locks = open_locks.filter(expires_at__gt=now)
    if not open_locks.update(status=status, closed_at=now, redemption_id=redemption_id):
        return False
    if status != CartLock.Status.REDEEMED:
        units_give_back(lock_id)
    return True


def window_peak(buckets: dict[dt.date, Decimal], day: dt.date, length: dt.timedelta) -> Decimal:
    """The largest sum of a MOVING limit's day buckets (`{day: units}`) over a window of `length` + 1
    days that holds `day`. A window's sum grows only on a day with a bucket, so the windows ending on
    those days (and on `day`) are the ones to sum."""
    ends = {day} | {other for other in buckets if day < other <= day + length}
    return max(
        sum((units for other, units in buckets.items() if end - length <= other <= end), ZERO) for end in ends
    )


def units_reserved(lock_id: str) -> dict[tuple[int, str, dt.date], Decimal]:
    """What a cart reserved of each counter row: (restriction id, scope, window start) -> amount."""
    amounts: dict[tuple[int, str, dt.date], Decimal] = defaultdict(Decimal)
    for restriction_id, scope, window_start, amount in CartLockUnit.objects.filter(
        lock_id=lock_id, earned_promotion__isnull=True, restriction__isnull=False
    ).values_list("restriction_id", "scope", "window_start", "amount"):
        amounts[restriction_id, scope, window_start] += amount
    return dict(amounts)


def units_give_back(lock_id: str) -> None:
    """Take a closed cart's counted units out of the `reserved` of the counter rows (windows) they
    were reserved on, in (restriction, scope, window) order."""
    for (restriction_id, scope, window_start), amount in sorted(units_reserved(lock_id).items()):
        RedemptionCounter.objects.filter(
            restriction_id=restriction_id, scope=scope, window_start=window_start
        ).update(reserved=F("reserved") - amount)


def pending_cart_holds(customer: Customer, promotion, instance) -> bool:
    """Whether an open, unexpired cart of `customer` applied `promotion` (with earned instance
    `instance`, when one is named): the check the wallets app's opt-out asks before deactivating
    (737), registered in `RedemptionsConfig.ready`. A customer holds at most
    `cart_lock_max_pending_carts` open carts, so their evaluations are read as they are."""
    applied = CartLock.objects.filter(
        customer=customer, status=CartLock.Status.OPEN, expires_at__gt=timezone.now()
    ).values_list("evaluation__applied", flat=True)
    for entries in applied:
        for entry in entries or ():
            if entry.get("promotionId") == promotion.pk and (
                instance is None or entry.get("earnedPromotionId") == instance.pk
            ):
                return True
    return False


def cart_locks_release_expired(
    *, now: dt.datetime, org: Organization | None = None, customer_id: int | None = None
) -> int:
    """Release the expired open carts (of `org`, of one customer, or all), each in its own
    transaction so a caller never holds counters of several carts at once; the number released
    by this call. Release on read: the locked evaluation, the pending-carts read and the bound
    redemption call it first; the periodic sweep (`cart_locks_expire_task`) calls it for every org.
    A cart another caller releases at the same moment is skipped (its conditional close fails)."""
    expired = CartLock.objects.filter(status=CartLock.Status.OPEN, expires_at__lte=now)
    if org is not None:
        expired = expired.filter(org=org)
    if customer_id is not None:
        expired = expired.filter(customer_id=customer_id)
    released = 0
    for lock_id in list(expired.order_by("pk").values_list("pk", flat=True)[:RELEASE_BATCH]):
        with transaction.atomic():
            released += cart_lock_close(lock_id=lock_id, status=CartLock.Status.EXPIRED, now=now)
    return released


def cart_locks_sweep(*, now: dt.datetime) -> int:
    """Release every expired open cart of every org, a batch at a time (the periodic task)."""
    total = 0
    while True:
        released = cart_locks_release_expired(now=now)
        total += released
        if (
            not released
            or not CartLock.objects.filter(Q(status=CartLock.Status.OPEN) & Q(expires_at__lte=now)).exists()
        ):
            return total


def cart_cancel(
    *, org: Organization, customer_id: int, evaluation_id: str, actor: Actor, now: dt.datetime
) -> CartLock:
    """Close a customer's pending cart (`PUT .../customer/{customerId}/evaluations/{evaluationId}/cancel`)
    and give back what it reserved. Retry-safe: a cart already cancelled, expired or replaced is
    answered as closed, with nothing given back twice. Errors: 404 (code 404, "Passed evaluation log
    id is not found") when the org's customer has no cart under this evaluation id (an unknown id,
    another customer's, an evaluation that reserved nothing); 120 (404) when the cart was redeemed."""
    not_found = PromotionError(ErrorCode.NOT_FOUND, "Passed evaluation log id is not found")
    if not EVALUATION_ID.fullmatch(evaluation_id):  # never an id (and never sent to the database: a NUL)
        raise not_found
    with transaction.atomic():
        # The customer's row orders this close after an evaluation or redemption of the same customer.
        customer = Customer.objects.select_for_update().filter(org=org, pk=customer_id)
        if customer.values_list("pk", flat=True).first() is None:
            raise not_found
        lock = CartLock.objects.filter(org=org, customer_id=customer_id, pk=evaluation_id).first()
        if lock is None:
            raise not_found
        if lock.status == CartLock.Status.REDEEMED:
            raise PromotionError(
                ErrorCode.PENDING_CART_NOT_FOUND,
                f"Pending cart not found: the cart of evaluation {evaluation_id} was redeemed.",
            )
        # An open cart past its time is closed as what it is: expired.
        closed = cart_lock_close(
            lock_id=lock.pk, status=CartLock.Status.CANCELLED, now=now
        ) or cart_lock_close(lock_id=lock.pk, status=CartLock.Status.EXPIRED, now=now)
        if closed:
            audit_event_record(
                org=org,
                actor=actor,
                action="cart.cancel",
                object_type="Evaluation",
                object_id=lock.pk,
                data={"customerId": customer_id},
            )
        lock.refresh_from_db()
    return lock
