"""Organizations, their API clients and staff, cart promotions, loyalty programs and the audit trail."""

from __future__ import annotations

import enum
import secrets
import time
import zoneinfo
from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now, Upper


def new_object_id() -> str:
    """A 24-hex id shaped like the MongoDB ObjectIds Capillary uses: 4 bytes of time, 8 random."""
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"


def new_object_ids(count: int) -> list[str]:
    """`count` ids shaped like `new_object_id`'s, from one read of the random source (bulk writes)."""
    prefix = f"{int(time.time()):08x}"
    random_hex = secrets.token_bytes(8 * count).hex()
    return [prefix + random_hex[start : start + 16] for start in range(0, 16 * count, 16)]


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone: {value}") from exc


class OrgScopedQuerySet(models.QuerySet):
    """Every query from a client or a staff user goes through `for_org`."""

    def for_org(self, org: Organization | int):
        return self.filter(org=org)


class RoundingMode(models.TextChoices):
    """Python's decimal rounding modes, by the names Capillary's settings use."""

    UP = "UP"
    DOWN = "DOWN"
    CEILING = "CEILING"
    FLOOR = "FLOOR"
    HALF_UP = "HALF_UP"
    HALF_DOWN = "HALF_DOWN"
    HALF_EVEN = "HALF_EVEN"


class EvaluationMechanism(models.TextChoices):
    LINE_ITEM_FIRST = "LINE_ITEM_FIRST", "Line items, then cart"
    CART_FIRST = "CART_FIRST", "Cart first"


class PercentageBase(models.TextChoices):
    NET = "NET", "Net (after earlier promotions)"
    GROSS = "GROSS", "Gross (the cart as sent)"


class RedemptionStrategy(models.TextChoices):
    REDEMPTION_WITH_CART_EVALUATION = "REDEMPTION_WITH_CART_EVALUATION", "With cart evaluation"
    REDEMPTION_WITHOUT_CART_EVALUATION = "REDEMPTION_WITHOUT_CART_EVALUATION", "Without cart evaluation"
    REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED = (
        "REDEMPTION_WITHOUT_CART_EVALUATION_CAPPED",
        "Without cart evaluation, capped at what the engine gives",
    )


