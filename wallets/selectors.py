"""Reads of customers and their wallets, scoped to the caller's org."""

from __future__ import annotations

from promotions.models import Organization
from wallets.identifiers import email_normalize, mobile_normalize
from wallets.models import Customer

# --- Customers by identifier ---------------------------------------------------------------------


def customer_get_by_identifier(
    *, org: Organization, identifier_name: str, identifier_value: str
) -> Customer | None:
    """The org's customer with this identifier (`mobile`, `email`, `externalId` or `id`), else None.

    Values are compared in their stored spelling (mobile digits without `+`, email lower-case); a value
    that cannot be such an identifier (an `id` that is not a number) finds nobody. Another org's
    customer is None, exactly like a missing one. Callers turn None into their API's not-found answer.
    """
    lookups = Customer.objects.for_org(org).select_related("org")
    value = identifier_value.strip()
    if identifier_name == "id":
        if not (value.isascii() and value.isdigit() and 0 < int(value) < 2**63):
            return None
        return lookups.filter(pk=int(value)).first()
    if identifier_name == "mobile":
        mobile = mobile_normalize(value)
        return lookups.filter(mobile=mobile).first() if mobile else None
    if identifier_name == "email":
        return lookups.filter(email=email_normalize(value)).first() if value else None
    if identifier_name == "externalId":
        return lookups.filter(external_id=value).first() if value else None
    raise ValueError(f"unknown identifier name: {identifier_name}")
