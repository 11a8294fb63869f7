from django.contrib import admin

from promotions_site.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion, Issual, LoyaltyEarnedPromotion


@admin.register(Customer)
class CustomerAdmin(OrgScopedAdmin):
    list_display = ["id", "first_name", "last_name", "mobile", "email", "external_id", "source", "created_at"]
    list_filter = ["source"]
    search_fields = ["=id", "mobile", "email", "external_id", "first_name", "last_name"]
    show_full_result_count = False


@admin.register(EarnedPromotion)
class EarnedPromotionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = [
        "id", "customer_id", "promotion", "kind", "earned_from_type", "earned_from_id", "status",
        "valid_till", "redemption_count",
    ]  # fmt: skip
    list_filter = ["status", "kind", "earned_from_type"]
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
