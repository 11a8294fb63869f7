"""Writes to customers' wallets: issuing cart promotions (issueBulk)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from promotions.models import Organization, Promotion, PromotionType
from promotions.services import Actor, audit_event_record
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion
from wallets.validity import issued_valid_till

ISSUABLE_TYPES = {PromotionType.CUSTOMER, PromotionType.EARNING}
INSERT_BATCH = 5000


@dataclass
class IssueOutcome:
    """The instances a bulk issue produced or found (by customer id) and the customers it refused."""

    issued: dict[int, EarnedPromotion] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    created: int = 0


def promotion_check_running(*, promotion: Promotion, org: Organization, now=None) -> None:
    """Refuse a promotion that cannot be given out now.

    Errors: 706 ended; 709 inactive or not started; 705 the org is over its cap of active,
    unexpired promotions (deactivate some before issuing more, as Capillary documents).
    """
    now = now or timezone.now()
    if promotion.end_date <= now:
        raise PromotionError(ErrorCode.PROMOTION_EXPIRED)
    if not promotion.active or promotion.start_date > now:
        raise PromotionError(ErrorCode.PROMOTION_NOT_RUNNING)
    active = Promotion.objects.for_org(org).filter(active=True, end_date__gt=now).count()
    if active > org.max_active_promotions:
        raise PromotionError(ErrorCode.MAX_ACTIVE_PROMOTIONS_EXCEEDED)


def earned_promotions_issue(
    *, promotion: Promotion, customer_ids: list[int], context_id: str, actor: Actor
) -> IssueOutcome:
    """Issue `promotion` to each customer (issueBulk), once per (promotion, customer, contextId).

    Request-level errors (nothing written): 707 the type is not issuable (only CUSTOMER and
    EARNING are); 706, 709, 705 from `promotion_check_running`.
    Per-customer errors (reported next to the successes): 1007 no such customer in the org;
    713 the contextId is already used by an instance earned with another earnedFromType;
    708 the customer already holds `maxIssuancePerCustomer` issued instances.

    A retry with the same contextId returns the instances the first call created. The customer
    rows are locked (in id order, so concurrent issues never deadlock) before counting, so the
    per-customer limit holds under any concurrency.
    """
    org = promotion.org
    if promotion.type not in ISSUABLE_TYPES:
        raise PromotionError(ErrorCode.UNSUPPORTED_PROMOTION_TYPE)
    now = timezone.now()
    promotion_check_running(promotion=promotion, org=org, now=now)

    wanted = sorted(set(customer_ids))
    outcome = IssueOutcome()
    with transaction.atomic():
        known = list(
            Customer.objects.for_org(org)
            .filter(pk__in=wanted)
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        known_set = set(known)
        existing = {
            instance.customer_id: instance
            for instance in EarnedPromotion.objects.filter(
                promotion=promotion, customer_id__in=known, earned_from_id=context_id, seq=1
            )
        }
        limit = promotion.max_issuance_per_customer
        held: dict[int, int] = {}
        if limit != -1:
            held = dict(
                EarnedPromotion.objects.filter(
                    promotion=promotion, customer_id__in=known, kind=EarnedPromotion.Kind.ISSUED
                )
                .exclude(status=EarnedPromotion.Status.REVOKED)
                .values_list("customer_id")
                .annotate(n=Count("id"))
                .values_list("customer_id", "n")
            )
        valid_till = issued_valid_till(promotion)
        to_create = []
        for customer_id in wanted:
            if customer_id not in known_set:
                outcome.errors.append(
                    _error(customer_id, ErrorCode.CUSTOMER_FETCH_FAILED, "Customer not found.")
                )
            elif (instance := existing.get(customer_id)) is not None:
                if instance.earned_from_type != EarnedPromotion.EarnedFromType.BULK_ISSUE:
                    outcome.errors.append(_error(customer_id, ErrorCode.EARNED_FROM_TYPE_CHANGED))
                else:
                    outcome.issued[customer_id] = instance
            elif limit != -1 and held.get(customer_id, 0) >= limit:
                outcome.errors.append(
                    _error(
                        customer_id,
                        ErrorCode.MAX_EARN_PER_CUSTOMER_EXCEEDED,
                        "Exceeded the max issuance per customer limit.",
                    )
                )
            else:
                instance = EarnedPromotion(
                    org=org,
                    customer_id=customer_id,
                    promotion=promotion,
                    kind=EarnedPromotion.Kind.ISSUED,
                    earned_from_type=EarnedPromotion.EarnedFromType.BULK_ISSUE,
                    earned_from_id=context_id,
                    seq=1,
                    event_time=now,
                    valid_till=valid_till,
                    event_details={},
                )
                to_create.append(instance)
                outcome.issued[customer_id] = instance
        EarnedPromotion.objects.bulk_create(to_create, batch_size=INSERT_BATCH)
        outcome.created = len(to_create)
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.issue_bulk",
            object_type="Promotion",
            object_id=promotion.pk,
            data={
                "contextId": context_id,
                "requested": len(wanted),
                "created": outcome.created,
                "replayed": len(outcome.issued) - outcome.created,
                "failed": len(outcome.errors),
            },
        )
    return outcome


def _error(customer_id: int, code: ErrorCode, message: str | None = None) -> dict:
    return {"customerId": customer_id, "code": int(code), "message": message or code.message}
