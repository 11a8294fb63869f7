from django.contrib import admin
from django.db.models import Count, Q

from promotions_site.admin_filters import CustomerFilter
from promotions_site.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion, Issual, LoyaltyEarnedPromotion
from wallets.selectors import wallet_get

WALLET_ROWS = 50  # the customer page shows this many earned promotions; a link leads to all of them


@admin.register(Customer)
class CustomerAdmin(OrgScopedAdmin):
    list_display = ["id", "first_name", "last_name", "mobile", "email", "external_id", "source", "created_at"]
    list_filter = ["source"]
    search_fields = ["=id", "mobile", "email", "external_id", "first_name", "last_name"]
    show_full_result_count = False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        """The customer's page also shows their wallet (as the wallet API reads it) and redemptions."""
        if obj is not None and obj.pk:
            entries = wallet_get(customer=obj, limit=WALLET_ROWS + 1)
            context["wallet"] = entries[:WALLET_ROWS]
            context["wallet_has_more"] = len(entries) > WALLET_ROWS
            context["redemptions"] = obj.redemptions.aggregate(
                total=Count("id"), reversed=Count("id", filter=Q(reversal__isnull=False))
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(EarnedPromotion)
class EarnedPromotionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = [
        "id", "customer_id", "promotion", "kind", "earned_from_type", "earned_from_id", "status",
        "valid_till", "redemption_count",
    ]  # fmt: skip
    list_filter = ["status", "kind", "earned_from_type", CustomerFilter]
    search_fields = ["=id", "=customer__id", "earned_from_id", "promotion__name"]
    list_select_related = ["promotion"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(Issual)
class IssualAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["id", "customer_id", "program", "loyalty_promotion", "source", "created_at"]
    search_fields = ["=id", "=customer__id"]


@admin.register(LoyaltyEarnedPromotion)
class LoyaltyEarnedPromotionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["id", "issual_id", "customer_id", "loyalty_promotion", "created_at"]
    search_fields = ["=id", "=customer__id"]


@admin.register(BulkJob)
class BulkJobAdmin(ReadOnlyOrgScopedAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "promotion",
        "total",
        "done",
        "failed",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["promotion", "created_by"]


@admin.register(BulkJobItem)
class BulkJobItemAdmin(ReadOnlyOrgScopedAdmin):
    org_lookup = "job__org_id"
    list_display = ["job", "line", "identifier", "customer_id", "status", "code", "message"]
    list_filter = ["status"]
