"""Redemptions recorded at the till, their lines, and their reversals. Facts: never updated."""

from __future__ import annotations

import json

from django.db import models
from django.db.models import Q

from promotions.models import ApiClient, Organization, OrgScopedQuerySet, Promotion, new_object_id
from promotions.windows import LIFETIME
from wallets.models import Customer, EarnedPromotion

# The customerId a till sends for an anonymous sale, and the APIs answer for a redemption without one.
ANONYMOUS_CUSTOMER_ID = -1


class Redemption(models.Model):
    """One recorded transaction. (org, transactionIdentifier) is the idempotency key of the redeem API.

    An anonymous sale (`customerId: -1`: a till selling to nobody known) has no customer.
    """

    # No index of its own: the indexes below lead with org_id and serve a look-up by org alone.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="redemptions", db_index=False
    )
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="redemptions"
    )
    customer_identifier_type = models.CharField(max_length=20, blank=True, default="")
    customer_identifier_value = models.CharField(max_length=254, blank=True, default="")
    transaction_identifier = models.CharField(max_length=250)
    transaction_number = models.CharField(max_length=250)
    transaction_date = models.DateTimeField()
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    request_fingerprint = models.CharField(
        max_length=64,
        help_text="SHA-256 of the canonical request body: a replay must match it. A replay's answer is "
        "rendered again from the recorded rows, so it is the first answer byte for byte.",
    )
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.SET_NULL)
    # The till the redemption was recorded at (X-CAP-API-ATTRIBUTION-TILL-CODE, else the API client's
    # default till; empty when neither names one). A code, not a key: a till renamed or removed later
    # leaves the fact as it was. The performance page's top stores join it to the org's tills.
    till_code = models.CharField(max_length=100, blank=True, default="", db_default="")
    # Under REDEMPTION_WITH_CART_EVALUATION: the evaluation this redemption completes (at most one
    # redemption per evaluation: a partial unique index, so the redemptions without one, the hot
    # path's, add no index entry). Empty on the other strategies.
    evaluation = models.ForeignKey(
        "Evaluation", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "transaction_identifier"],
                name="redemption_transaction_identifier_unique_per_org",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="redemption_amount_not_negative"),
            models.UniqueConstraint(
                fields=["evaluation"],
                condition=Q(evaluation__isnull=False),
                name="redemption_evaluation_once",
            ),
            # An anonymous sale names nobody: no customer identifier either.
            models.CheckConstraint(
                condition=Q(customer__isnull=False)
                | Q(customer_identifier_type="", customer_identifier_value=""),
                name="redemption_anonymous_without_identifier",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "customer", "created_at"], name="redemption_org_customer"),
            # The redemption lists (API and admin): an org's redemptions by transaction date, in either
            # direction, ties by id; with the id in it a deep admin page is found by an index-only scan.
            models.Index(fields=["org", "transaction_date", "id"], name="redemption_org_txn_date_id"),
            # The audit's search by transactionNumber (the identifier has its unique index).
            models.Index(fields=["org", "transaction_number"], name="redemption_org_txn_number"),
        ]
        # Reversing gives limits back: the admin's reverse action needs this beyond view permission.
        permissions = [("reverse_redemption", "Can reverse redemptions")]

    def __str__(self) -> str:
        return self.transaction_identifier


