"""The redemption audit (a read-only list with filters, search, CSV export and the reverse action), the
marketer dashboard and a promotion's "Try it on a cart" panel. Reads go through `redemptions.selectors`
(the panel through `redemptions.cart_trial`), reversals through the service."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Prefetch, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from promotions.audit import Actor
from promotions.models import Organization, Promotion, Till
from promotions.selectors import store_scope_for_till
from promotions_site.admin_console import Task, admin_url
from promotions_site.admin_format import DEFAULT_PRECISION, admin_datetime, limit_text, money, quantity
from promotions_site.admin_lists import DateRangeFilter, EstimatedCountPaginator
from promotions_site.admin_scoping import (
    AdminJSONField,
    AdminModelChoiceField,
    ReadOnlyAdminMixin,
    ReadOnlyOrgScopedAdmin,
    sees_all_orgs,
    user_org_id,
)
from promotions_site.errors import ErrorCode, PromotionError, flatten_detail
from redemptions.cart_trial import cart_trial
from redemptions.charts import redemptions_per_day_svg
from redemptions.evaluation import CartLineInput, evaluation_lines
from redemptions.models import Redemption, RedemptionCounter, RedemptionLine, RedemptionReversal
from redemptions.selectors import (
    OF_PROMOTION_ORDERING,
    org_activity_totals,
    promotion_activity_list,
    redemption_days_live,
    redemptions_of_promotion,
    redemptions_per_day,
)
from redemptions.serializers import (
    EVALUATE_LINES_MAX,
    EVALUATE_LIST_MAX,
)
from redemptions.services import redemption_export_create, redemption_reverse
from redemptions.summaries import redemption_days_refresh
from wallets.admin_filters import CustomerFilter
from wallets.selectors import customers_matching

REVERSE_MAX = 500  # redemptions one run of the reverse action takes (each is its own transaction)
REVERSE_PREVIEW_ROWS = 100


def _precision(obj) -> int:
    """The org's rounding precision of a row with an `org` (the admin's query selects it)."""
    org = getattr(obj, "org", None)
    return org.rounding_precision if org is not None else DEFAULT_PRECISION


class RedemptionLineInline(ReadOnlyAdminMixin, admin.TabularInline):
    """A redemption's lines in a marketer's words, money with the org's precision; each column's
    help names the API field."""

    model = RedemptionLine
    extra = 0
    verbose_name = "redeemed promotion"
    verbose_name_plural = "redeemed promotions"
    fields = [
        "line_display", "promotion", "earned_promotion", "promo_code", "times_display", "discount_display",
        "discounted_quantity", "used_quantity",
    ]  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("promotion", "earned_promotion", "promo_code", "redemption__org")
        )

    @admin.display(description="Line")
    def line_display(self, line):
        return line.title

    @admin.display(description="Times redeemed")
    def times_display(self, line):
        return quantity(line.redemption_count)

    @admin.display(description="Discount")
    def discount_display(self, line):
        return money(line.discount, _precision(line.redemption))

    @admin.display(description="Discounted quantity")
    def discounted_quantity(self, line):
        return quantity(line.discount_applied_on_quantity)

    @admin.display(description="Quantity the promotion used")
    def used_quantity(self, line):
        return quantity(line.promotion_applied_on_quantity)


def _reversal() -> Exists:
    return Exists(RedemptionReversal.objects.filter(redemption=OuterRef("pk")))


class PromotionFilter(admin.SimpleListFilter):
    """Transactions that redeemed a promotion; the choices are the org's promotions ever redeemed."""

    title = "promotion"
    parameter_name = "promotion"

    def lookups(self, request, model_admin):
        promotions = Promotion.objects.filter(Exists(RedemptionLine.objects.filter(promotion=OuterRef("pk"))))
        if not sees_all_orgs(request):
            promotions = promotions.filter(org_id=user_org_id(request))
        return [(pk, name) for pk, name in promotions.order_by("name", "pk").values_list("pk", "name")]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else redemptions_of_promotion(queryset, self.value())


class ReversalFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("not_reversed", "Not reversed"), ("reversed", "Reversed")]

    def queryset(self, request, queryset):
        if self.value() == "reversed":
            return queryset.filter(_reversal())
        if self.value() == "not_reversed":
            return queryset.filter(~_reversal())
        return queryset


