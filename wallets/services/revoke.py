"""Revoking earned and issued instances (revokeEarn)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Promotion, PromotionType
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion


@dataclass
class RevokeRequest:
    """One entry of a revokeEarn body: a promotion id and the earn ids to revoke under it."""

    promotion_id: str
    earn_ids: list[str]


@dataclass
class RevokeOutcome:
    """The entries revoked (promotion id -> earn ids, in request order) and the entries refused."""

    revoked: dict[str, list[str]] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    changed: int = 0


def earned_promotions_revoke(
    *, customer: Customer, details: list[RevokeRequest], actor: Actor
) -> RevokeOutcome:
    """Revoke the customer's earned (or issued) instances listed per promotion (revokeEarn).

    Each entry is all or nothing, and is refused with one of (in this order): 404 no such
    promotion in the org; 730 a POS or CODE promotion; 731 an earn id that is not an instance of
    this promotion held by this customer (unknown, another customer's or promotion's, malformed);
    729 an instance already redeemed (status REDEEMED or redemptions recorded). The other entries
    are revoked. When every entry is refused, nothing is written and the PromotionError carries
    every entry's error, with the HTTP status of the first.

    Revoking an instance already REVOKED changes nothing and reports it as revoked (a retry is
    safe). The customer row is locked first, then the instances in id order, so a revoke and an
    issue, earn or redemption for the same customer never interleave. One UPDATE sets the status
    and `status_changed_at`; one audit event records the request. A revoked instance no longer
    counts towards maxIssuancePerCustomer / maxEarningPerCustomer (see earned_promotions_issue).
    """
    org = customer.org
    now = timezone.now()
    outcome = RevokeOutcome()
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        promotions = Promotion.objects.for_org(org).in_bulk([d.promotion_id for d in details])
        instances = _instances_lock(customer, details)
        to_revoke: list[str] = []
        for entry in details:
            earn_ids = list(dict.fromkeys(entry.earn_ids))
            refusal = _revoke_refusal(promotions.get(entry.promotion_id), earn_ids, instances)
            if refusal is not None:
                code, message = refusal
                outcome.errors.append(
                    {"promotionId": entry.promotion_id, "code": int(code), "message": message}
                )
                continue
            outcome.revoked[entry.promotion_id] = earn_ids
            to_revoke.extend(earn_ids)
        if not outcome.revoked:
            first = outcome.errors[0]
            raise PromotionError(ErrorCode(first["code"]), first["message"], errors=outcome.errors)
        outcome.changed = (
            EarnedPromotion.objects.filter(pk__in=to_revoke)
            .exclude(status=EarnedPromotion.Status.REVOKED)
            .update(status=EarnedPromotion.Status.REVOKED, status_changed_at=now)
        )
        audit_event_record(
            org=org,
            actor=actor,
            action="promotion.revoke_earn",
            object_type="Customer",
            object_id=customer.pk,
            data={"revoked": outcome.revoked, "changed": outcome.changed, "errors": outcome.errors},
        )
    return outcome


def _instances_lock(customer: Customer, details: list[RevokeRequest]) -> dict[str, EarnedPromotion]:
    """Lock the customer's instances among the earn ids, in id order; id -> instance (what a refusal reads)."""
    return {
        instance.pk: instance
        for instance in EarnedPromotion.objects.filter(
            customer=customer, pk__in={i for d in details for i in d.earn_ids}
        )
        .order_by("pk")
        .select_for_update()
        .only("pk", "promotion_id", "status", "redemption_count")
    }


def _revoke_refusal(
    promotion: Promotion | None, earn_ids: list[str], instances: dict[str, EarnedPromotion]
) -> tuple[ErrorCode, str] | None:
    """Why one revokeEarn entry cannot be revoked, or None when it can."""
    if promotion is None:
        return ErrorCode.NOT_FOUND, "Passed promotion is not found"
    if promotion.type not in PromotionType.WALLET_TYPES:
        return ErrorCode.EARN_REVOKE_NOT_SUPPORTED, ErrorCode.EARN_REVOKE_NOT_SUPPORTED.message
    invalid = [i for i in earn_ids if i not in instances or instances[i].promotion_id != promotion.pk]
    if invalid:
        return ErrorCode.EARN_ID_INVALID, f"Invalid earn id: {_id_list(invalid)}"
    redeemed = [
        i
        for i in earn_ids
        if instances[i].status == EarnedPromotion.Status.REDEEMED or instances[i].redemption_count > 0
    ]
    if redeemed:
        return ErrorCode.EARN_ALREADY_REDEEMED, f"Earn already redeemed: {_id_list(redeemed)}"
    return None


def _id_list(ids: list[str], shown: int = 10) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more
