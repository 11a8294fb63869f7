"""Linking a promo code to a customer (`POST /promotions/code/link`, docs/code-link.md)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization, PromoCode
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer

_BIGINT_MAX = 2**63 - 1


class PromoCodeUnknown(PromotionError):
    """The org has no such code (or it is of the other mode): 1001, and a failed look-up to count."""

    def __init__(self):
        super().__init__(ErrorCode.INVALID_PROMO_CODE, "Promo code not found.")


def promo_code_link(
    *, org: Organization, customer_id: int, code: str, mode: str, actor: Actor, now: dt.datetime | None = None
) -> PromoCode:
    """Link the org's promo code `code` (normalized: upper-case) to the customer; the code, linked.

    Refused, in this order, with nothing written: 1001 (`PromoCodeUnknown`) the org has no such
    code, or its promotion is of the other `mode` (another org's code is unknown, as a missing one);
    1006 the org has no such customer; 1001 the code is deactivated; 1002 its promotion has ended;
    709 its promotion is deactivated; 1005 (409) the code is linked to another customer (linking is
    permanent, as in Capillary). A code already linked to this customer is answered unchanged (a
    retry is safe; no second audit event). A code may be linked before its promotion starts.

    The code's row is locked (`SELECT ... FOR UPDATE`) and the link is one conditional UPDATE
    (`customer_id IS NULL`), so of two concurrent links of one code to two customers exactly one
    wins and the other gets 1005. One audit event `promo_code.link` records the link.
    """
    now = now or timezone.now()
    with transaction.atomic():
        row = (
            PromoCode.objects.filter(org=org, code=code if "\x00" not in code else "")
            .select_related("promotion")
            .select_for_update(of=("self",))
            .first()
        )
        if row is None or row.promotion.mode != mode:
            raise PromoCodeUnknown()
        customer_exists = (
            0 < customer_id <= _BIGINT_MAX and Customer.objects.filter(org=org, pk=customer_id).exists()
        )
        if not customer_exists:
            raise PromotionError(ErrorCode.INVALID_CUSTOMER_IDENTIFIER, "Customer not found.")
        if not row.active:
            raise PromotionError(ErrorCode.INVALID_PROMO_CODE, "Promo code is deactivated.")
        if row.promotion.end_date <= now:
            raise PromotionError(ErrorCode.PROMO_CODE_EXPIRED, "Promo code has expired: its promotion ended.")
        if not row.promotion.active:
            raise PromotionError(ErrorCode.PROMOTION_NOT_RUNNING, "The promotion of this code is not active.")
        if row.customer_id == customer_id:
            return row
        if row.customer_id is None:
            linked = PromoCode.objects.filter(pk=row.pk, customer__isnull=True).update(
                customer_id=customer_id, linked_on=now
            )
            if linked:
                audit_event_record(
                    org=org,
                    actor=actor,
                    action="promo_code.link",
                    object_type="PromoCode",
                    object_id=row.pk,
                    data={"customerId": customer_id, "promotionId": row.promotion_id},
                )
                row.customer_id, row.linked_on = customer_id, now
                return row
            row.refresh_from_db(fields=["customer", "linked_on"])
            if row.customer_id == customer_id:
                return row
        raise PromotionError(ErrorCode.PROMO_CODE_LINKED_TO_ANOTHER_CUSTOMER)