class TransactionDateRangeFilter(DateRangeFilter):
    """The transaction date, from and to (both days included): the date hierarchy's place, without
    its MIN/MAX over the table."""

    title = "transaction date"
    field_name = "transaction_date"


class ReverseForm(forms.Form):
    reason = forms.CharField(
        max_length=250,
        help_text="Recorded on each reversal and in the audit trail (a return, a cancelled sale, ...).",
        widget=forms.TextInput(attrs={"size": 60}),
    )


class RedemptionDetailForm(forms.ModelForm):
    """The redemption page's fields are read-only, in a marketer's words; each help names the API field."""

    class Meta:
        model = Redemption
        fields: list[str] = []
        help_texts = {
            "transaction_list_display": "API: transactionIdentifier (the till's id of the sale).",
            "transaction": "API: transactionIdentifier (the till's id of the sale).",
            "number": "API: transactionNumber (the bill number).",
            "date_display": "API: transactionDate (epoch ms) / transactionDateISO, shown in the page's zone.",
            "customer_link": "API: customerId (-1, anonymous, when the sale had no customer).",
            "identified_by": "API: customerIdentifierType and customerIdentifierValue, as the till sent them.",
            "amount_display": "API: amount, with the organization's rounding precision.",
            "api_client_display": "The API client (till or system) that recorded it; none when recorded otherwise.",
            "recorded_display": "When this service recorded the redemption.",
            "reversal_summary": "API: reverse (a return or cancelled sale).",
        }


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyOrgScopedAdmin):
    """The redemption audit: recorded transactions, read-only; reversing goes through the service."""

    list_display = [
        "transaction_list_display",  # the transactionIdentifier, the bill number under it
        "customer_link",
        "amount_display",
        "discount_display",
        "promotion_names",
        "date_display",
        "reversed_flag",
    ]
    list_display_links = ["transaction_list_display"]
    list_columns = {
        "transaction_list_display": "transactionIdentifier, transactionNumber", "customer_link": "customerId",
        "amount_display": "amount", "discount_display": ("Total discount", "discount (of its lines)"),
        "promotion_names": ("Promotions", "promotionId (of its lines)"), "date_display": "transactionDate",
        "reversed_flag": ("Reversed", None),
    }  # fmt: skip
    list_filter = [PromotionFilter, CustomerFilter, ReversalFilter, TransactionDateRangeFilter]
    # Shown as the search box's fields; `get_search_results` matches each exactly, in its stored spelling.
    search_fields = [
        "=transaction_identifier", "=transaction_number", "=customer__id", "=customer__mobile",
        "=customer__email", "=customer__external_id",
    ]  # fmt: skip
    search_help_text = "An exact transactionIdentifier or transactionNumber, or a customer's id, mobile, email or externalId."
    ordering = ["-transaction_date", "-id"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    form = RedemptionDetailForm
    fields = [
        "org", "transaction", "number", "date_display", "customer_link", "identified_by", "amount_display",
        "api_client_display", "recorded_display", "reversal_summary",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [RedemptionLineInline]
    actions = ["reverse_selected"]

    def get_queryset(self, request):
        lines = RedemptionLine.objects.select_related("promotion").only(
            "redemption", "level", "position", "discount", "promotion__name"
        )
        return (
            super()
            .get_queryset(request)
            .select_related("customer", "org")
            # A LEFT JOIN probed per row (an EXISTS is planned as a hash of every reversal of the org).
            .annotate(is_reversed=ExpressionWrapper(Q(reversal__isnull=False), output_field=BooleanField()))
            .prefetch_related(Prefetch("lines", queryset=lines.order_by("level", "position")))
        )

    def get_ordering(self, request):
        # Filtered on a promotion: the same order, read from the promotion's index
        # (`redemptions_of_promotion`); a column the user sorts on replaces it as usual.
        if request.GET.get(PromotionFilter.parameter_name):
            return list(OF_PROMOTION_ORDERING)
        return super().get_ordering(request)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        org_id = None if sees_all_orgs(request) else user_org_id(request)
        # Customer-first: their ids (a handful at most: exact matches of unique identifiers) go into the
        # query as values, so the planner sees three selective index look-ups, not a subquery it
        # guesses could match every redemption (and walks the whole list for).
        customers = list(customers_matching(value=term, org_id=org_id).values_list("pk", flat=True)[:100])
        match = Q(transaction_identifier=term) | Q(transaction_number=term) | Q(customer_id__in=customers)
        return queryset.filter(match), False

    # --- columns ---------------------------------------------------------------------------------

    @admin.display(description="Transaction", ordering="transaction_identifier")
    def transaction(self, redemption):
        return redemption.transaction_identifier

    @admin.display(description="Transaction", ordering="transaction_identifier")
    def transaction_list_display(self, redemption):
        if not redemption.transaction_number:
            return redemption.transaction_identifier
        return format_html(
            '{}<br><span class="mini quiet">Number {}</span>',
            redemption.transaction_identifier,
            redemption.transaction_number,
        )

    @admin.display(description="Number", ordering="transaction_number")
    def number(self, redemption):
        return redemption.transaction_number or "-"

    @admin.display(description="Customer identified by")
    def identified_by(self, redemption):
        if not redemption.customer_identifier_type:
            return "-"
        return f"{redemption.customer_identifier_type}: {redemption.customer_identifier_value}"

    @admin.display(description="Recorded")
    def recorded_display(self, redemption):
        return admin_datetime(redemption.created_at)

    @admin.display(description="Recorded by")
    def api_client_display(self, redemption):
        return redemption.api_client.username if redemption.api_client_id else "-"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """Titled by what it is: `Redemption 39: transaction POS-...`."""
        redemption = self.get_object(request, unquote(object_id))
        if redemption is not None:
            extra_context = {
                **(extra_context or {}),
                "subtitle": f"Redemption {redemption.pk}: transaction {redemption.transaction_identifier}",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="Customer", ordering="customer_id")
    def customer_link(self, redemption):
        customer = redemption.customer
        if customer is None:
            return "anonymous sale"
        name = (
            f"{customer.first_name} {customer.last_name}".strip() or customer.mobile or customer.email or ""
        )
        url = reverse("admin:wallets_customer_change", args=[customer.pk])
        return format_html(
            '<a href="{}">{}</a><br><span class="mini quiet">{}</span>', url, customer.pk, name
        )

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, redemption):
        return money(redemption.amount, _precision(redemption))

    @admin.display(description="Total discount")
    def discount_display(self, redemption):
        return money(sum(line.discount for line in redemption.lines.all()), _precision(redemption))

    @admin.display(description="Promotions")
    def promotion_names(self, redemption):
        names = dict.fromkeys(line.promotion.name for line in redemption.lines.all())
        return ", ".join(names)

    @admin.display(description="Date", ordering="transaction_date")
    def date_display(self, redemption):
        return admin_datetime(redemption.transaction_date)

    @admin.display(description="Reversed", boolean=True, ordering="is_reversed")
    def reversed_flag(self, redemption):
        return redemption.is_reversed

    @admin.display(description="Reversal")
    def reversal_summary(self, redemption):
        reversal = (
            RedemptionReversal.objects.filter(redemption=redemption).select_related("api_client").first()
        )
        if reversal is None:
            return "Not reversed"
        by = f" by {reversal.api_client.username}" if reversal.api_client else ""
        when = admin_datetime(reversal.created_at)
        return f"Reversed {when}{by}: {reversal.reason or '(no reason given)'}"

    # --- reverse action --------------------------------------------------------------------------

    def has_reverse_permission(self, request):
        return request.user.has_perm(f"{self.opts.app_label}.reverse_redemption")

    @admin.action(description="Reverse selected redemptions", permissions=["reverse"])
    def reverse_selected(self, request, queryset):
        """Django's delete_selected pattern: the first POST shows what will happen and asks for a
        reason; the confirmation (`post=yes`) reverses each through `redemption_reverse`."""
        if not self.has_reverse_permission(request):
            raise PermissionDenied
        selected = queryset.order_by("pk")
        count = selected.count()
        if count > REVERSE_MAX:
            self.message_user(
                request,
                f"Select at most {REVERSE_MAX} redemptions to reverse at once ({count:,} selected).",
                messages.ERROR,
            )
            return None
        form = ReverseForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_valid():
            self._reverse(request, selected, form.cleaned_data["reason"])
            return None
        preview = list(selected[:REVERSE_PREVIEW_ROWS])
        already = selected.filter(is_reversed=True).count()
        context = {
            **self.admin_site.each_context(request),
            "title": "Reverse redemptions",
            "opts": self.opts,
            "form": form,
            "selected": selected.values_list("pk", flat=True),
            "preview": [
                {
                    "redemption": r,
                    "discount": self.discount_display(r),
                    "amount": self.amount_display(r),
                    "promotions": self.promotion_names(r),
                }
                for r in preview
            ],
            "more": count - len(preview),
            "count": count,
            "to_reverse": count - already,
            "already_reversed": already,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/redemptions/redemption/reverse_selected_confirmation.html", context
        )

    def _reverse(self, request, selected, reason: str) -> None:
        actor, done, unchanged = Actor.for_user(request.user), 0, []
        for redemption in selected.prefetch_related(None).select_related("org"):
            try:
                outcome = redemption_reverse(
                    org=redemption.org,
                    transaction_identifier=redemption.transaction_identifier,
                    reason=reason,
                    actor=actor,
                    api_client=None,
                )
            except PromotionError as error:
                self.message_user(request, f"{redemption}: {error.message}", messages.ERROR)
                continue
            if outcome.replayed:
                unchanged.append(redemption.transaction_identifier)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                f"{done} redemption(s) reversed: their limits and earned promotions were given back.",
                messages.SUCCESS,
            )
        if unchanged:
            shown = ", ".join(unchanged[:10]) + (" ..." if len(unchanged) > 10 else "")
            self.message_user(
                request, f"{len(unchanged)} already reversed, left as they were: {shown}", messages.INFO
            )

    # --- CSV export ------------------------------------------------------------------------------

    def get_urls(self):
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request):
        """Export the changelist's rows (its filters and search) as CSV, one row per redemption line
        with the list API's fields. Never in the request: GET asks to confirm, POST starts an export
        job (a BulkJob of kind EXPORT) and leads to its page, which shows the progress and offers
        the file when it is done (or says why it failed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:redemptions_redemption_changelist") + "?e=1")
        filters = {name: request.GET[name] for name in EXPORT_FILTERS if request.GET.get(name)}
        org = self._export_org(request)
        if request.method == "POST" and org is not None:
            job = redemption_export_create(
                org=org, user=request.user, filters=filters, time_zone=timezone.get_current_timezone_name()
            )
            messages.success(request, f"{job} started: the file is offered here when it is written.")
            return redirect("admin:wallets_bulkjob_change", job.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Export redemptions",
            "opts": self.opts,
            "org": org,
            "filters": filters,
            "estimate": changelist.result_count,
            "query_string": request.GET.urlencode(),
            "changelist_url": reverse("admin:redemptions_redemption_changelist")
            + changelist.get_query_string(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/redemptions/redemption/export_confirmation.html", context)

    def _export_org(self, request) -> Organization | None:
        """The org whose redemptions are exported: the staff user's; a superuser without one picks it
        with the list's org filter."""
        if not sees_all_orgs(request):
            return request.user.org
        chosen = request.GET.get("org__id__exact", "")
        return Organization.objects.filter(pk=chosen).first() if chosen.isdigit() else None