class RedemptionLine(models.Model):
    """One redeemed promotion in a transaction: a `lineItems` entry or a cart-level `redemptions` entry."""

    class Level(models.TextChoices):
        LINE_ITEM = "LINEITEM"
        CART = "CART"

    # The indexes are declared in Meta: each one a query needs, and no `LIKE` twin (Django adds a
    # varchar_pattern_ops index beside a text foreign key's own; ids are never matched by prefix).
    redemption = models.ForeignKey(Redemption, on_delete=models.PROTECT, related_name="lines", db_index=False)
    level = models.CharField(max_length=8, choices=Level.choices)
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=100, blank=True, default="")
    promotion = models.ForeignKey(
        Promotion, on_delete=models.PROTECT, related_name="redemption_lines", db_index=False
    )
    earned_promotion = models.ForeignKey(
        EarnedPromotion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redemption_lines",
        db_index=False,
    )
    redemption_count = models.PositiveIntegerField()
    discount = models.DecimalField(max_digits=18, decimal_places=6)
    discount_applied_on_quantity = models.DecimalField(max_digits=18, decimal_places=6)
    promotion_applied_on_quantity = models.DecimalField(max_digits=18, decimal_places=6)
    # The promo code a CODE promotion was redeemed through (docs/code-redemption.md); null for others.
    promo_code = models.ForeignKey(
        "promotions.PromoCode",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redemption_lines",
        db_index=False,
    )

    class Meta:
        ordering = ["redemption", "level", "position"]
        # A redemption's lines of one promotion, by index alone: the list's total of a promotion's
        # lines since the last summarised day probes the day's redemptions rather than read every
        # line of the promotion.
        # (A redemption's lines by themselves: the unique constraint's index, which leads with redemption.)
        indexes = [
            models.Index(fields=["redemption", "promotion"], name="redemption_line_promotion"),
            # A promotion's lines: its Promotion and Customer limits' usage, the promotion's deletion check.
            models.Index(fields=["promotion"], name="redemption_line_promotion_id"),
            # An instance's lines: its Earn limits' usage, the wallet's counts, the deletion check.
            models.Index(fields=["earned_promotion"], name="redemption_line_instance"),
            # A code's lines: its Code limits' usage, the code's deletion check (lines with a code only).
            models.Index(
                fields=["promo_code"],
                name="redemption_line_promo_code",
                condition=Q(promo_code__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["redemption", "level", "position"], name="redemption_line_position"
            ),
            models.CheckConstraint(
                condition=Q(redemption_count__gte=1), name="redemption_line_count_positive"
            ),
            models.CheckConstraint(
                condition=Q(discount__gte=0), name="redemption_line_discount_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Redemption {self.redemption_id}, {self.title}"

    @property
    def title(self) -> str:
        """`line 1: SKU 1001` (the cart's first line, from 1) or `cart redemption 1`."""
        if self.level == self.Level.CART:
            return f"cart redemption {self.position + 1}"
        return f"line {self.position + 1}" + (f": SKU {self.sku}" if self.sku else "")


class RedemptionPromotion(models.Model):
    """A promotion a transaction redeemed (by one line of it or several), with the transaction's date
    copied: the audit list's promotion filter reads a promotion's transactions newest first from
    its index alone, a page in a hundred index entries however rare the promotion. Written with the
    lines by `redemption_record` (a fact, never updated, like the redemption it copies)."""

    redemption = models.ForeignKey(
        Redemption, on_delete=models.PROTECT, related_name="promotions_redeemed", db_index=False
    )
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="+", db_index=False)
    transaction_date = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["redemption", "promotion"], name="redemption_promotion_once")
        ]
        # The audit list's order (transaction date, then redemption id, newest first) within a promotion.
        indexes = [
            models.Index(
                fields=["promotion", "-transaction_date", "-redemption"], name="redemption_promotion_date"
            )
        ]

    def __str__(self) -> str:
        return f"{self.redemption_id}/{self.promotion_id}"


