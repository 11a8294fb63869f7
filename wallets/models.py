"""Customers and what sits in their wallets: earned (issued) cart promotions and loyalty issuals."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from promotions.models import (
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    OrgScopedQuerySet,
    Promotion,
    new_object_id,
)


class Customer(models.Model):
    """A customer (`customerId`) with identifiers unique within the org."""

    class IdentifierType(models.TextChoices):
        ID = "id"
        MOBILE = "mobile"
        EMAIL = "email"
        EXTERNAL_ID = "externalId"

    id = models.BigAutoField(primary_key=True, help_text="customerId")
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="customers")
    mobile = models.CharField(max_length=20, null=True, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True)
    external_id = models.CharField(max_length=100, null=True, blank=True)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=20, blank=True, default="INSTORE")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "mobile"],
                condition=Q(mobile__isnull=False),
                name="customer_mobile_unique_per_org",
            ),
            models.UniqueConstraint(
                fields=["org", "email"],
                condition=Q(email__isnull=False),
                name="customer_email_unique_per_org",
            ),
            models.UniqueConstraint(
                fields=["org", "external_id"],
                condition=Q(external_id__isnull=False),
                name="customer_external_id_unique_per_org",
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name or self.mobile or self.email or self.external_id or 'customer'} ({self.id})"


class EarnedPromotion(models.Model):
    """One instance of a cart promotion in a customer's wallet, issued (issueBulk) or earned (earn APIs).

    The idempotency key (promotion, customer, earned_from_id, seq) makes a retried issueBulk (same
    contextId) or earn (same earnedFromId) find the instances it created instead of creating more;
    `seq` numbers the `earnCount` instances of one earn.
    """

    class Kind(models.TextChoices):
        ISSUED = "ISSUED"
        EARNED = "EARNED"

    class EarnedFromType(models.TextChoices):
        BULK_ISSUE = "BULK_ISSUE"
        ACTIVITY = "ACTIVITY"
        MILESTONE = "MILESTONE"
        REWARD = "REWARD"

    class Status(models.TextChoices):
        ACTIVE = "ACTIVE"
        REDEEMED = "REDEEMED"
        EXPIRED = "EXPIRED"
        REVOKED = "REVOKED"

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="earned_promotions")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="earned_promotions")
    # No index of its own: the composite indexes below lead with the promotion and serve its lookups.
    # A single-column one would also mislead the planner: with statistics that predate a large
    # issuance, it takes the promotion as nearly empty and reads all of it for every customer probed.
    promotion = models.ForeignKey(
        Promotion, on_delete=models.PROTECT, related_name="earned_promotions", db_index=False
    )
    kind = models.CharField(max_length=6, choices=Kind.choices)
    earned_from_type = models.CharField(max_length=10, choices=EarnedFromType.choices)
    earned_from_id = models.CharField(max_length=255)
    seq = models.PositiveSmallIntegerField(default=1)
    event_time = models.DateTimeField()
    event_details = models.JSONField(default=dict, blank=True)
    valid_till = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    redemption_count = models.PositiveIntegerField(default=0)
    transaction_count = models.PositiveIntegerField(default=0)
    discount_total = models.DecimalField(max_digits=18, decimal_places=6, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["valid_till", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["promotion", "customer", "earned_from_id", "seq"],
                name="earned_promotion_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(seq__gte=1), name="earned_promotion_seq_positive"),
            models.CheckConstraint(
                condition=Q(discount_total__gte=0), name="earned_promotion_discount_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "status", "valid_till"], name="earned_customer_status_till"),
            models.Index(fields=["promotion", "customer", "kind"], name="earned_promotion_customer"),
            models.Index(fields=["status", "valid_till"], name="earned_status_valid_till"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.promotion_id} for {self.customer_id})"


class Issual(models.Model):
    """A customer's enrolment into a loyalty promotion (`issualId`), created by the v2 issue API."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="issuals")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="issuals")
    program = models.ForeignKey(LoyaltyProgram, on_delete=models.PROTECT, related_name="issuals")
    loyalty_promotion = models.ForeignKey(LoyaltyPromotion, on_delete=models.PROTECT, related_name="issuals")
    source = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "loyalty_promotion"], name="issual_unique_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"issual {self.id}"


class LoyaltyEarnedPromotion(models.Model):
    """One issue (backend "earn") of a loyalty promotion to an enrolled customer (`earnedId`)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="loyalty_earned_promotions")
    issual = models.ForeignKey(Issual, on_delete=models.PROTECT, related_name="earned")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="loyalty_earned_promotions")
    loyalty_promotion = models.ForeignKey(LoyaltyPromotion, on_delete=models.PROTECT, related_name="earned")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"loyalty earn {self.id}"