# The audit list's filters an export job applies again (`redemptions_filtered`).
EXPORT_FILTERS = ("promotion", "customer", "status", "date_from", "date_to", "q")


@admin.register(RedemptionLine)
class RedemptionLineAdmin(ReadOnlyOrgScopedAdmin):
    org_lookup = "redemption__org_id"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_display = [
        "__str__",
        "promotion",
        "earned_promotion",
        "promo_code",
        "redemption_count",
        "discount_display",
    ]
    list_filter = ["level"]
    list_select_related = ["redemption__org", "promotion", "promo_code"]

    @admin.display(description="Discount", ordering="discount")
    def discount_display(self, line):
        return money(line.discount, _precision(line.redemption))


@admin.register(RedemptionReversal)
class RedemptionReversalAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["__str__", "reason", "created_at"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(RedemptionCounter)
class RedemptionCounterAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["restriction", "scope", "window_start", "used_display", "limit_display", "updated_at"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_select_related = ["restriction", "org"]
    search_fields = ["scope"]

    @admin.display(description="Used", ordering="used")
    def used_display(self, counter):
        return limit_text(counter.used, counter.restriction.kpi, _precision(counter))

    @admin.display(description="Limit", ordering="limit")
    def limit_display(self, counter):
        return limit_text(counter.limit, counter.restriction.kpi, _precision(counter))


@admin.site.register_tasks
def redemption_tasks(request):
    """The first page's redemption tasks: the dashboard, the redemption audit."""
    user = request.user
    if user.has_perm("promotions.view_promotion") and user.has_perm("redemptions.view_redemption"):
        yield Task(
            70,
            "dashboard",
            "Dashboard",
            "Issued, earned, redeemed and reversed per promotion; redemptions per day.",
            admin_url("admin-dashboard"),
        )
    if user.has_perm("redemptions.view_redemption"):
        yield Task(
            80,
            "audit",
            "Redemption audit",
            "Every recorded transaction: filter, export as CSV, reverse.",
            admin_url("admin:redemptions_redemption_changelist"),
        )


# --- The dashboard --------------------------------------------------------------------------------

DASHBOARD_PROMOTIONS_PER_PAGE = 50
CHART_DAYS = 30


class DashboardForm(forms.Form):
    org = forms.ModelChoiceField(
        queryset=Organization.objects.order_by("id"), required=False, empty_label=None, label="Organization"
    )
    promotion = forms.ModelChoiceField(
        queryset=Promotion.objects.none(), required=False, empty_label="All promotions", label="Promotion"
    )

    def __init__(self, data, *, org: Organization | None, choose_org: bool):
        super().__init__(data)
        if not choose_org:
            del self.fields["org"]
        self.fields["promotion"].queryset = Promotion.objects.filter(org=org).order_by("name", "pk")


def _dashboard_org(request) -> Organization | None:
    if not sees_all_orgs(request):
        return request.user.org
    chosen = request.GET.get("org", "")
    orgs = Organization.objects.order_by("id")
    return (orgs.filter(pk=chosen).first() if chosen.isdigit() else None) or orgs.first()


def dashboard_view(request):
    """Per promotion of the org: issued / earned / redeemed / reversed and total discount; the org's
    totals; redemptions per day over the last 30 days, for every promotion or one. A fixed number of
    queries, however many promotions the org has."""
    user = request.user
    if not (user.has_perm("promotions.view_promotion") and user.has_perm("redemptions.view_redemption")):
        raise PermissionDenied
    if not sees_all_orgs(request) and user_org_id(request) is None:
        raise PermissionDenied("Your account belongs to no organization.")
    org = _dashboard_org(request)
    context = {**admin.site.each_context(request), "title": "Dashboard", "org": org}
    if org is None:
        return TemplateResponse(request, "admin/dashboard.html", context)
    form = DashboardForm(request.GET or None, org=org, choose_org=sees_all_orgs(request))
    promotion = form.cleaned_data.get("promotion") if form.is_valid() else None
    promotions = Promotion.objects.for_org(org).only(
        "id", "org", "name", "type", "active", "start_date", "end_date"
    )
    page = Paginator(
        promotions.order_by("-active", "-start_date", "pk"), DASHBOARD_PROMOTIONS_PER_PAGE
    ).get_page(request.GET.get("p"))
    # The closed days missing from the summaries (none once the hourly task has run), then the reads.
    redemption_days_refresh(org=org)
    live = redemption_days_live(org=org)  # today's counts: the one read that grows with a day's sales
    days = redemptions_per_day(org=org, days=CHART_DAYS, promotion=promotion, live=live)
    query = request.GET.copy()
    query.pop("p", None)
    context.update(
        form=form,
        promotion=promotion,
        page=page,
        page_query=query.urlencode(),
        activity=promotion_activity_list(org=org, promotions=list(page.object_list), live=live),
        totals=org_activity_totals(org=org, live=live),
        days=days,
        days_total=sum(day.redeemed + day.reversed for day in days),
        chart=redemptions_per_day_svg(days, x_title=f"Transaction date ({org.timezone})"),
        now=timezone.now(),
    )
    return TemplateResponse(request, "admin/dashboard.html", context)


# --- A promotion tried on a cart -------------------------------------------------------------------


CART_TRIAL_YEARS = (1970, 2999)


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


class CartJSONField(AdminJSONField):
    def prepare_value(self, value):
        # An empty box stays empty (Django's JSON field writes `null` for no value).
        return "" if value is None else super().prepare_value(value)


class CartTrialForm(forms.Form):
    """The cart, pasted as an Evaluate request body or built from the line rows; who and when."""

    cart = CartJSONField(
        required=False,
        label="Cart (JSON)",
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text="An Evaluate request body: amount, customerId, cartItems[] (sku, amount, qty, categoryList, "
        "brandList, attributes), cartTenders[]. When given, the lines below are left aside.",
    )
    customer_id = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        label="Customer id",
        help_text="Optional: the customer whose wallet and limits count (it replaces the cart's customerId).",
    )
    till = AdminModelChoiceField(
        queryset=Till.objects.none(),
        required=False,
        empty_label="No till",
        label="Till",
        help_text="Optional: the till (its store, zones and concepts) the cart is rung up at.",
    )
    moment = forms.DateTimeField(
        required=False,
        label="Moment",
        widget=forms.DateTimeInput(attrs={"placeholder": "YYYY-MM-DD HH:MM"}),
        help_text="Optional; default: now.",
    )

    def __init__(self, *args, org: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        self.fields["till"].queryset = Till.objects.for_org(org).select_related("store").order_by("code")
        self.fields["till"].label_from_instance = lambda till: f"{till.code}: {till.name} ({till.store.name})"
        self.fields["moment"].label = f"Moment ({org.timezone})"
        self.fields[
            "moment"
        ].help_text = f"Optional, in the organization's time zone ({org.timezone}); default: now."

    def clean_moment(self):
        # Read in the org's zone (the form is validated with it active).
        moment = self.cleaned_data.get("moment")
        if moment is not None and not (CART_TRIAL_YEARS[0] <= moment.year <= CART_TRIAL_YEARS[1]):
            raise forms.ValidationError(
                f"Choose a moment between the years {CART_TRIAL_YEARS[0]} and {CART_TRIAL_YEARS[1]}."
            )
        return moment

    def clean(self):
        cleaned = super().clean()
        cart = cleaned.get("cart")
        if cart in (None, "") or "cart" in self.errors:
            cleaned["cart"] = None
            return cleaned
        # The Evaluate request's own validation: what the API refuses, the panel refuses. Imported here:
        # the admin is loaded by every process, commands included, which import no API module.
        from redemptions.apis import EvaluationCreateApi

        payload = EvaluationCreateApi.InputSerializer(data=cart)
        if not payload.is_valid():
            for line in flatten_detail(payload.errors):
                self.add_error("cart", line)
            return cleaned
        cleaned["cart"] = payload.validated_data
        return cleaned


class CartLineForm(forms.Form):
    sku = forms.CharField(max_length=100, required=False, label="SKU")
    amount = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=18, decimal_places=6, label="Amount"
    )
    qty = forms.DecimalField(
        required=False,
        min_value=Decimal("0.000001"),
        max_digits=18,
        decimal_places=6,
        label="Qty",
        help_text="Default 1.",
    )
    categories = forms.CharField(max_length=1000, required=False, label="Categories")
    brands = forms.CharField(max_length=1000, required=False, label="Brands")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A row's boxes sit under the table's column headers, with no label of their own: each is
        # named for assistive technology ("Line 2: SKU").
        number = int(self.prefix.rsplit("-", 1)[-1]) + 1 if self.prefix else 1
        for field in self.fields.values():
            field.widget.attrs["aria-label"] = f"Line {number}: {field.label}"

    def clean(self):
        cleaned = super().clean()
        typed = any(self.data.get(self.add_prefix(name), "").strip() for name in self.fields)
        if not typed:
            cleaned["blank"] = True
            return cleaned
        cleaned["blank"] = False
        if not cleaned.get("sku") and "sku" not in self.errors:
            self.add_error("sku", "A line needs its SKU.")
        if cleaned.get("amount") is None and "amount" not in self.errors:
            self.add_error("amount", "A line needs its amount (all its units together).")
        for name in ("categories", "brands"):
            values = _comma_list(cleaned.get(name, ""))
            if any(len(value) > 100 for value in values):
                self.add_error(name, "Each value has at most 100 characters.")
            elif len(values) > EVALUATE_LIST_MAX:
                self.add_error(name, f"At most {EVALUATE_LIST_MAX} values.")
        return cleaned

    def line(self) -> CartLineInput:
        data = self.cleaned_data
        return CartLineInput(
            sku=data["sku"],
            amount=data["amount"],
            qty=data["qty"] if data.get("qty") is not None else Decimal(1),
            categories=_comma_list(data.get("categories", "")),
            brands=_comma_list(data.get("brands", "")),
        )


CART_TRIAL_ROWS = 3
CartLineFormSet = forms.formset_factory(
    CartLineForm,
    extra=CART_TRIAL_ROWS,
    max_num=EVALUATE_LINES_MAX,
    absolute_max=EVALUATE_LINES_MAX,
    validate_max=True,
)


def _with_one_more_row(data):
    """The posted data with one more (blank) line row: "Add a row" without JavaScript."""
    data = data.copy()
    key = "lines-TOTAL_FORMS"
    try:
        total = int(data.get(key, ""))
    except ValueError:
        return data
    data[key] = str(min(max(total, 0) + 1, EVALUATE_LINES_MAX))
    return data


def cart_trial_view(request, promotion_id: str):
    """A promotion's "Try it on a cart" panel: the cart evaluated with the org's live rules, what applies
    and why this promotion did or did not, and what it would give alone. Records nothing. View
    permission on the promotion suffices; another org's promotion is a 404."""
    model_admin = admin.site.get_model_admin(Promotion)
    promotion = get_object_or_404(model_admin.get_queryset(request).select_related("org"), pk=promotion_id)
    if not model_admin.has_view_permission(request, promotion):
        raise PermissionDenied
    org = promotion.org
    posted = request.method == "POST"
    adding_row = posted and "add_line" in request.POST
    data = _with_one_more_row(request.POST) if adding_row else request.POST if posted else None
    form = CartTrialForm(data, org=org)
    formset = CartLineFormSet(data, prefix="lines")
    if posted and not formset.management_form.is_valid():
        formset = CartLineFormSet(prefix="lines")  # rows the page did not post: fresh ones
    trial, line_errors = None, False
    if posted and not adding_row:
        with timezone.override(ZoneInfo(org.timezone)):
            valid = form.is_valid()
        if valid:
            trial, line_errors = _cart_trial(form, formset, promotion)
    context = {
        **admin.site.each_context(request),
        "title": f"Try “{promotion.name}” on a cart",
        "opts": Promotion._meta,
        "promotion": promotion,
        "form": form,
        "formset": formset,
        "line_errors": line_errors,
        "trial": trial,
        "errors": bool(form.errors) or line_errors,
    }
    return TemplateResponse(request, "admin/promotions/promotion/try_cart.html", context)


def _cart_trial(form, formset, promotion):
    """(the trial, whether the line rows have errors to show) for a valid form; (None, ...) with the
    reason added to the form or its rows when the cart cannot be tried."""
    data = form.cleaned_data
    cart = data["cart"]
    numbers = None
    if cart is not None:  # the rows are left aside
        lines = evaluation_lines(cart["cartItems"])
        tenders = [(tender["identifier"], tender.get("amount")) for tender in cart.get("cartTenders") or []]
        customer_id = data["customer_id"] or cart.get("customerId")
    else:
        if formset.is_bound and not formset.is_valid():
            return None, True
        rows = [
            (number, row)
            for number, row in enumerate(formset.forms, start=1)
            if formset.is_bound and row.cleaned_data and not row.cleaned_data["blank"]
        ]
        if not rows:
            form.add_error(None, "Paste a cart, or fill at least one line (its SKU and amount).")
            return None, False
        numbers = [number for number, _ in rows]
        lines = [row.line() for _, row in rows]
        tenders = []
        customer_id = data["customer_id"]
    try:
        trial = cart_trial(
            org=promotion.org,
            promotion=promotion,
            lines=lines,
            tenders=tenders,
            customer_id=customer_id,
            store=store_scope_for_till(data["till"]),
            now=data["moment"],
            line_numbers=numbers,
        )
    except PromotionError as error:
        field = "customer_id" if error.code == ErrorCode.NOT_FOUND and data["customer_id"] else None
        form.add_error(field, error.message)
        return None, False
    return trial, False
