"""A customer's opt-in to a promotion that requires it (`customerActivationRequired`): the customer
level of `POST /promotions/{promotionId}/activate` and `/deactivate`."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils import timezone

from promotions.audit import Actor, audit_event_record
from promotions.models import Promotion, PromotionMode, PromotionType
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer, EarnedPromotion, PromotionActivation

# Whether a pending cart of the customer holds the promotion (or the instance): the redemptions app,
# which owns evaluations and their reservations, registers its check here (cart locking); with none
# registered, no cart is pending. A check takes (customer, promotion, earned instance or None).
PendingCartCheck = Callable[[Customer, Promotion, EarnedPromotion | None], bool]
_pending_cart_checks: list[PendingCartCheck] = []


def pending_cart_check_register(check: PendingCartCheck) -> None:
    if check not in _pending_cart_checks:
        _pending_cart_checks.append(check)


def pending_cart_check_unregister(check: PendingCartCheck) -> None:
    if check in _pending_cart_checks:
        _pending_cart_checks.remove(check)


def promotion_activation_set(
    *,
    customer: Customer,
    promotion: Promotion,
    earn_id: str | None,
    activate: bool,
    actor: Actor,
) -> bool:
    """Activate (opt in) or deactivate (opt out) `promotion` for `customer`; True when it changed.

    A DISCOUNT promotion is activated per customer (`earn_id` must be absent: 400) and the
    activation covers every instance the customer holds, now or later; a PAYMENT_VOUCHER promotion
    per instance (`earn_id` required: 400). Errors, in this order (nothing written): 707 a POS or
    CODE promotion; 736 a promotion that does not require activation; 706 the promotion has ended;
    400 `earnId` missing or not allowed for the mode; 731 `earn_id` is not an instance of this
    promotion held by this customer; 736 the instance is no longer ACTIVE (redeemed, revoked,
    expired); 737 (409) deactivating while a pending cart of the customer holds it.

    Repeating a call changes nothing and answers as the first did: activating an activated
    promotion (or deactivating one not activated) is a success that writes no activation; the audit
    event records every call, with `changed` false for a repeat. The customer row is locked first,
    as issuing, earning and redeeming do, so an activation and a redemption of the same customer
    never interleave.
    """
    verb = "activate" if activate else "deactivate"
    if promotion.type not in PromotionType.WALLET_TYPES:
        raise PromotionError(
            ErrorCode.UNSUPPORTED_PROMOTION_TYPE, f"Cannot {verb} preferences for POS or CODE promotions"
        )
    if not promotion.customer_activation_required:
        raise PromotionError(
            ErrorCode.UNSUPPORTED_PREFERENCE_CHANGE,
            f"{ErrorCode.UNSUPPORTED_PREFERENCE_CHANGE.message} The promotion does not require "
            "customer activation (customerActivationRequired is false).",
        )
    if promotion.end_date <= timezone.now():
        raise PromotionError(ErrorCode.PROMOTION_EXPIRED)
    per_instance = promotion.mode == PromotionMode.PAYMENT_VOUCHER
    if per_instance and not earn_id:
        raise PromotionError(ErrorCode.BAD_REQUEST, "earnId is required for PAYMENT_VOUCHER promotions.")
    if not per_instance and earn_id:
        raise PromotionError(ErrorCode.BAD_REQUEST, "earnId is not supported for DISCOUNT promotions.")
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").get()
        instance = _instance_get(customer, promotion, earn_id) if per_instance else None
        if activate:
            changed = _activation_create(customer, promotion, instance)
        else:
            if any(check(customer, promotion, instance) for check in _pending_cart_checks):
                raise PromotionError(ErrorCode.PREFERENCE_CHANGE_PENDING_CART)
            activations = PromotionActivation.objects.filter(
                customer=customer, promotion=promotion, earned_promotion=instance
            )
            changed = activations.delete()[0] > 0
        audit_event_record(
            org=customer.org,
            actor=actor,
            action=f"promotion.customer_{verb}",
            object_type="Promotion",
            object_id=promotion.pk,
            data={"customerId": customer.pk, "earnId": instance.pk if instance else None, "changed": changed},
        )
    return changed


def _instance_get(customer: Customer, promotion: Promotion, earn_id: str) -> EarnedPromotion:
    """The customer's instance `earn_id` of `promotion`, locked; 731 when it is not one, 736 when it is
    no longer ACTIVE."""
    instance = (
        EarnedPromotion.objects.select_for_update()
        .filter(pk=earn_id, customer=customer, promotion=promotion)
        .only("pk", "status", "valid_till")
        .first()
        if "\x00" not in earn_id
        else None
    )
    if instance is None:
        raise PromotionError(ErrorCode.EARN_ID_INVALID, f"Invalid earn id: {earn_id[:64]}")
    status = instance.status
    if status == EarnedPromotion.Status.ACTIVE and instance.valid_till <= timezone.now():
        status = EarnedPromotion.Status.EXPIRED
    if status != EarnedPromotion.Status.ACTIVE:
        raise PromotionError(
            ErrorCode.UNSUPPORTED_PREFERENCE_CHANGE,
            f"{ErrorCode.UNSUPPORTED_PREFERENCE_CHANGE.message} Earned promotion {instance.pk} is {status}.",
        )
    return instance


def _activation_create(customer: Customer, promotion: Promotion, instance: EarnedPromotion | None) -> bool:
    """Insert the activation; False when it exists (the unique constraints decide, in a savepoint)."""
    try:
        with transaction.atomic():
            PromotionActivation.objects.create(
                org_id=customer.org_id, customer=customer, promotion=promotion, earned_promotion=instance
            )
    except IntegrityError:
        return False
    return True