class Organization(models.Model):
    """The tenant (`orgId`). Every other row belongs to exactly one organization."""

    id = models.PositiveIntegerField(primary_key=True, help_text="orgId, as clients know it.")
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    max_active_promotions = models.PositiveIntegerField(
        default=250, help_text="Active, unexpired cart promotions allowed at once (705 beyond)."
    )
    # How the promotion engine evaluates this org's carts (docs/engine.md, "Settings").
    rounding_mode = models.CharField(
        max_length=9,
        choices=RoundingMode.choices,
        default=RoundingMode.HALF_UP,
        help_text="How each discount is rounded to the precision.",
    )
    rounding_precision = models.PositiveSmallIntegerField(
        default=2,
        validators=[MaxValueValidator(6)],
        help_text="Decimal places discounts are rounded to (0 to 6).",
    )
    evaluation_mechanism = models.CharField(
        max_length=15,
        choices=EvaluationMechanism.choices,
        default=EvaluationMechanism.LINE_ITEM_FIRST,
        help_text="Line promotions before cart promotions (default), or cart promotions first.",
    )
    percentage_base = models.CharField(
        max_length=5,
        choices=PercentageBase.choices,
        default=PercentageBase.NET,
        help_text="Stacked percentages are taken of the cart as earlier promotions left it (NET) "
        "or as sent (GROSS).",
    )
    several_line_promotions_per_unit = models.BooleanField(
        default=False, help_text="A unit discounted by one line promotion may be discounted by another."
    )
    redemption_strategy = models.CharField(
        max_length=41,
        choices=RedemptionStrategy.choices,
        default=RedemptionStrategy.REDEMPTION_WITHOUT_CART_EVALUATION,
        help_text="Whether redemptions are checked against what the engine gives for the cart.",
    )
    # Cart locks (docs/cart-locks.md): an evaluation for an identified customer reserves the units of
    # the promotions it applied until the cart is redeemed, cancelled or expires. Effective only under
    # REDEMPTION_WITH_CART_EVALUATION, the one strategy where a redemption names its evaluation.
    cart_locking_enabled = models.BooleanField(
        default=True,
        help_text="Under REDEMPTION_WITH_CART_EVALUATION: an evaluation reserves what it applied for the "
        "customer until the cart is redeemed, cancelled or expires.",
    )
    cart_lock_ttl_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(86400)],
        help_text="How long an open cart holds its reservation (seconds; default 5 minutes, up to 24 hours).",
    )
    cart_lock_max_pending_carts = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Open (pending) carts one customer may hold at once (116 beyond).",
    )
    # Bumped (one UPDATE with F() + 1) by every write to a promotion of the org or to its limits: the
    # evaluate endpoint caches the org's compiled rules per (org, rules_version).
    rules_version = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rounding_mode__in=RoundingMode.values), name="organization_rounding_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(rounding_precision__gte=0, rounding_precision__lte=6),
                name="organization_rounding_precision_0_to_6",
            ),
            models.CheckConstraint(
                condition=Q(evaluation_mechanism__in=EvaluationMechanism.values),
                name="organization_evaluation_mechanism_valid",
            ),
            models.CheckConstraint(
                condition=Q(percentage_base__in=PercentageBase.values),
                name="organization_percentage_base_valid",
            ),
            models.CheckConstraint(
                condition=Q(redemption_strategy__in=RedemptionStrategy.values),
                name="organization_redemption_strategy_valid",
            ),
            models.CheckConstraint(
                condition=Q(cart_lock_ttl_seconds__gte=1, cart_lock_ttl_seconds__lte=86400),
                name="organization_cart_lock_ttl_1s_to_24h",
            ),
            models.CheckConstraint(
                condition=Q(cart_lock_max_pending_carts__gte=1, cart_lock_max_pending_carts__lte=50),
                name="organization_cart_lock_max_pending_1_to_50",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def locks_carts(self) -> bool:
        """Whether an evaluation for an identified customer reserves what it applies (docs/cart-locks.md)."""
        return (
            self.cart_locking_enabled
            and self.redemption_strategy == RedemptionStrategy.REDEMPTION_WITH_CART_EVALUATION
        )


class User(AbstractUser):
    """An admin user. Staff users belong to one org and see only its data; superusers see all."""

    org = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )


class ApiClient(models.Model):
    """A till or server integration: HTTP Basic username/secret or OAuth key/secret.

    The secret is stored only as a keyed hash of its MD5 hex digest (`promotions_site/client_secrets.py`),
    so both the plain secret and the MD5 digest Capillary tills send verify against it.
    """

    class Access(models.TextChoices):
        READ = "READ", "Read"
        WRITE = "WRITE", "Read and write"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_clients")
    username = models.CharField(max_length=150, unique=True, help_text="Basic-auth username and OAuth key.")
    secret_hash = models.CharField(max_length=256, editable=False)
    access = models.CharField(max_length=5, choices=Access.choices, default=Access.WRITE)
    is_active = models.BooleanField(default=True)
    token_ttl_seconds = models.PositiveIntegerField(default=300)
    default_till = models.ForeignKey(
        "Till",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The till this client's evaluations run at when a request names none "
        "(X-CAP-API-ATTRIBUTION-TILL-CODE).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(token_ttl_seconds__gte=60, token_ttl_seconds__lte=3600),
                name="api_client_token_ttl_between_1m_and_1h",
            ),
        ]

    def __str__(self) -> str:
        return self.username

    # DRF treats the authenticated principal as `request.user`.
    is_authenticated = True
    is_anonymous = False

    @property
    def can_write(self) -> bool:
        return self.access == self.Access.WRITE

    def clean(self) -> None:
        super().clean()
        if (
            self.default_till_id is not None
            and self.org_id is not None
            and self.default_till.org_id != self.org_id
        ):
            raise ValidationError({"default_till": "Must belong to the same organization."})