class RedemptionReversal(models.Model):
    """A return or cancelled sale: a new fact pointing at the redemption it undoes (at most one)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="redemption_reversals")
    redemption = models.OneToOneField(Redemption, on_delete=models.PROTECT, related_name="reversal")
    reason = models.CharField(max_length=250, blank=True, default="")
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["org", "created_at"], name="reversal_org_created")]

    def __str__(self) -> str:
        return f"Reversal of redemption {self.redemption_id}"


def code_scope(code_id: int) -> str:
    """The RedemptionCounter (and CartLockUnit) scope of a Code limit counted for one promo code
    (docs/code-redemption.md): `code:<PromoCode.id>`."""
    return f"code:{code_id}"


def earn_scope(instance_id: str) -> str:
    """The RedemptionCounter (and CartLockUnit) scope of an Earn limit whose window resets, counted
    for one earned instance (docs/code-redemption.md): `earn:<EarnedPromotion.id>`."""
    return f"earn:{instance_id}"


class RedemptionCounter(models.Model):
    """How much of one limit is used, for one scope: the unit a redemption takes under concurrency.

    One row per (restriction, scope, window): the Promotion level has one scope (""), the Customer
    level one per customer id; the window is `window_start` (promotions/windows.py). A redemption takes its units with
    one conditional UPDATE (`used + delta <= limit`); zero rows updated means the limit is reached.
    A reversal gives the units back. The database refuses `used > limit` whatever the code does.
    """

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="redemption_counters")
    restriction = models.ForeignKey(
        "promotions.PromotionRestriction", on_delete=models.CASCADE, related_name="counters"
    )
    scope = models.CharField(max_length=64, blank=True, default="")
    # The window counted: LIFETIME for a lifetime limit, a FIXED cycle's first local day, a MOVING
    # limit's day bucket (and LIFETIME for its lock row, which holds nothing): promotions/windows.py.
    window_start = models.DateField(default=LIFETIME)
    used = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    # Units held by open carts (CartLock, docs/cart-locks.md): an evaluation under cart locking takes
    # them on the row of the window the evaluation falls in, with one conditional upsert
    # (`used + reserved + delta <= limit`; never on a MOVING limit's day rows); the cart's redemption
    # turns them into `used`, its cancel or expiry gives them back. The one-statement redemption path
    # (orgs without cart locks) never writes it; the database default keeps its inserts valid.
    reserved = models.DecimalField(max_digits=18, decimal_places=6, default=0, db_default=0)
    limit = models.DecimalField(max_digits=18, decimal_places=6)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["restriction", "scope"]
        constraints = [
            models.UniqueConstraint(
                fields=["restriction", "scope", "window_start"], name="redemption_counter_scope_window"
            ),
            models.CheckConstraint(
                condition=Q(used__gte=0) & Q(used__lte=models.F("limit")),
                name="redemption_counter_within_limit",
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="redemption_counter_reserved_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Limit {self.restriction_id}, {self.scope or 'whole promotion'}: used {self.used:f} of {self.limit:f}"


class JSONText(str):
    """JSON text already encoded (an evaluation's `applied`, formatted directly): a JSONTextField stores
    it as it is. Read back from the database, the field's value is the parsed JSON, as for any other."""


class JSONTextField(models.TextField):
    """A JSON document kept as its text (a `text` column, not `jsonb`), read back as the Python value:
    for a document written once and read whole, never queried inside (an evaluation's request and what
    it applied). `jsonb` parsed each 5 to 10 KB document of an evaluation at insert and compressed it
    with pglz: about 0.2 ms of PostgreSQL's CPU per evaluation of 50 lines, more than the rest of the
    insert. The columns are compressed with lz4 where the server has it (migration 0023)."""

    def from_db_value(self, value, expression, connection):
        return None if value is None else json.loads(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        if isinstance(value, JSONText):
            return str(value)
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))


class Evaluation(models.Model):
    """One answered `POST /promotions/evaluate`: the cart as sent and what the engine applied to it.

    A fact, never updated. The next step (redemption with cart evaluation) binds a redemption to one:
    `applied` holds, per promotion, its identifier, discount, redemption count, the earned instance it
    used and its share of each line (by the line's `referenceId`), so a redemption can be compared
    with it without evaluating again.
    """

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="evaluations")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluations"
    )
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.SET_NULL)
    till_code = models.CharField(max_length=100, blank=True, default="")
    # The request body as sent (validated), so the evaluation can be replayed or audited: the JSON
    # text as it came when the parser kept it.
    request = JSONTextField()
    amount = models.DecimalField(max_digits=18, decimal_places=6)
    discount = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    # [{promotionId, identifier, discount, redemptionCount, earnedPromotionId, [promoCode, promoCodeId,]
    # level, lines: [{referenceId, sku, discount, discountAppliedOnQuantity, promotionAppliedOnQuantity}]}],
    # decimals as strings. The evaluation writes it as its JSON text (`JSONText`, formatted directly);
    # read back, it is that list.
    applied = JSONTextField(default=list, blank=True)
    rules_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0), name="evaluation_amount_not_negative"),
            models.CheckConstraint(condition=Q(discount__gte=0), name="evaluation_discount_not_negative"),
        ]
        indexes = [
            # A customer's evaluations, latest first (pending carts, binding a redemption to one).
            models.Index(fields=["org", "customer", "created_at"], name="evaluation_org_customer"),
            models.Index(fields=["org", "created_at"], name="evaluation_org_created"),
        ]

    def __str__(self) -> str:
        return self.id


