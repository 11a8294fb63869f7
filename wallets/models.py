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

    An EARNING promotion issued to a customer is `locked` (the wallet's LOCKED: issued, not yet
    earned) and cannot be redeemed. An earn of the promotion unlocks it rather than creating a second
    instance: `unlocked_from_type` and `unlocked_from_id` then name that earn (its idempotency key),
    while `earned_from_type`/`earned_from_id` keep the issue's, so a retried issue still finds it.
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

    # Every index of this table is paid for by every row a bulk issue writes: each is kept for a query
    # the app runs (listed in docs/architecture.md, "The earned promotions' indexes"; checked by
    # tests/wallets/test_earned_promotion_indexes.py). None on a foreign key alone: the indexes
    # below lead with each of them, and serve the lookups and the PROTECT checks by it.
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    org = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="earned_promotions", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="earned_promotions", db_index=False
    )
    # A single-column index on the promotion would also mislead the planner: with statistics that
    # predate a large issuance, it takes the promotion as nearly empty and reads all of it for every
    # customer probed.
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
    locked = models.BooleanField(
        default=False, help_text="Issued of an EARNING promotion and not yet earned: not redeemable."
    )
    unlocked_from_type = models.CharField(
        max_length=10, choices=EarnedFromType.choices, blank=True, default=""
    )
    unlocked_from_id = models.CharField(
        max_length=255, blank=True, default="", help_text="The earnedFromId of the earn that unlocked it."
    )

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
            # Only an issued instance is locked or unlocked, and a locked one was never unlocked.
            models.CheckConstraint(
                condition=Q(locked=False, unlocked_from_id="")
                | Q(kind="ISSUED", locked=True, unlocked_from_id="")
                | (Q(kind="ISSUED", locked=False) & ~Q(unlocked_from_id="")),
                name="earned_promotion_lock_issued_only",
            ),
        ]
        # With the primary key and the idempotency key (which serves every lookup by promotion and
        # customer), the table's only indexes.
        indexes = [
            # A customer's wallet, its usable instances (redemption, evaluation); the customer filter.
            models.Index(fields=["customer", "status", "valid_till"], name="earned_customer_status_till"),
            # The expiry job's due instances.
            models.Index(fields=["status", "valid_till"], name="earned_status_valid_till"),
            # The admin list's default order (Meta.ordering) within the org.
            models.Index(fields=["org", "valid_till", "id"], name="earned_org_valid_till"),
        ]

    def __str__(self) -> str:
        return f"Earned promotion {self.id} (promotion {self.promotion_id}, customer {self.customer_id})"

    @property
    def unlocked(self) -> bool:
        """Issued, then earned: the earn APIs answer it as the earn's instance."""
        return bool(self.unlocked_from_id)

    @property
    def earn_from_type(self) -> str:
        """How the instance was earned: the unlocking earn's type, else its own."""
        return self.unlocked_from_type or self.earned_from_type

    @property
    def earn_from_id(self) -> str:
        """The earnedFromId the earn APIs answer: the unlocking earn's, else its own."""
        return self.unlocked_from_id or self.earned_from_id


class PromotionActivation(models.Model):
    """A customer's opt-in to a promotion that requires it (`customerActivationRequired`).

    Per customer (`earned_promotion` empty: every instance of the promotion the customer holds, now
    or later) for a DISCOUNT promotion, or per earned instance (`earnId`) for a PAYMENT_VOUCHER one.
    The row exists while the promotion (or instance) is activated; deactivating deletes it. The two
    unique constraints make an activation repeated, or sent twice at once, one row.
    """

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="promotion_activations")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="promotion_activations")
    promotion = models.ForeignKey(Promotion, on_delete=models.PROTECT, related_name="activations")
    earned_promotion = models.ForeignKey(
        EarnedPromotion, null=True, blank=True, on_delete=models.CASCADE, related_name="activations"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["customer", "promotion", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "promotion"],
                condition=Q(earned_promotion__isnull=True),
                name="activation_unique_per_customer",
            ),
            models.UniqueConstraint(
                fields=["earned_promotion"],
                condition=Q(earned_promotion__isnull=False),
                name="activation_unique_per_instance",
            ),
        ]
        # A customer's activations (the wallet, an evaluation): the customer, then the promotion.
        indexes = [models.Index(fields=["customer", "promotion"], name="activation_customer_promotion")]

    def __str__(self) -> str:
        target = self.earned_promotion_id or self.promotion_id
        return f"{target} activated by {self.customer_id}"


