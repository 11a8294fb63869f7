from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from promotions.models import (
    ApiClient,
    AuditEvent,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    Promotion,
    PromotionRestriction,
    User,
)
from promotions.services import Actor, api_client_create
from promotions_site.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin, sees_all_orgs, user_org_id


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "timezone", "max_active_promotions", "created_at"]
    search_fields = ["name"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if sees_all_orgs(request) else queryset.filter(pk=user_org_id(request))

    def has_add_permission(self, request):
        return sees_all_orgs(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        # The active-promotion cap is a subscription matter: only platform operators change it.
        return [] if sees_all_orgs(request) else ["id", "max_active_promotions"]


@admin.register(User)
class OrgUserAdmin(OrgScopedAdmin, UserAdmin):
    fieldsets = (*UserAdmin.fieldsets, ("Organization", {"fields": ("org",)}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Organization", {"fields": ("org",)}))
    list_display = ["username", "email", "org", "is_staff", "is_superuser"]

    def get_exclude(self, request, obj=None):
        return []

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if sees_all_orgs(request):
            return fieldsets
        # Org-bound staff manage their colleagues but cannot grant superuser or move them to another org.
        hidden = {"org", "is_superuser", "user_permissions"}
        return [
            (name, {**options, "fields": tuple(f for f in options["fields"] if f not in hidden)})
            for name, options in fieldsets
        ]


@admin.register(ApiClient)
class ApiClientAdmin(OrgScopedAdmin):
    list_display = ["username", "org", "access", "is_active", "token_ttl_seconds", "created_at"]
    list_filter = ["access", "is_active"]
    search_fields = ["username"]
    fields = ["org", "username", "access", "is_active", "token_ttl_seconds"]

    def get_readonly_fields(self, request, obj=None):
        return ["username"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        org = obj.org if sees_all_orgs(request) else request.user.org
        client, secret = api_client_create(
            org=org,
            username=obj.username,
            access=obj.access,
            token_ttl_seconds=obj.token_ttl_seconds,
            actor=Actor.for_user(request.user),
        )
        obj.pk, obj.org, obj.secret_hash = client.pk, client.org, client.secret_hash
        obj._state.adding = False
        messages.warning(
            request, f"Secret for {client.username}: {secret}  (shown once; only a hash of it is stored)."
        )


class PromotionRestrictionInline(admin.TabularInline):
    model = PromotionRestriction
    extra = 0


@admin.register(Promotion)
class PromotionAdmin(OrgScopedAdmin):
    list_display = ["name", "id", "type", "active", "start_date", "end_date", "max_issuance_per_customer"]
    list_filter = ["type", "active", "mode"]
    search_fields = ["name", "id", "campaign_id"]
    date_hierarchy = "start_date"
    readonly_fields = ["id", "created_by", "created_on", "last_updated_by", "last_updated_on"]
    inlines = [PromotionRestrictionInline]


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(OrgScopedAdmin):
    list_display = ["id", "name", "org", "created_at"]
    search_fields = ["name"]


@admin.register(LoyaltyPromotion)
class LoyaltyPromotionAdmin(OrgScopedAdmin):
    list_display = ["id", "name", "program", "type", "active", "start_date", "end_date"]
    list_filter = ["type", "active"]
    search_fields = ["name"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyOrgScopedAdmin):
    list_display = [
        "created_at",
        "action",
        "object_type",
        "object_id",
        "actor_type",
        "actor_name",
        "request_id",
    ]
    list_filter = ["action", "actor_type", "object_type"]
    search_fields = ["object_id", "request_id", "actor_name"]
    date_hierarchy = "created_at"