class CartLock(models.Model):
    """An open cart: what one evaluation reserved for its customer (docs/cart-locks.md).

    Created with its evaluation (same id) when the org locks carts, the customer is identified and
    something was applied. OPEN until the redemption that names it (REDEEMED), a cancel (CANCELLED),
    a re-evaluation of the same cart (REPLACED) or its `expires_at` (EXPIRED). Every close is one
    conditional UPDATE from OPEN, so the units are given back (or handed to the redemption) exactly
    once, whichever of a read, the sweep, a cancel or a redemption gets there first.
    """

    class Status(models.TextChoices):
        OPEN = "OPEN"
        REDEEMED = "REDEEMED"
        CANCELLED = "CANCELLED"
        REPLACED = "REPLACED"
        EXPIRED = "EXPIRED"

    evaluation = models.OneToOneField(
        Evaluation, primary_key=True, on_delete=models.PROTECT, related_name="cart_lock"
    )
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="cart_locks")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="cart_locks")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    redemption = models.ForeignKey(
        Redemption, null=True, blank=True, on_delete=models.PROTECT, related_name="cart_locks"
    )

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["OPEN", "REDEEMED", "CANCELLED", "REPLACED", "EXPIRED"]),
                name="cart_lock_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="OPEN", closed_at__isnull=True)
                | (~Q(status="OPEN") & Q(closed_at__isnull=False)),
                name="cart_lock_closed_at_iff_closed",
            ),
        ]
        indexes = [
            # A customer's open carts (the lock, pending carts), and the sweep's expired ones.
            models.Index(
                fields=["customer", "expires_at"], condition=Q(status="OPEN"), name="cart_lock_open_customer"
            ),
            models.Index(fields=["org", "expires_at"], condition=Q(status="OPEN"), name="cart_lock_open_org"),
        ]

    def __str__(self) -> str:
        return f"cart {self.evaluation_id} ({self.status})"


class CartLockUnit(models.Model):
    """One amount an open cart holds: of a Customer or Promotion limit's counter (`restriction`,
    `scope` and `window_start`: the counter row of the window the evaluation fell in, whose
    `reserved` it is added to, so the give-back and the redemption's conversion hit that row), or of
    an earned instance's Earn limit (`earned_promotion`, `kpi`; `restriction` empty for the default
    single use; `window_start` LIFETIME)."""

    # The text foreign keys' indexes are declared in Meta (no `LIKE` twin, no second index on the
    # instance): a cart writes a unit per limit and instance it reserves.
    lock = models.ForeignKey(CartLock, on_delete=models.CASCADE, related_name="units", db_index=False)
    restriction = models.ForeignKey(
        "promotions.PromotionRestriction", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    scope = models.CharField(max_length=64, blank=True, default="")
    window_start = models.DateField(default=LIFETIME)
    earned_promotion = models.ForeignKey(
        EarnedPromotion, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kpi = models.CharField(max_length=11)
    amount = models.DecimalField(max_digits=18, decimal_places=6)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="cart_lock_unit_not_negative")]
        indexes = [
            models.Index(fields=["lock"], name="cart_lock_unit_lock"),
            models.Index(fields=["earned_promotion"], name="cart_lock_unit_instance"),
        ]

    def __str__(self) -> str:
        return f"{self.lock_id}: {self.amount} {self.kpi}"


class RedemptionDay(models.Model):
    """One closed day (in the org's time zone) of an org's redemptions, or of one promotion's: what the
    dashboard and the list's total read instead of aggregating the whole table on every request.

    A row with no promotion is the org's day: `redeemed` counts its transactions not reversed,
    `reversed` those reversed since, `discount` the discount of the unreversed ones, `lines` and
    `reversed_lines` their lines. A promotion's row counts the transactions with a line of it, its
    lines and their discount. Days up to yesterday are materialised (`redemption_days_refresh`: a
    periodic task, and on demand for the days missing); the org's row is written for every day, zero
    or not, so its presence says the day is materialised. From then on the write path keeps it exact:
    a redemption or a reversal whose transaction falls on a materialised day updates its rows.
    """

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="redemption_days")
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.CASCADE, related_name="redemption_days"
    )
    day = models.DateField()
    redeemed = models.PositiveIntegerField(default=0)
    reversed = models.PositiveIntegerField(default=0)
    discount = models.DecimalField(max_digits=24, decimal_places=6, default=0)
    lines = models.PositiveIntegerField(default=0)
    reversed_lines = models.PositiveIntegerField(default=0)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["org", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "day"], condition=Q(promotion__isnull=True), name="redemption_day_org"
            ),
            models.UniqueConstraint(
                fields=["org", "promotion", "day"],
                condition=Q(promotion__isnull=False),
                name="redemption_day_promotion",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.org_id}/{self.promotion_id or '-'}/{self.day}"
