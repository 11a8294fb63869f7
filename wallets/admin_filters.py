"""Admin list filters on the wallet's rows, shared by the admins built on the wallet (wallets, redemptions)."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters

from promotions_site.admin_scoping import sees_all_orgs, user_org_id
from wallets.models import Customer

_BIGINT_MAX = 2**63 - 1


class CustomerFilter(admin.SimpleListFilter):
    """The rows of one customer: `?customer=<customerId>`, the target of the links on a customer's page.

    It offers no list of customers (an org has millions): a customer is chosen from their page, or
    by searching; once chosen, the sidebar names them and "All" clears the choice. The changelist is
    already scoped to the user's org, so another org's customer id matches nothing.
    """

    title = "customer"
    parameter_name = "customer"

    def lookups(self, request, model_admin):
        value = self.value()
        if value is None:
            return []
        if not (value.isascii() and value.isdigit() and 0 < int(value) <= _BIGINT_MAX):
            raise IncorrectLookupParameters(f"customer must be a customer id, not {value!r}.")
        customers = Customer.objects.filter(pk=int(value))
        if not sees_all_orgs(request):
            customers = customers.filter(org_id=user_org_id(request))
        customer = customers.first()
        return [(value, str(customer) if customer else f"Customer {value} (not found)")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(customer_id=int(self.value()))
