"""Organizations, their API clients and staff, cart promotions, loyalty programs and the audit trail."""

from __future__ import annotations

import enum
import secrets
import time
import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q


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


class Organization(models.Model):
    """The tenant (`orgId`). Every other row belongs to exactly one organization."""

    id = models.PositiveIntegerField(primary_key=True, help_text="orgId, as clients know it.")
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    max_active_promotions = models.PositiveIntegerField(
        default=250, help_text="Active, unexpired cart promotions allowed at once (705 beyond)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


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

    class Meta:
        ordering = ["promotion", "level", "kpi"]
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "level", "kpi"], name="restriction_unique_level_kpi"
            ),
            models.CheckConstraint(condition=Q(limit__gt=0), name="restriction_limit_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.level} {self.kpi} <= {self.limit}"


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

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="audit_events")
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
