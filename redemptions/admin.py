from django.contrib import admin

from promotions_site.admin_scoping import ReadOnlyAdminMixin, ReadOnlyOrgScopedAdmin
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionReversal


class RedemptionLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RedemptionLine
    extra = 0
    fields = [
        "level", "position", "sku", "promotion", "earned_promotion", "redemption_count", "discount",
        "discount_applied_on_quantity", "promotion_applied_on_quantity",
    ]  # fmt: skip
    readonly_fields = fields


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = [
        "transaction_identifier",
        "transaction_number",
        "customer_id",
        "amount",
        "transaction_date",
    ]
    search_fields = ["transaction_identifier", "transaction_number", "=customer__id", "customer__mobile"]
    date_hierarchy = "transaction_date"
    exclude = ["request_fingerprint", "response"]
    inlines = [RedemptionLineInline]


@admin.register(RedemptionLine)
class RedemptionLineAdmin(ReadOnlyOrgScopedAdmin):
    org_lookup = "redemption__org_id"
    list_display = ["redemption", "level", "promotion", "earned_promotion", "redemption_count", "discount"]
    list_filter = ["level"]
    list_select_related = ["redemption", "promotion"]


@admin.register(RedemptionReversal)
class RedemptionReversalAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["redemption", "reason", "created_at"]


@admin.register(RedemptionCounter)
class RedemptionCounterAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["restriction", "scope", "used", "limit", "updated_at"]
    list_select_related = ["restriction"]
    search_fields = ["scope"]
