"""Creating customers (the customers API)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from promotions.audit import Actor, audit_event_record
from promotions.models import Organization
from promotions_site.errors import ErrorCode, PromotionError
from wallets.models import Customer

# The identifier each unique constraint guards: its API name and its model field.
_CUSTOMER_IDENTIFIER_CONSTRAINTS = {
    "customer_mobile_unique_per_org": ("mobile", "mobile"),
    "customer_email_unique_per_org": ("email", "email"),
    "customer_external_id_unique_per_org": ("externalId", "external_id"),
}


def _customer_constraint(error: IntegrityError) -> str | None:
    """The violated constraint: PostgreSQL names it; SQLite names the columns (`wallets_customer.mobile`)."""
    name = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
    if name:
        return name
    text = str(error)
    for constraint, (_, field_name) in _CUSTOMER_IDENTIFIER_CONSTRAINTS.items():
        if text.endswith(f"wallets_customer.{field_name}"):
            return constraint
    return None


def customer_create(
    *,
    org: Organization,
    mobile: str | None = None,
    email: str | None = None,
    external_id: str | None = None,
    first_name: str = "",
    last_name: str = "",
    source: str = "INSTORE",
    actor: Actor,
) -> Customer:
    """Create a customer of `org`, findable by at least one identifier.

    Identifiers come validated and in their stored spelling (`wallets.identifiers`: mobile digits
    without `+`, email lower-case). Errors: 400 no identifier at all; 409 (CONFLICT) an identifier
    is already another customer's in this org, the message naming it. Uniqueness is the database's
    (`customer_*_unique_per_org`): the insert runs and its IntegrityError is the answer, so two
    concurrent creates with one identifier give exactly one customer. The audit event names the
    identifiers given, not their values.
    """
    if not (mobile or email or external_id):
        raise PromotionError(
            ErrorCode.BAD_REQUEST, "At least one of mobile, email or externalId is required."
        )
    customer = Customer(
        org=org,
        mobile=mobile or None,
        email=email or None,
        external_id=external_id or None,
        first_name=first_name,
        last_name=last_name,
        source=source,
    )
    try:
        with transaction.atomic():
            customer.save(force_insert=True)
            audit_event_record(
                org=org,
                actor=actor,
                action="customer.create",
                object_type="Customer",
                object_id=customer.pk,
                data={
                    "identifiers": [
                        name
                        for name, value in (("mobile", mobile), ("email", email), ("externalId", external_id))
                        if value
                    ],
                    "source": source,
                },
            )
    except IntegrityError as exc:
        conflict = _identifier_conflict(exc, customer)
        if conflict is None:
            raise
        raise conflict from exc
    return customer


def _identifier_conflict(error: IntegrityError, customer: Customer) -> PromotionError | None:
    """The 409 naming the identifier another customer of the org already has, or None when the
    insert failed for another reason."""
    constraint = _customer_constraint(error)
    if constraint not in _CUSTOMER_IDENTIFIER_CONSTRAINTS:
        return None
    name, field_name = _CUSTOMER_IDENTIFIER_CONSTRAINTS[constraint]
    return PromotionError(
        ErrorCode.CONFLICT,
        f"{name} {getattr(customer, field_name)} is already used by another customer of this org.",
    )
