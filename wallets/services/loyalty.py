"""Issuing loyalty promotions (v2 issue): enrolment and direct issue."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import LoyaltyProgram, LoyaltyPromotion
from promotions_site import metrics
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, Issual, LoyaltyEarnedPromotion


@dataclass
class LoyaltyIssueOutcome:
    """The customer's issual (enrolment) and, for a direct issue, the earn it created."""

    issual: Issual
    earned: LoyaltyEarnedPromotion | None
    enrolled: bool


def _issual_get_or_create(
    *, customer: Customer, program: LoyaltyProgram, loyalty_promotion: LoyaltyPromotion, source: str
) -> tuple[Issual, bool]:
    """The customer's one issual for the promotion, and whether this call created it.

    `INSERT ... ON CONFLICT DO NOTHING RETURNING` on `issual_unique_per_customer`: never a
    "does it exist?" read first, so a concurrent writer can only lose the insert, not duplicate it.
    """
    meta = Issual._meta
    columns = [
        meta.get_field(name).column
        for name in ("org", "customer", "program", "loyalty_promotion", "source", "created_at")
    ]
    conflict = [meta.get_field(name).column for name in ("customer", "loyalty_promotion")]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {meta.db_table} ({', '.join(columns)}) VALUES (%s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {meta.pk.column}",
            [customer.org_id, customer.pk, program.pk, loyalty_promotion.pk, source, timezone.now()],
        )
        created = cursor.fetchone() is not None
    return Issual.objects.get(customer=customer, loyalty_promotion=loyalty_promotion), created


def loyalty_promotion_issue(
    *,
    customer: Customer,
    program: LoyaltyProgram,
    loyalty_promotion: LoyaltyPromotion,
    source: str,
    actor: Actor,
) -> LoyaltyIssueOutcome:
    """Issue a loyalty promotion to a customer (`POST /v2/promotion/issue`).

    LOYALTY (direct issue): enrols the customer (one `Issual` per customer and promotion, created on
    the first issue, reused after) and creates one `LoyaltyEarnedPromotion` per call: not idempotent,
    as in Capillary, every call issues again until `max_issuance_per_customer` (-1 unlimited) earns
    exist. LOYALTY_EARNING (enrol and issue): enrols only; the earn comes later from the promotion's
    own criteria, so `earned` is None, the limit is not consulted and enrolling again returns the
    same issual.

    Errors (nothing written): 1101 the program is not the customer's org's; 8874 the promotion is
    not in that program; 8890 (answered as a warning) the promotion is inactive, not started or
    ended, or the customer already holds the limit. The customer row is locked before counting, so
    the limit holds under any concurrency.
    """
    org_id = customer.org_id
    _loyalty_issue_check(org_id=org_id, program=program, loyalty_promotion=loyalty_promotion)
    direct_issue = loyalty_promotion.type == LoyaltyPromotion.Type.LOYALTY

    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        limit = loyalty_promotion.max_issuance_per_customer
        if direct_issue and limit != -1:
            held = LoyaltyEarnedPromotion.objects.filter(
                customer=customer, loyalty_promotion=loyalty_promotion
            ).count()
            if held >= limit:
                raise PromotionError(ErrorCode.PROMOTION_NOT_ISSUED)
        issual, enrolled = _issual_get_or_create(
            customer=customer, program=program, loyalty_promotion=loyalty_promotion, source=source
        )
        earned = None
        if direct_issue:
            earned = LoyaltyEarnedPromotion.objects.create(
                org_id=org_id, issual=issual, customer=customer, loyalty_promotion=loyalty_promotion
            )
            metrics.issued_count(1, promotion_type="LOYALTY")
        audit_event_record(
            org=org_id,
            actor=actor,
            action="loyalty_promotion.issue" if direct_issue else "loyalty_promotion.enrol",
            object_type="LoyaltyPromotion",
            object_id=loyalty_promotion.pk,
            data={
                "customerId": customer.pk,
                "programId": program.pk,
                "issualId": issual.pk,
                "earnedId": earned.pk if earned else None,
                "enrolled": enrolled,
                "source": source,
            },
        )
    return LoyaltyIssueOutcome(issual=issual, earned=earned, enrolled=enrolled)


def _loyalty_issue_check(
    *, org_id: int, program: LoyaltyProgram, loyalty_promotion: LoyaltyPromotion
) -> None:
    """Refuse, before anything is written: 1101 another org's program; 8874 a promotion not in the
    program; 8890 a promotion inactive, not started or ended."""
    if program.org_id != org_id:
        raise PromotionError(ErrorCode.INVALID_PROGRAM_ID)
    if loyalty_promotion.org_id != org_id or loyalty_promotion.program_id != program.pk:
        raise PromotionError(ErrorCode.INVALID_LOYALTY_PROMOTION_ID)
    now = timezone.now()
    if not (loyalty_promotion.active and loyalty_promotion.start_date <= now < loyalty_promotion.end_date):
        raise PromotionError(ErrorCode.PROMOTION_NOT_ISSUED)
