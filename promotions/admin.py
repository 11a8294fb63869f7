from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from promotions import builder
from promotions.audit import Actor
from promotions.builder_forms import (
    BuiltRule,
    PromotionRestrictionForm,
    builder_fields,
    builder_layout,
    initial_earning_summary,
    initial_summary,
    pretty_json,
    preview_response,
    values_seen,
)
from promotions.calendar import TYPE_LEGEND, month_calendar, month_of
from promotions.duplicate import copy_initial, copy_restrictions
from promotions.models import (
    ApiClient,
    AuditEvent,
    Concept,
    LoyaltyProgram,
    LoyaltyPromotion,
    Organization,
    Promotion,
    PromotionRestriction,
    PromotionType,
    Store,
    Till,
    User,
    Zone,
)
from promotions.services import (
    PROMOTION_FIELDS,
    RestrictionSpec,
    api_client_create,
    promotion_activate,
    promotion_create,
    promotion_deactivate,
    promotion_update,
    promotion_validate,
)
from promotions_site.admin_console import Task, admin_url
from promotions_site.admin_format import zone_label
from promotions_site.admin_lists import DateRangeFilter, EstimatedCountPaginator
from promotions_site.admin_scoping import (
    FORMFIELD_OVERRIDES,
    AuditedAdminMixin,
    OrgScopedAdmin,
    ReadOnlyOrgScopedAdmin,
    sees_all_orgs,
    user_org_id,
)
from promotions_site.errors import ErrorCode, PromotionError