# --- The store hierarchy ---------------------------------------------------------------------------
# Capillary's org hierarchy: zones (geographic) and concepts (brands, formats) nest and group stores; a
# store may have a parent store; tills (POS machines) belong to one store. `storeCriteria` names zones,
# concepts and stores by `external_id`, the org's own integer id for them (Capillary's, e.g. 75175598),
# unique in the org; the primary key is ours, so two orgs may use the same ids.

EXTERNAL_ID_MAX = 2**63 - 1
# Capillary's rule for a till's name, copied to its code: a letter first, then letters, digits, ".", "_"
# or "-", at least 3 characters; lower case.
TILL_CODE_PATTERN = r"^[a-z][a-z0-9._-]{2,}$"
TILL_CODE_MAX_LENGTH = 100


class _HierarchyNode(models.Model):
    """What zones, concepts and stores share: the org, the org's id for it, a name."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    external_id = models.BigIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(EXTERNAL_ID_MAX)],
        help_text="The org's id for it, as storeCriteria names it (e.g. 75175598).",
    )
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["org", "external_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.external_id})"

    def clean(self) -> None:
        super().clean()
        errors = {}
        for name in self.ORG_BOUND:
            related = getattr(self, name, None)
            if related is not None and self.org_id is not None and related.org_id != self.org_id:
                errors[name] = "Must belong to the same organization."
        parent = getattr(self, "parent", None)
        if (
            "parent" not in errors
            and parent is not None
            and self.pk is not None
            and self.pk in ancestor_ids(type(self), parent.pk)
        ):
            errors["parent"] = "Would make a cycle: this row is above the chosen parent."
        if errors:
            raise ValidationError(errors)

    ORG_BOUND: tuple[str, ...] = ("parent",)


def ancestor_ids(model, start_pk: int | None, *, limit: int = 1000) -> list[int]:
    """The primary keys from `start_pk` up its `parent` chain (itself first), stopping at a repeat,
    so a cycle (two concurrent edits can make one) ends the walk instead of looping."""
    seen: list[int] = []
    current = start_pk
    while current is not None and current not in seen and len(seen) < limit:
        seen.append(current)
        current = model.objects.filter(pk=current).values_list("parent_id", flat=True).first()
    return seen


def _node_constraints(prefix: str) -> list:
    return [
        models.UniqueConstraint(fields=["org", "external_id"], name=f"{prefix}_external_id_unique_per_org"),
        models.CheckConstraint(condition=Q(external_id__gte=1), name=f"{prefix}_external_id_positive"),
        models.CheckConstraint(
            condition=Q(parent__isnull=True) | ~Q(parent=F("pk")), name=f"{prefix}_not_its_own_parent"
        ),
    ]


class Zone(_HierarchyNode):
    """A geographic grouping of stores; zones nest."""

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta(_HierarchyNode.Meta):
        constraints = _node_constraints("zone")


class Concept(_HierarchyNode):
    """A logical grouping of stores (a brand, a format); concepts nest."""

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    class Meta(_HierarchyNode.Meta):
        constraints = _node_constraints("concept")


class Store(_HierarchyNode):
    """A store, in at most one zone and one concept, optionally under a parent store."""

    code = models.CharField(max_length=100, blank=True, default="", help_text="The org's code for it.")
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.PROTECT, related_name="stores")
    concept = models.ForeignKey(
        Concept, null=True, blank=True, on_delete=models.PROTECT, related_name="stores"
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )

    ORG_BOUND = ("parent", "zone", "concept")

    class Meta(_HierarchyNode.Meta):
        constraints = [
            *_node_constraints("store"),
            models.UniqueConstraint(
                fields=["org", "code"], condition=~Q(code=""), name="store_code_unique_per_org"
            ),
        ]


class Till(models.Model):
    """A POS machine of a store. Requests name it by `code` (X-CAP-API-ATTRIBUTION-TILL-CODE)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    code = models.CharField(
        max_length=TILL_CODE_MAX_LENGTH,
        validators=[
            RegexValidator(
                TILL_CODE_PATTERN,
                "A letter a-z first, then a-z, 0-9, '.', '_' or '-'; at least 3 characters.",
            )
        ],
        help_text="Unique in the org: a-z first, then a-z, 0-9, '.', '_' or '-'; at least 3 characters.",
    )
    name = models.CharField(max_length=200)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="tills")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["org", "code"]
        constraints = [
            models.UniqueConstraint(fields=["org", "code"], name="till_code_unique_per_org"),
            models.CheckConstraint(condition=Q(code__regex=TILL_CODE_PATTERN), name="till_code_valid"),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        super().clean()
        if self.store_id is not None and self.org_id is not None and self.store.org_id != self.org_id:
            raise ValidationError({"store": "Must belong to the same organization."})


class PromotionType(models.TextChoices):
    POS = "POS"
    CODE = "CODE"
    CUSTOMER = "CUSTOMER"
    EARNING = "EARNING"
    REWARD = "REWARD"

    # What each type can do (plain values, not members: `promotion.type` read from a row is a str).
    # Held in a customer's wallet as instances: redeemed through an instance, revocable, and the only
    # types that may require the customer's activation. POS and CODE promotions never sit in a wallet.
    WALLET_TYPES = enum.nonmember((CUSTOMER, EARNING, REWARD))
    # Issued by issueBulk and the admin's issue jobs.
    ISSUABLE_TYPES = enum.nonmember((CUSTOMER, EARNING))
    # Earned by earn, earn/bulk and the admin's bulk-earn jobs; the only types with Earn-level limits.
    EARNABLE_TYPES = enum.nonmember((EARNING, REWARD))


class PromotionMode(models.TextChoices):
    DISCOUNT = "DISCOUNT"
    PAYMENT_VOUCHER = "PAYMENT_VOUCHER"


class Promotion(models.Model):
    """A cart promotion definition, with the fields of Capillary's create-promotion API."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="promotions")
    name = models.CharField(max_length=50)
    type = models.CharField(max_length=10, choices=PromotionType.choices)
    active = models.BooleanField(default=True)
    priority = models.PositiveIntegerField(default=0, help_text="0 is the highest priority.")
    is_stackable = models.BooleanField(default=False)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    mode = models.CharField(max_length=16, choices=PromotionMode.choices, default=PromotionMode.DISCOUNT)
    message_label = models.CharField(max_length=255, blank=True, default="")
    campaign_id = models.CharField(max_length=100, blank=True, default="")
    condition = models.JSONField(default=dict, blank=True)
    action = models.JSONField(default=dict, blank=True)
    max_issuance_per_customer = models.IntegerField(default=1, help_text="-1 for unlimited, else 1 to 50.")
    max_earning_per_customer = models.IntegerField(
        null=True, blank=True, help_text="Empty or -1 for unlimited, else at least 1."
    )
    earned_validity_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days an earned instance stays valid; empty: until the promotion ends.",
    )
    customer_activation_required = models.BooleanField(default=False)
    earn_limited_to_specific_audience = models.BooleanField(default=False)
    earning_criteria = models.JSONField(null=True, blank=True)
    custom_field_values = models.JSONField(default=dict, blank=True)
    # Capillary's store scope, `{type: STORE|ZONE|CONCEPT, values: [ids], operator: IN|NOT_IN}` as the API
    # echoes it; null: every store.
    store_criteria = models.JSONField(null=True, blank=True)
    # Capillary's time window, `{startTime "HH:mm", durationInHours, repeatFrequency, weeklyValues}` as the
    # API echoes it (durationInHours an integer); null: at any time of day.
    time_criteria = models.JSONField(null=True, blank=True)
    # Capillary documents isLoyaltyOnly for POS promotions: only a known loyalty customer gets it.
    is_loyalty_only = models.BooleanField(default=False)
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_on = models.DateTimeField(auto_now_add=True)
    last_updated_by = models.CharField(max_length=150, blank=True, default="")
    last_updated_on = models.DateTimeField(auto_now=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_on"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="promotion_name_unique_per_org"),
            models.CheckConstraint(
                condition=Q(end_date__gt=F("start_date")), name="promotion_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(max_issuance_per_customer=-1)
                | Q(max_issuance_per_customer__gte=1, max_issuance_per_customer__lte=50),
                name="promotion_max_issuance_valid",
            ),
            models.CheckConstraint(
                condition=Q(max_earning_per_customer__isnull=True)
                | Q(max_earning_per_customer=-1)
                | Q(max_earning_per_customer__gte=1),
                name="promotion_max_earning_valid",
            ),
            models.CheckConstraint(
                condition=Q(earned_validity_days__isnull=True) | Q(earned_validity_days__gte=1),
                name="promotion_earned_validity_days_positive",
            ),
            models.CheckConstraint(condition=Q(type__in=PromotionType.values), name="promotion_type_valid"),
            models.CheckConstraint(condition=Q(mode__in=PromotionMode.values), name="promotion_mode_valid"),
        ]
        indexes = [models.Index(fields=["org", "active", "end_date"], name="promotion_org_active_end")]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class PromotionRestriction(models.Model):
    """One limit of `promotionRestrictions`: a level (Customer, Cart, Promotion, Earn, Code), a kpi, a limit."""

    class Level(models.TextChoices):
        CUSTOMER = "Customer"
        CART = "Cart"
        PROMOTION = "Promotion"
        EARN = "Earn"
        CODE = "Code"

    class Kpi(models.TextChoices):
        REDEMPTION = "REDEMPTION"
        TRANSACTION = "TRANSACTION"
        DISCOUNT = "DISCOUNT"

    promotion = models.ForeignKey(Promotion, on_delete=models.CASCADE, related_name="restrictions")
    level = models.CharField(max_length=10, choices=Level.choices)
    kpi = models.CharField(max_length=12, choices=Kpi.choices)
    limit = models.DecimalField(max_digits=18, decimal_places=6)
    frequency = models.CharField(max_length=20, blank=True, default="")
    window_type = models.CharField(max_length=10, blank=True, default="")
    min_time_between_repeat = models.BigIntegerField(null=True, blank=True)
    fixed_window_config = models.JSONField(null=True, blank=True)
    # The window resolved from the four fields above (`promotions.windows.window_rule_of`), written
    # with them by the service, so the redemption's SQL function reads it without resolving defaults.
    window_kind = models.CharField(max_length=7, default="OVERALL", editable=False)
    window_cycle = models.CharField(max_length=14, blank=True, default="", editable=False)
    window_days = models.PositiveIntegerField(default=0, editable=False)
    window_week_start = models.PositiveSmallIntegerField(default=0, editable=False)
    window_anchor_ms = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        # A lifetime limit and a windowed one of the same kpi: in the order they were sent.
        ordering = ["promotion", "level", "kpi", "id"]
        constraints = [
            # A level's kpi has one limit, or two: one lifetime and one whose window resets (the
            # service checks which pairs are allowed).
            models.UniqueConstraint(
                fields=["promotion", "level", "kpi", "window_type"],
                name="restriction_unique_level_kpi_window",
            ),
            models.CheckConstraint(condition=Q(limit__gt=0), name="restriction_limit_positive"),
        ]

    def __str__(self) -> str:
        # A count (REDEMPTION, TRANSACTION) as an integer; an amount as stored, without trailing zeros.
        limit = self.limit
        if isinstance(limit, Decimal):
            limit = int(limit) if limit == limit.to_integral_value() else limit.normalize()
        return f"{self.level} {self.kpi} at most {limit}"


class LoyaltyProgram(models.Model):
    """A loyalty program (integer `programId`)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="loyalty_programs")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="loyalty_program_name_unique_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class LoyaltyPromotion(models.Model):
    """A loyalty promotion inside a program: LOYALTY (direct issue) or LOYALTY_EARNING (enrol and issue)."""

    class Type(models.TextChoices):
        LOYALTY = "LOYALTY"
        LOYALTY_EARNING = "LOYALTY_EARNING"

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="loyalty_promotions")
    program = models.ForeignKey(LoyaltyProgram, on_delete=models.PROTECT, related_name="promotions")
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.LOYALTY)
    active = models.BooleanField(default=True)
    start_date = models.DateTimeField()
    end_date = models.DateTimeField()
    max_issuance_per_customer = models.IntegerField(default=1, help_text="-1 for unlimited.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gt=F("start_date")), name="loyalty_promotion_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(max_issuance_per_customer=-1) | Q(max_issuance_per_customer__gte=1),
                name="loyalty_promotion_max_issuance_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"


class AuditEvent(models.Model):
    """Who did what, when, on which org, under which request id. Append-only."""

    class ActorType(models.TextChoices):
        API_CLIENT = "API_CLIENT"
        ADMIN_USER = "ADMIN_USER"
        SYSTEM = "SYSTEM"

    # No index of its own: audit_org_object leads with org_id and serves a look-up by org alone.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="audit_events", db_index=False
    )
    actor_type = models.CharField(max_length=10, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["org", "object_type", "object_id"], name="audit_org_object")]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type} {self.object_id}"