class PromotionTally(models.Model):
    """How many instances of a promotion were ever issued and earned: kept by the services that
    create them (one upsert per write, in the same transaction), so the dashboard reads one row per
    promotion instead of counting the earned promotions table. Revoking or expiring an instance
    does not change it (the dashboard counts instances given, whatever became of them)."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="promotion_tallies")
    promotion = models.OneToOneField(Promotion, on_delete=models.CASCADE, related_name="tally")
    issued = models.PositiveBigIntegerField(default=0)
    earned = models.PositiveBigIntegerField(default=0)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["promotion"]

    def __str__(self) -> str:
        return f"{self.promotion_id}: {self.issued} issued, {self.earned} earned"


class LoyaltyRecord(models.Model):
    """What the v2 issue API's two rows share: creation time, org scoping, id order."""

    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["id"]


class Issual(LoyaltyRecord):
    """A customer's enrolment into a loyalty promotion (`issualId`), created by the v2 issue API."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="issuals")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="issuals")
    program = models.ForeignKey(LoyaltyProgram, on_delete=models.PROTECT, related_name="issuals")
    loyalty_promotion = models.ForeignKey(LoyaltyPromotion, on_delete=models.PROTECT, related_name="issuals")
    source = models.CharField(max_length=20)

    class Meta(LoyaltyRecord.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "loyalty_promotion"], name="issual_unique_per_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"Loyalty issual {self.id}"


class LoyaltyEarnedPromotion(LoyaltyRecord):
    """One issue (backend "earn") of a loyalty promotion to an enrolled customer (`earnedId`)."""

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="loyalty_earned_promotions")
    issual = models.ForeignKey(Issual, on_delete=models.PROTECT, related_name="earned")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="loyalty_earned_promotions")
    loyalty_promotion = models.ForeignKey(LoyaltyPromotion, on_delete=models.PROTECT, related_name="earned")

    def __str__(self) -> str:
        return f"Loyalty earn {self.id}"


class BulkJob(models.Model):
    """A large issue or earn run in the background, in chunks any number of workers can take.

    Its input is resolved once into BulkJobItem rows (one per input line); a chunk is a range of item
    ids, and processing a chunk only touches PENDING items, through the same idempotent services as
    the API, so a chunk delivered twice (a crashed worker) creates nothing twice.
    """

    class Kind(models.TextChoices):
        ISSUE = "ISSUE", "Issue a promotion"
        EARN = "EARN", "Bulk earn"
        EXPORT = "EXPORT", "Export redemptions"

    class Status(models.TextChoices):
        PENDING = "PENDING"
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"

    org = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="bulk_jobs")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    promotion = models.ForeignKey(
        Promotion, null=True, blank=True, on_delete=models.PROTECT, related_name="bulk_jobs"
    )
    params = models.JSONField(default=dict, blank=True, help_text="contextId; for earn: the entries.")
    identifier_type = models.CharField(max_length=10, default="id")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    input_file = models.FileField(upload_to="bulk_jobs/%Y/%m/", blank=True)
    input_name = models.CharField(max_length=255, blank=True, default="")
    error = models.TextField(blank=True, default="")
    output_file = models.FileField(
        upload_to="bulk_jobs/exports/%Y/%m/",
        blank=True,
        help_text="An export's CSV, offered for download once the job is DONE.",
    )
    idempotency_key = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="The key of the request that created the job (the admin's confirm form): the same "
        "request sent twice finds this job instead of creating another.",
    )
    created_by = models.ForeignKey(
        "promotions.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="bulk_jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrgScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("run_bulk_job", "Can issue and bulk-earn promotions")]
        constraints = [
            models.CheckConstraint(
                condition=Q(done__lte=models.F("total")) & Q(failed__lte=models.F("total")),
                name="bulk_job_progress_within_total",
            ),
            models.UniqueConstraint(
                fields=["org", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="bulk_job_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, self.processed * 100 // self.total)


class BulkJobItem(models.Model):
    """One input line of a bulk job and what became of it."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        DONE = "DONE"
        FAILED = "FAILED"

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    line = models.PositiveIntegerField(
        help_text="The line of the input it is on, from 1 (values on one line of a pasted list share it)."
    )
    identifier = models.CharField(max_length=254)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)
    code = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["job", "id"]
        # `line` is not unique: the values of one line of a pasted list ("1, 2") share it.
        indexes = [models.Index(fields=["job", "status", "id"], name="bulk_job_item_pending")]

    def __str__(self) -> str:
        return f"Job {self.job_id}, line {self.line}: {self.identifier}"