@admin.register(Organization)
class OrganizationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ["id", "name", "timezone", "max_active_promotions", "created_at"]
    search_fields = ["name"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if sees_all_orgs(request) else queryset.filter(pk=user_org_id(request))

    def has_add_permission(self, request):
        return sees_all_orgs(request)

    def has_delete_permission(self, request, obj=None):
        return False

    fieldsets = [
        (None, {"fields": ["id", "name", "timezone", "max_active_promotions"]}),
        (
            "Promotion engine",
            {
                "fields": [
                    "rounding_mode", "rounding_precision", "evaluation_mechanism", "percentage_base",
                    "several_line_promotions_per_unit", "redemption_strategy", "rules_version",
                ],
                "description": "How carts are evaluated (docs/engine.md, \"Settings\"). The rules version "
                "moves with every change to a promotion of the org.",
            },
        ),
        (
            "Cart locks",
            {
                "fields": ["cart_locking_enabled", "cart_lock_ttl_seconds", "cart_lock_max_pending_carts"],
                "description": "Under REDEMPTION_WITH_CART_EVALUATION: what an evaluation applied is reserved "
                "for the customer until the cart is redeemed, cancelled or expires (docs/cart-locks.md).",
            },
        ),
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # The active-promotion cap is a subscription matter: only platform operators change it.
        readonly = ["rules_version"] if obj else []
        return readonly if sees_all_orgs(request) else ["id", "max_active_promotions", *readonly]

    def get_fieldsets(self, request, obj=None):
        if obj is None:  # no version before the org exists
            return [
                (name, {**options, "fields": [f for f in options["fields"] if f != "rules_version"]})
                for name, options in self.fieldsets
            ]
        return self.fieldsets

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Every field but rules_version: a promotion write bumping it meanwhile must not be undone.
        obj.save(
            update_fields=[
                f.name
                for f in Organization._meta.concrete_fields
                if not f.primary_key and f.name != "rules_version"
            ]
        )


admin.site.unregister(Group)


@admin.register(Group)
class OrgGroupAdmin(GroupAdmin):
    """Django's group admin, with our form fields, for superusers only. Groups are global (the
    Auditors group serves every org): an org's staff changing one would change what every other
    org's members of it may do."""

    formfield_overrides = FORMFIELD_OVERRIDES

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def _permission_ids(user: User) -> set[int]:
    """The permissions `user` holds, directly or through a group, whether active or not (an
    inactive account keeps what it would hold once reactivated)."""
    if user.is_superuser:
        return set(Permission.objects.values_list("pk", flat=True))
    return set(Permission.objects.filter(Q(user=user) | Q(group__user=user)).values_list("pk", flat=True))


def _groups_within(permission_ids: set[int]):
    """The groups granting nothing beyond `permission_ids`."""
    return Group.objects.exclude(permissions__in=Permission.objects.exclude(pk__in=permission_ids))


@admin.register(User)
class OrgUserAdmin(OrgScopedAdmin, UserAdmin):
    """Users of the admin. A superuser manages every user and every permission. Anyone else holding
    the user permissions manages their own org's users and can never end up with more than they hold:

    - superusers are not theirs to see, change, delete or set a password for (404);
    - a colleague holding a permission they lack is view-only to them (no change, no password, no
      delete: else they could take over that account);
    - they give colleagues only groups granting nothing beyond their own permissions (a group the
      colleague already has may stay), never direct permissions, superuser status or another org;
    - on their own account, groups, staff status and active status are read-only.
    """

    fieldsets = (*UserAdmin.fieldsets, ("Organization", {"fields": ("org",)}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Organization", {"fields": ("org",)}))
    list_display = ["username", "email", "org", "is_staff", "is_superuser"]

    def get_exclude(self, request, obj=None):
        return []

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(is_superuser=False)

    def _holds_all_of(self, request, obj) -> bool:
        return (
            obj is None or request.user.is_superuser or _permission_ids(obj) <= _permission_ids(request.user)
        )

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._holds_all_of(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._holds_all_of(request, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk and not request.user.is_superuser:
            readonly += ["groups", "is_staff", "is_active"]
        return readonly

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        groups = form.base_fields.get("groups")
        if groups is not None and not request.user.is_superuser:
            # The form class is made for this request: narrowing its field touches no other request.
            held = obj.groups.values("pk") if obj is not None else []
            groups.queryset = Group.objects.filter(
                Q(pk__in=_groups_within(_permission_ids(request.user)).values("pk")) | Q(pk__in=held)
            )
            groups.help_text = "Only groups granting nothing beyond your own permissions can be given."
        return form

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
    fields = ["org", "username", "access", "is_active", "token_ttl_seconds", "default_till"]
    list_select_related = ["org"]
    audited_by_services = frozenset({"create"})  # api_client_create

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
            default_till=obj.default_till,
            actor=Actor.for_user(request.user),
        )
        obj.pk, obj.org, obj.secret_hash = client.pk, client.org, client.secret_hash
        obj._state.adding = False
        obj._secret_shown_once = secret

    def response_add(self, request, obj, post_url_continue=None):
        """The secret is shown on the page answering the add form's post, never carried to the next
        page: Django's messages would keep it in a cookie, signed but readable."""
        secret = getattr(obj, "_secret_shown_once", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"API client {obj.username} added",
            "client": obj,
            "secret": secret,
        }
        return TemplateResponse(request, "admin/promotions/apiclient/secret_once.html", context)


class PromotionAdminForm(forms.ModelForm):
    """The promotion's rule through the builder (`promotions/builder.py`): no JSON typed. What the builder
    makes is checked by the create API's serializers and the engine's compile, and kept as the API
    stores it; the JSON stays visible, read-only."""

    class Meta:
        model = Promotion
        fields = ["org", *(name for name in PROMOTION_FIELDS if name not in builder.BUILT_FIELDS)]
        # The form finds a taken name before the service does: the same words, the same code.
        error_messages = {
            NON_FIELD_ERRORS: {
                "unique_together": f"{ErrorCode.PROMOTION_NAME_NOT_UNIQUE.message} "
                f"(code {int(ErrorCode.PROMOTION_NAME_NOT_UNIQUE)})"
            }
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        stored = {}
        if self.instance._state.adding and not self.is_bound:
            stored = dict(self.initial)  # a copy's builder values (promotions/duplicate.py), if any
        if self.instance.pk is not None and not self.instance._state.adding:
            stored = {
                **builder.decompose(self.instance.condition, self.instance.action),
                **builder.decompose_scope(
                    self.instance.store_criteria,
                    self.instance.time_criteria,
                    self.instance.custom_field_values,
                ),
                **builder.decompose_earning(self.instance.earning_criteria),
            }
        counts = builder.slot_counts(self.data if self.is_bound else stored)
        self.builder_names = list(builder_fields(counts))
        for name, field in builder_fields(counts).items():
            self.fields[name] = field
            if name in stored:
                self.initial[name] = stored[name]
        self.builder_counts = counts

    def clean(self):
        cleaned = super().clean()
        rule = BuiltRule({name: cleaned.get(name) for name in self.builder_names})
        for field, message in rule.errors:
            self.add_error(field if field in self.fields else None, message)
        # The limits' check (the formset's) compares against the rule: with none built it has nothing to add.
        self.instance._rule_unbuilt = bool(rule.errors)
        kind = cleaned.get("type") or self.instance.type
        stored = None if self.instance._state.adding else self.instance.earning_criteria
        if (
            not rule.errors
            and kind != PromotionType.EARNING
            and rule.earning_criteria is not None
            and rule.earning_criteria != stored
        ):
            # What the API keeps on any type (a copied object), the builder does not add: only an
            # Earning promotion is earned by criteria.
            self.add_error(
                "ec_from",
                "Only an Earning promotion is earned by criteria: pick “Not by criteria”, or make the "
                "promotion an Earning one.",
            )
            self.instance._rule_unbuilt = True
            return cleaned
        if not rule.errors:
            for name in builder.BUILT_FIELDS:
                setattr(self.instance, name, getattr(rule, name))
        return cleaned


def _restriction_specs(formset) -> list[RestrictionSpec]:
    specs = []
    for form in formset.forms:
        data = getattr(form, "cleaned_data", None)
        if not data or data.get("DELETE"):
            continue
        specs.append(
            RestrictionSpec(
                level=data["level"],
                kpi=data["kpi"],
                limit=data["limit"],
                frequency=data.get("frequency") or "",
                window_type=data.get("window_type") or "",
                min_time_between_repeat=data.get("min_time_between_repeat"),
                fixed_window_config=data.get("fixed_window_config"),
            )
        )
    return specs


def _promotion_fields(promotion: Promotion) -> dict:
    return {name: getattr(promotion, name) for name in PROMOTION_FIELDS}


# The promotion fields promotion_validate compares or branches on, which have no default.
RULE_INPUTS = ("type", "start_date", "end_date")


class PromotionRestrictionFormSet(forms.BaseInlineFormSet):
    """Runs the service's rules on the promotion with its limits, so the admin shows them as form errors."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        fields = _promotion_fields(self.instance)
        if any(fields[name] in (None, "") for name in RULE_INPUTS) or getattr(
            self.instance, "_rule_unbuilt", False
        ):
            # The promotion form lacks a field the rules compare and reports it itself (a missing or
            # unparsable date, no type): there is nothing to check the limits against yet.
            return
        existing = None
        if self.instance.pk and not self.instance._state.adding:
            existing = Promotion.objects.prefetch_related("restrictions").get(pk=self.instance.pk)
        try:
            promotion_validate(
                fields=fields,
                restrictions=_restriction_specs(self),
                existing=existing,
            )
        except PromotionError as error:
            raise forms.ValidationError(f"{error.message} (code {int(error.code)})") from error


class PromotionRestrictionInline(admin.TabularInline):
    """The limits: one labelled row each (level, kpi, limit and its window, the fixed cycle in words)."""

    model = PromotionRestriction
    form = PromotionRestrictionForm
    formset = PromotionRestrictionFormSet
    fields = [
        "level", "kpi", "limit", "frequency", "min_time_between_repeat", "window_type",
        "fw_cycle", "fw_week_start", "fw_days", "fw_anchor", "fw_source",
    ]  # fmt: skip
    formfield_overrides = FORMFIELD_OVERRIDES
    extra = 0


def not_issuable_message(name: str, kind: str) -> str:
    """Why a promotion cannot be issued, in a marketer's words: the issue action and the issue screen
    say it at once, before any customer list is asked for."""
    issuable = " and ".join(PromotionType(value).label for value in PromotionType.ISSUABLE_TYPES)
    label = PromotionType(kind).label if kind in PromotionType.values else kind
    return (
        f"“{name}” is a {label} promotion: it cannot be issued to customers. Only {issuable} "
        "promotions can be issued (a Reward promotion is earned: use Bulk earn)."
    )


@admin.site.register_tasks
def promotion_tasks(request):
    """The first page's promotion tasks: create one, issue one (the issuable types listed), codes
    (once the promo code batches' admin is registered)."""
    user = request.user
    if user.has_perm("promotions.add_promotion"):
        yield Task(
            10,
            "create-promotion",
            "Create promotion",
            "A new promotion: what the cart needs, what it gives, its dates and limits.",
            admin_url("admin:promotions_promotion_add"),
        )
    if user.has_perm("wallets.run_bulk_job") and user.has_perm("promotions.view_promotion"):
        issuable = ", ".join(PromotionType(value).label for value in PromotionType.ISSUABLE_TYPES)
        yield Task(
            20,
            "issue",
            "Issue to customers",
            f"Give a promotion to a list of customers. Only {issuable} promotions can be issued: "
            "pick one here, then “Issue to customers” on its page.",
            admin_url(
                "admin:promotions_promotion_changelist", {"type__in": ",".join(PromotionType.ISSUABLE_TYPES)}
            ),
        )
    if user.has_perm("promotions.view_promotion"):
        yield Task(
            15,
            "calendar",
            "Promotion calendar",
            "Every promotion of a month as a bar from its start to its end, by type.",
            admin_url("admin:promotions_promotion_calendar"),
        )
    codes = apps.get_model("promotions", "PromoCodeBatch")
    if admin.site.is_registered(codes) and user.has_perm("promotions.view_promocodebatch"):
        yield Task(
            40,
            "codes",
            "Codes",
            "Generate or upload promo codes, and see each batch.",
            admin_url("admin:promotions_promocodebatch_changelist"),
        )


@admin.register(Promotion)
class PromotionAdmin(OrgScopedAdmin):
    """Creates and updates promotions through `promotion_create` / `promotion_update`, like the API."""

    form = PromotionAdminForm
    list_display = ["name", "id", "type", "active", "start_date", "end_date", "max_issuance_per_customer"]
    list_columns = {
        "name": "name", "id": "id", "type": "type", "active": "active", "start_date": ("Starts", "startDate"),
        "end_date": ("Ends", "endDate"), "max_issuance_per_customer": ("Issues per customer", "maxIssuancePerCustomer"),
    }  # fmt: skip
    list_filter = ["type", "active", "mode"]
    search_fields = ["name", "id", "campaign_id"]
    date_hierarchy = "start_date"
    inlines = [PromotionRestrictionInline]
    actions = ["activate_selected", "deactivate_selected", "issue_to_customers", "duplicate_selected"]
    audited_by_services = frozenset({"create", "update"})  # promotion_create, promotion_update

    class Media:
        css = {"all": ["promotions/builder.css"]}
        js = ["promotions/builder.js"]

    @admin.display(description="Stored JSON (read-only)")
    def stored_json(self, obj):
        """The rule as the API stores and echoes it, for experts: the builder above is where it changes."""
        if obj is None or obj.pk is None:
            return "—"
        parts = {
            "condition": obj.condition, "action": obj.action, "storeCriteria": obj.store_criteria,
            "timeCriteria": obj.time_criteria, "customFieldValues": obj.custom_field_values,
            "earningCriteria": obj.earning_criteria,
        }  # fmt: skip
        # A box that scrolls is reached by the keyboard too (tabindex), named for a screen reader.
        return format_html(
            '<pre class="builder-json" tabindex="0" aria-label="Stored JSON">{}</pre>', pretty_json(parts)
        )

    @admin.display(description="In plain words")
    def rule_summary(self, obj):
        if obj is None or not obj.condition or not obj.action:
            return "—"
        return builder.summary(obj.condition, obj.action)

    def _render_builder_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        if hasattr(form, "builder_counts"):
            context["builder"] = builder_layout(form)
            context["builder_summary"] = initial_summary(form)
            context["earning_summary"] = initial_earning_summary(form)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        own = [
            path("builder/preview/", self.admin_site.admin_view(self.builder_preview), name="promotions_promotion_builder_preview"),
            path("builder/values/", self.admin_site.admin_view(self.builder_values), name="promotions_promotion_builder_values"),
            path("calendar/", self.admin_site.admin_view(self.calendar_view), name="promotions_promotion_calendar"),
            path("<path:object_id>/duplicate/", self.admin_site.admin_view(self.duplicate_view), name="promotions_promotion_duplicate"),
        ]  # fmt: skip
        return own + super().get_urls()

    def calendar_view(self, request):
        """The org's promotions of a month as bars (promotions/calendar.py); `?month=YYYY-MM`."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        first = month_of(request.GET.get("month"), timezone.localdate())
        month = month_calendar(self.get_queryset(request), first)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Promotion calendar: {first:%B %Y}",
            "month": month,
            "legend": TYPE_LEGEND,
            "zone": zone_label(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/promotions/promotion/calendar.html", context)

    # --- Duplicate (promotions/duplicate.py): the add form, prefilled; saved only by the marketer ---

    COPY_PARAM = "copy_of"

    def duplicate_view(self, request, object_id):
        """Opens the add form prefilled with a copy of the promotion (one of the user's org)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        original = self.get_object(request, object_id)
        if original is None:
            raise Http404("No such promotion.")
        return HttpResponseRedirect(
            admin_url("admin:promotions_promotion_add", {self.COPY_PARAM: original.pk})
        )

    def _copied(self, request) -> Promotion | None:
        """The promotion the add form copies (`?copy_of=`), if it is one the user sees."""
        if request.method != "GET" or self.COPY_PARAM not in request.GET:
            return None
        if not hasattr(request, "_promotion_copied"):
            original = self.get_queryset(request).filter(pk=request.GET[self.COPY_PARAM][:24]).first()
            if original is None:
                messages.warning(request, "The promotion to copy was not found: the form is empty.")
            request._promotion_copied = original
        return request._promotion_copied

    def get_changeform_initial_data(self, request):
        original = self._copied(request)
        if original is None:
            initial = super().get_changeform_initial_data(request)
            initial.pop(self.COPY_PARAM, None)
            return initial
        return copy_initial(original)

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        original = self._copied(request) if obj is None or obj._state.adding else None
        if original is not None and isinstance(inline, PromotionRestrictionInline):
            kwargs["initial"] = copy_restrictions(original)
        return kwargs

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        original = self._copied(request) if obj is None else None
        if original is not None:
            rows = original.restrictions.count()
            for inline in inlines:
                if isinstance(inline, PromotionRestrictionInline):
                    inline.extra = rows
        return inlines

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if add and self._copied(request) is not None:
            context["copied_from"] = self._copied(request)
        return self._render_builder_form(request, context, add, change, form_url, obj)

    @admin.action(description="Duplicate the selected promotion", permissions=["add"])
    def duplicate_selected(self, request, queryset):
        """Opens the add form prefilled with a copy of the one selected promotion."""
        selected = list(queryset.values_list("pk", flat=True)[:2])
        if len(selected) != 1:
            messages.warning(request, "Select exactly one promotion to duplicate.")
            return None
        return HttpResponseRedirect(
            admin_url("admin:promotions_promotion_add", {self.COPY_PARAM: selected[0]})
        )

    def builder_preview(self, request):
        """POST: the builder's values; answers the sentence, the JSON and the errors (the save's code)."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        if request.method != "POST":
            return JsonResponse({"error": "POST the builder's fields."}, status=405)
        return preview_response(request.POST)

    def builder_values(self, request):
        """GET ?entity=SKU&q=ab: values of that kind the org has seen, for the pickers."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        entity = request.GET.get("entity", "SKU")
        org_id = user_org_id(request)
        if org_id is None:  # a platform superuser: the org of the promotion being edited, if named
            org_id = request.GET.get("org") if str(request.GET.get("org", "")).isdigit() else None
        values = values_seen(
            org_id, entity, request.GET.get("q", "")[:100], request.GET.get("attribute", "")[:255]
        )
        return JsonResponse({"values": values})

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in ("start_date", "end_date"):
            # Read and shown in the org's zone (promotions_site/admin_format.py); the API name as help.
            api_name = {"start_date": "startDate", "end_date": "endDate"}[db_field.name]
            field.help_text = f"In {zone_label()}, the organization's time zone. API: {api_name}."
            # Django's split widget labels its two boxes with bare text ("Date:", "Time:") under the
            # field's legend: no box has an accessible name of its own (axe-core's "label").
            label = db_field.verbose_name.capitalize()
            for widget, part in zip(getattr(field.widget, "widgets", ()), ("date", "time"), strict=False):
                widget.attrs["aria-label"] = f"{label}: {part}"
        return field

    def get_readonly_fields(self, request, obj=None):
        fixed = [
            "id",
            "created_by",
            "created_on",
            "last_updated_by",
            "last_updated_on",
            "rule_summary",
            "stored_json",
        ]
        # type never changes; active changes only through the activate/deactivate actions.
        return [*fixed, "type", "active"] if obj else fixed

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PromotionError as error:
            # A rule that only the write can check (a concurrent create took the last active slot
            # or the name): the transaction is rolled back; show why and let the user retry.
            messages.error(request, f"{error.message} (code {int(error.code)})")
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        """The write happens in save_related, once the restriction formset's data is known."""
        if not change and not sees_all_orgs(request):
            obj.org_id = user_org_id(request)

    def save_formset(self, request, form, formset, change):
        """Restrictions are written by the service (the admin's history just lists no inline changes)."""
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def save_related(self, request, form, formsets, change):
        [restrictions] = [_restriction_specs(f) for f in formsets if f.model is PromotionRestriction]
        obj, actor = form.instance, Actor.for_user(request.user)
        if change:
            saved = promotion_update(
                promotion=Promotion.objects.get(pk=obj.pk),
                fields=_promotion_fields(obj),
                restrictions=restrictions,
                actor=actor,
            )
        else:
            saved = promotion_create(
                org=obj.org, fields=_promotion_fields(obj), restrictions=restrictions, actor=actor
            )
        obj.pk, obj.created_on, obj.last_updated_on = saved.pk, saved.created_on, saved.last_updated_on
        obj._state.adding = False
        for formset in formsets:
            self.save_formset(request, form, formset, change)

    @admin.action(description="Activate selected promotions", permissions=["change"])
    def activate_selected(self, request, queryset):
        self._apply(request, queryset, promotion_activate, "activated")

    @admin.action(description="Deactivate selected promotions", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        self._apply(request, queryset, promotion_deactivate, "deactivated")

    def has_run_bulk_job_permission(self, request) -> bool:
        return request.user.has_perm("wallets.run_bulk_job")

    @admin.action(description="Issue the selected promotion to customers", permissions=["run_bulk_job"])
    def issue_to_customers(self, request, queryset):
        """Opens the issue screen (wallets' bulk-job admin) of the one selected promotion."""
        selected = list(queryset.values_list("pk", "name", "type")[:2])
        if len(selected) != 1:
            messages.warning(request, "Select exactly one promotion to issue.")
            return None
        [(pk, name, kind)] = selected
        if kind not in PromotionType.ISSUABLE_TYPES:
            messages.error(request, not_issuable_message(name, kind))
            return None
        return HttpResponseRedirect(reverse("admin:wallets_bulkjob_issue", args=[pk]))

    def _apply(self, request, queryset, service, verb):
        done, actor = 0, Actor.for_user(request.user)
        for promotion in queryset.order_by("pk"):
            try:
                service(promotion=promotion, actor=actor)
                done += 1
            except PromotionError as error:
                messages.error(request, f"{promotion.name}: {error.message} (code {int(error.code)})")
        if done:
            messages.success(request, f"{done} promotion(s) {verb}.")


class HierarchyAdmin(OrgScopedAdmin):
    """Zones, concepts and stores: the org's own ids (what storeCriteria names), names and parents.
    Every choice is the org's; a parent that would close a cycle, or a row of another org (a platform
    superuser sees them all), is a form error (the model's `clean`)."""

    list_display = ["external_id", "name", "parent", "org"]
    search_fields = ["name", "external_id"]
    list_select_related = ["parent", "org"]
    ordering = ["org", "external_id"]


@admin.register(Zone)
class ZoneAdmin(HierarchyAdmin):
    fields = ["org", "external_id", "name", "parent"]


@admin.register(Concept)
class ConceptAdmin(HierarchyAdmin):
    fields = ["org", "external_id", "name", "parent"]


@admin.register(Store)
class StoreAdmin(HierarchyAdmin):
    fields = ["org", "external_id", "code", "name", "zone", "concept", "parent"]
    list_display = ["external_id", "code", "name", "zone", "concept", "parent", "org"]
    list_select_related = ["zone", "concept", "parent", "org"]
    search_fields = ["name", "code", "external_id"]


@admin.register(Till)
class TillAdmin(OrgScopedAdmin):
    """A till names its store; API clients name their default till (the API client page)."""

    fields = ["org", "code", "name", "store"]
    list_display = ["code", "name", "store", "org"]
    list_select_related = ["store", "org"]
    search_fields = ["code", "name", "store__name"]
    ordering = ["org", "code"]


@admin.register(LoyaltyProgram)
class LoyaltyProgramAdmin(OrgScopedAdmin):
    list_display = ["id", "name", "org", "created_at"]
    search_fields = ["name"]


@admin.register(LoyaltyPromotion)
class LoyaltyPromotionAdmin(OrgScopedAdmin):
    list_display = ["id", "name", "program", "type", "active", "start_date", "end_date"]
    list_filter = ["type", "active"]
    search_fields = ["name"]


class AuditEventDateRangeFilter(DateRangeFilter):
    title = "date"
    field_name = "created_at"


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
    list_filter = ["action", "actor_type", "object_type", AuditEventDateRangeFilter]
    # Exact matches: a substring search would read every event of the org (one per redemption).
    search_fields = ["=object_id", "=request_id", "=actor_name"]
    search_help_text = "An exact object id, request id or actor name."
    show_full_result_count = False
    paginator = EstimatedCountPaginator


# The promo-code screens (codes, batches, generate/upload/export) live with the code generation.
from promotions.codegen import admin as codegen_admin  # noqa: E402, F401