class IdempotencyKey(models.Model):
    """An API client's `Idempotency-Key` and the answer kept for it (retry safety of writes that have
    no natural key; see promotions_site/idempotency.py).

    One row per (client, key). `fingerprint` identifies the request that used the key (method, path,
    query and canonical body); `response_status` and `response_body` are the kept answer, replayed
    byte for byte, and `completed_at` is set once there is one. A row without an answer was left by
    a request that kept nothing (invalid input, a crash): the next request with the key runs.
    """

    # No index of its own: the unique (api_client, key) index serves lookups by client.
    api_client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="idempotency_keys", db_index=False
    )
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.TextField()
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["api_client", "key"], name="idempotency_key_unique_per_client"),
            models.CheckConstraint(
                condition=Q(completed_at__isnull=True)
                | Q(response_status__isnull=False, response_body__isnull=False),
                name="idempotency_key_completed_has_response",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.api_client_id}: {self.key}"


class PromoCodeBatch(models.Model):
    """One request that put codes into a CODE promotion: a generation or a CSV upload.

    `request_id` makes the request idempotent per org (a retried request finds its batch); `params`
    holds what was asked (count, length, charset, alphabet, prefix, suffix, pattern); `done` counts
    the codes written so far (the progress bar), `failed` the upload rows refused (see `report`).
    """

    class Kind(models.TextChoices):
        GENERATE = "GENERATE"
        UPLOAD = "UPLOAD"

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"
        CANCELLED = "CANCELLED"

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="promo_code_batches")
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="code_batches")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    request_id = models.CharField(max_length=100)
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=list, blank=True, help_text="Upload rows refused: line, code, reason.")
    error = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "promo code batches"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "request_id"], name="promo_code_batch_request_unique"),
            models.CheckConstraint(
                condition=Q(kind__in=["GENERATE", "UPLOAD"]), name="promo_code_batch_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.total} codes for {self.promotion_id}"


class PromoCode(models.Model):
    """One promo code of a CODE promotion.

    Stored upper-case: codes are case-insensitive, so a look-up upper-cases what it is sent and the
    unique (org, code) index answers it. Unlinked (`customer` null) a code works for whoever sends
    it in evaluate's `promoCodes`; linked, it applies to its customer without being typed.
    """

    # No index of its own: promo_code_org_code leads with org_id.
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="promo_codes", db_index=False
    )
    # No index of its own: promo_code_promotion_id serves a promotion's codes in order.
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="codes", db_index=False)
    code = models.CharField(max_length=40)
    customer = models.ForeignKey(
        "wallets.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="promo_codes"
    )
    linked_on = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True, db_default=True)
    batch = models.ForeignKey(
        PromoCodeBatch, null=True, blank=True, on_delete=models.PROTECT, related_name="codes", db_index=False
    )
    created_on = models.DateTimeField(db_default=Now())

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["promotion", "id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "code"], name="promo_code_org_code"),
            models.CheckConstraint(condition=Q(code=Upper("code")), name="promo_code_upper_case"),
            models.CheckConstraint(
                condition=Q(customer__isnull=True) | Q(linked_on__isnull=False), name="promo_code_linked_on"
            ),
        ]
        indexes = [
            models.Index(fields=["promotion", "id"], name="promo_code_promotion_id"),
            models.Index(fields=["batch", "id"], name="promo_code_batch_id"),
        ]

    def __str__(self) -> str:
        return self.code
