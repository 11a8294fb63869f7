import os
import secrets

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Count, Q
from django.http import (
    FileResponse,
    Http404,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from promotions.admin import not_issuable_message
from promotions.audit import Actor
from promotions.models import Organization, Promotion, PromotionType
from promotions_site.admin_console import Task, admin_url
from promotions_site.admin_jobs import JobAdminMixin, progress_bar
from promotions_site.admin_lists import DateRangeFilter, EstimatedCountPaginator
from promotions_site.admin_scoping import OrgScopedAdmin, ReadOnlyOrgScopedAdmin, sees_all_orgs, user_org_id
from promotions_site.csvexport import csv_lines
from promotions_site.errors import PromotionError
from promotions_site.uploads import uploads_over_cap
from wallets.admin_filters import CustomerFilter
from wallets.forms import (
    LABELS,
    CustomerAdminForm,
    EarnEntryFormSet,
    EarnForm,
    IssueForm,
    read_stored_values,
)
from wallets.identifiers import SOURCES
from wallets.models import BulkJob, BulkJobItem, Customer, EarnedPromotion, Issual, LoyaltyEarnedPromotion
from wallets.selectors import CUSTOMER_SUBSTRING_MIN, customer_identifier_match, wallet_get
from wallets.services import (
    PREVIEW_MAX_AGE,
    bulk_job_create,
    bulk_job_input_discard,
    bulk_job_input_store,
    bulk_job_preview,
    bulk_job_retry,
    bulk_job_start,
    customer_create,
)

WALLET_ROWS = 50  # the customer page shows this many earned promotions; a link leads to all of them


class SourceFilter(admin.SimpleListFilter):
    """The customer's source, offered from the documented values: Django's default filter on a field
    without choices would read every customer (SELECT DISTINCT) on every page of the list."""

    title = "source"
    parameter_name = "source__exact"

    def lookups(self, request, model_admin):
        return [(source, source) for source in SOURCES]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(source=self.value())


@admin.register(Customer)
class CustomerAdmin(OrgScopedAdmin):
    """Adds customers through `customer_create`, like the customers API; changes check the same rules."""

    form = CustomerAdminForm
    list_display = ["id", "name_display", "mobile", "email", "external_id", "source", "created_at"]
    list_columns = {
        "id": ("Customer id", "customerId"), "name_display": "firstName, lastName", "mobile": "mobile",
        "email": "email", "external_id": ("External id", "externalId"), "source": "source",
        "created_at": ("Created", "createdOn"),
    }  # fmt: skip
    list_filter = [SourceFilter]
    # Shown as the search box's fields; `get_search_results` decides how each is matched.
    search_fields = ["=id", "mobile", "email", "external_id", "first_name", "last_name"]
    search_help_text = (
        "An exact customer id, mobile, email or externalId first; if none matches, customers whose "
        f"mobile, email, externalId or name contains the text ({CUSTOMER_SUBSTRING_MIN} characters or more)."
    )
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    audited_by_services = frozenset({"create"})  # customer_create

    @admin.display(description="Name", ordering="last_name")
    def name_display(self, customer):
        return f"{customer.first_name} {customer.last_name}".strip() or "-"

    def get_search_results(self, request, queryset, search_term):
        """Customer-first: an exact identifier by its unique index; only when none matches, a
        substring of an identifier or a name (the trigram indexes on PostgreSQL). Shorter texts
        match exactly or not at all."""
        term = search_term.strip()
        if not term:
            return queryset, False
        exact = queryset.filter(customer_identifier_match(term))
        if exact.exists() or len(term) < CUSTOMER_SUBSTRING_MIN:
            return exact, False
        contains = Q()
        for name in ("mobile", "email", "external_id", "first_name", "last_name"):
            contains |= Q(**{f"{name}__icontains": term})
        return queryset.filter(contains), False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except PromotionError as error:
            # A concurrent create took the identifier between the form's check and the insert.
            messages.error(request, _refusal(error))
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = customer_create(
            org=obj.org if sees_all_orgs(request) else request.user.org,
            mobile=obj.mobile,
            email=obj.email,
            external_id=obj.external_id,
            first_name=obj.first_name,
            last_name=obj.last_name,
            source=obj.source,
            actor=Actor.for_user(request.user),
        )
        obj.pk, obj.org, obj.created_at = created.pk, created.org, created.created_at
        obj._state.adding = False

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


class ValidTillRangeFilter(DateRangeFilter):
    title = "valid till"
    field_name = "valid_till"


@admin.register(EarnedPromotion)
class EarnedPromotionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = [
        "id", "customer_id", "promotion", "kind", "earned_from_type", "earned_from_id", "status",
        "valid_till", "redemption_count",
    ]  # fmt: skip
    list_columns = {
        "id": "id", "customer_id": ("Customer id", "customerId"), "promotion": "promotionId",
        "kind": ("Issued or earned", None), "earned_from_type": ("Earned from", "earnedFromType"),
        "earned_from_id": ("Earned from id", "earnedFromId"), "status": "status",
        "valid_till": ("Valid till", "validTill"), "redemption_count": ("Times redeemed", "redemptionCount"),
    }  # fmt: skip
    list_filter = ["status", "kind", "earned_from_type", CustomerFilter, ValidTillRangeFilter]
    # Exact matches, each by an index: an earned promotion's id, a customer id, a promotion's name.
    search_fields = ["=id", "=customer__id", "=promotion__name"]
    search_help_text = "An exact earned promotion id, customer id or promotion name."
    list_select_related = ["promotion"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        promotions = Promotion.objects.filter(name=term)
        if not sees_all_orgs(request):
            promotions = promotions.filter(org_id=user_org_id(request))
        match = Q(pk=term) | Q(promotion__in=list(promotions.values_list("pk", flat=True)[:100]))
        if term.isascii() and term.isdigit() and int(term) < 2**63:
            match |= Q(customer_id=int(term))
        return queryset.filter(match), False


@admin.register(Issual)
class IssualAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["id", "customer_id", "program", "loyalty_promotion", "source", "created_at"]
    list_columns = {
        "id": "issualId", "customer_id": ("Customer id", "customerId"), "program": "programId",
        "loyalty_promotion": ("Loyalty promotion", "promotionId"), "source": None, "created_at": ("Issued", None),
    }  # fmt: skip
    search_fields = ["=id", "=customer__id"]


@admin.register(LoyaltyEarnedPromotion)
class LoyaltyEarnedPromotionAdmin(ReadOnlyOrgScopedAdmin):
    list_display = ["id", "issual_id", "customer_id", "loyalty_promotion", "created_at"]
    list_columns = {
        "id": "id", "issual_id": ("Issual", "issualId"), "customer_id": ("Customer id", "customerId"),
        "loyalty_promotion": ("Loyalty promotion", "promotionId"), "created_at": ("Created", None),
    }  # fmt: skip
    search_fields = ["=id", "=customer__id"]


# --- Bulk jobs: the issue and bulk-earn screens, the job list and the job page ----------------------

DRAFT_SALT = "wallets.admin.bulk_job_draft"
DRAFT_MAX_AGE = int(PREVIEW_MAX_AGE.total_seconds())  # seconds a preview can be confirmed
ERROR_REPORT_COLUMNS = ["line", "identifier", "customerId", "code", "message"]
CUSTOMERS_FIELDSET = ("Customers", {"fields": ["identifier_type", "identifiers", "csv_file"]})


def _refusal(error: PromotionError) -> str:
    return f"{error.message} (code {int(error.code)})"


def _progress_text(job: BulkJob) -> str:
    return f"{job.processed:,} of {job.total:,} ({job.percent}%) · failed {job.failed:,}"


@admin.site.register_tasks
def wallet_tasks(request):
    """The first page's wallet tasks: bulk earn, the jobs, the customers."""
    user = request.user
    can_run_jobs = user.has_perm("wallets.run_bulk_job")
    if can_run_jobs:
        yield Task(
            30,
            "bulk-earn",
            "Bulk earn",
            "Customers of a list earn Earning or Reward promotions (an activity, a milestone).",
            admin_url("admin:wallets_bulkjob_earn"),
        )
    if can_run_jobs or user.has_perm("wallets.view_bulkjob"):
        yield Task(
            50,
            "jobs",
            "Jobs",
            "Issues, bulk earns and exports: their progress, error reports and files.",
            admin_url("admin:wallets_bulkjob_changelist"),
        )
    if user.has_perm("wallets.view_customer"):
        yield Task(
            60,
            "customers",
            "Customers",
            "Find a customer: their wallet (earned promotions) and redemptions.",
            admin_url("admin:wallets_customer_changelist"),
        )


def _org_promotions(request):
    """The promotions the staff user may give out: their org's (every org's for a superuser without one)."""
    promotions = Promotion.objects.select_related("org")
    return promotions if sees_all_orgs(request) else promotions.filter(org_id=user_org_id(request))


@admin.register(BulkJob)
class BulkJobAdmin(JobAdminMixin, ReadOnlyOrgScopedAdmin):
    """The jobs (list and page: progress, error report, input file, retry) and the screens that start
    them: issue a promotion and bulk earn, each a form, a preview and a confirmation (Django's
    delete_selected pattern: the preview's form posts `post=yes`). The work is done by the services.

    Permissions: starting or retrying a job needs `wallets.run_bulk_job`; seeing jobs, their progress,
    error reports and input files needs view permission on jobs (or `run_bulk_job`). Every page is
    scoped to the staff user's org: another org's job or promotion is a 404.
    """

    run_permission = "wallets.run_bulk_job"

    list_display = [
        "__str__",  # names the kind: "Issue a promotion #12"
        "status",
        "promotions_display",
        "progress_display",
        "created_by",
        "created_at",
    ]
    # Jobs are the console's own (no API reads them): their columns name no API field.
    list_columns = {
        "__str__": ("Job", None), "status": None, "promotions_display": None, "progress_display": None,
        "created_by": ("Started by", None), "created_at": ("Started", None),
    }  # fmt: skip
    list_filter = ["kind", "status"]
    list_select_related = ["promotion", "created_by"]
    fields = [
        "kind",
        "promotions_display",
        "params_display",
        "identifier_type_display",
        "input_display",
        "items_display",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    # --- list and page ------------------------------------------------------------------------------

    @admin.display(description="Promotion")
    def promotions_display(self, job: BulkJob):
        if job.promotion_id:
            url = reverse("admin:promotions_promotion_change", args=[job.promotion_id])
            return format_html('<a href="{}">{}</a>', url, job.promotion.name)
        entries = job.params.get("entries") or []
        return f"{len(entries)} promotions" if entries else "-"

    @admin.display(description="Progress")
    def progress_display(self, job: BulkJob):
        return progress_bar(job.percent, _progress_text(job), failed=job.status == BulkJob.Status.FAILED)

    @admin.display(description="What")
    def params_display(self, job: BulkJob):
        params = job.params or {}
        if job.kind == BulkJob.Kind.EXPORT:
            filters = params.get("filters") or {}
            if not filters:
                return "Every redemption of the org"
            return format_html_join(" · ", "{} <code>{}</code>", sorted(filters.items()))
        if job.kind == BulkJob.Kind.ISSUE:
            return format_html("contextId <code>{}</code>", params.get("contextId", ""))
        entries = params.get("entries") or []
        names = dict(
            Promotion.objects.filter(pk__in=[e["promotionId"] for e in entries]).values_list("pk", "name")
        )
        return format_html(
            "earnedFromType <code>{}</code> · earnedFromId <code>{}</code>{}",
            params.get("earnedFromType", ""),
            params.get("earnedFromId", ""),
            format_html_join(
                "",
                "<br>{} &times; {}",
                ((names.get(e["promotionId"], e["promotionId"]), e["earnCount"]) for e in entries),
            ),
        )

    @admin.display(description="Customers identified by")
    def identifier_type_display(self, job: BulkJob):
        return LABELS.get(job.identifier_type, job.identifier_type)

    @admin.display(description="Input")
    def input_display(self, job: BulkJob):
        if not job.input_file:
            return job.input_name or "-"
        url = reverse("admin:wallets_bulkjob_input", args=[job.pk])
        return format_html('<a href="{}">{}</a>', url, job.input_name or job.input_file.name)

    @admin.display(description="Items")
    def items_display(self, job: BulkJob):
        if job.kind == BulkJob.Kind.EXPORT:
            return f"{job.done:,} of {job.total:,} redemption lines written"
        url = reverse("admin:wallets_bulkjobitem_changelist") + f"?job__id__exact={job.pk}"
        return format_html(
            '<a href="{}">All {}</a> · <a href="{}&amp;status__exact=FAILED">failed {}</a>',
            url,
            job.total,
            url,
            job.failed,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "progress_text": _progress_text(job) if job else "",
            "pending": job.total - job.processed if job else 0,
            "inline_max": settings.BULK_JOB_INLINE_MAX,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- URLs ---------------------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("issue/<str:promotion_id>/", view(self.issue_view), name="wallets_bulkjob_issue"),
            path("earn/", view(self.earn_view), name="wallets_bulkjob_earn"),
            path("<int:job_id>/progress/", view(self.progress_view), name="wallets_bulkjob_progress"),
            path(
                "<int:job_id>/error-report/",
                view(self.error_report_view),
                name="wallets_bulkjob_error_report",
            ),
            path("<int:job_id>/input/", view(self.input_file_view), name="wallets_bulkjob_input"),
            path("<int:job_id>/retry/", view(self.retry_view), name="wallets_bulkjob_retry"),
            path("<int:job_id>/output/", view(self.output_file_view), name="wallets_bulkjob_output"),
            *super().get_urls(),
        ]

    # --- job endpoints ------------------------------------------------------------------------------

    def progress_view(self, request, job_id: int):
        """The job page's progress bar polls this every second until the job is DONE or FAILED."""
        job = self._job(request, job_id)
        return JsonResponse(
            {
                "id": job.pk,
                "status": job.status,
                "total": job.total,
                "done": job.done,
                "failed": job.failed,
                "processed": job.processed,
                "percent": job.percent,
                "text": _progress_text(job),
                "error": job.error,
                "finished": job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED),
            }
        )

    def error_report_view(self, request, job_id: int):
        """The failed items as CSV (line, identifier, customerId, code, message), streamed."""
        job = self._job(request, job_id)
        rows = (
            job.items.filter(status=BulkJobItem.Status.FAILED)
            .order_by("id")
            .values_list("line", "identifier", "customer_id", "code", "message")
            .iterator(chunk_size=2000)
        )
        response = StreamingHttpResponse(
            csv_lines(ERROR_REPORT_COLUMNS, rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="bulk-job-{job.pk}-errors.csv"'
        return response

    def input_file_view(self, request, job_id: int):
        job = self._job(request, job_id)
        if not job.input_file:
            raise Http404("This job has no input file.")
        try:
            handle = job.input_file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The input file is no longer stored.") from error
        name = job.input_name or os.path.basename(job.input_file.name)
        return FileResponse(handle, as_attachment=True, filename=name)

    def output_file_view(self, request, job_id: int):
        """An export's file, once the job is DONE."""
        job = self._job(request, job_id)
        if job.status != BulkJob.Status.DONE or not job.output_file:
            raise Http404("This job has no file to download (yet).")
        try:
            handle = job.output_file.open("rb")
        except FileNotFoundError as error:
            raise Http404("The file is no longer stored.") from error
        return FileResponse(handle, as_attachment=True, filename=os.path.basename(job.output_file.name))

    def retry_view(self, request, job_id: int):
        self._require_run_permission(request)
        job = self._job(request, job_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            bulk_job_retry(job=job, user=request.user)
        except PromotionError as error:
            messages.error(request, _refusal(error))
        else:
            messages.success(request, f"{job} runs again: only the customers it had not processed.")
        return redirect("admin:wallets_bulkjob_change", job.pk)

    # --- issue a promotion --------------------------------------------------------------------------

    def issue_view(self, request, promotion_id: str):
        """Issue a promotion to a customer list: form, then preview, then confirm (post=yes)."""
        self._require_run_permission(request)
        promotion = get_object_or_404(_org_promotions(request), pk=promotion_id)
        if promotion.type not in PromotionType.ISSUABLE_TYPES:
            # Said at once, before any list is given: not after a preview.
            messages.error(request, not_issuable_message(promotion.name, promotion.type))
            return redirect("admin:promotions_promotion_change", promotion.pk)
        if request.method == "POST" and request.POST.get("post") == "yes":
            return self._confirm(request)
        posted = request.method == "POST"
        form = IssueForm(
            request.POST if posted else None,
            request.FILES if posted else None,
            initial={"context_id": IssueForm.default_context_id(promotion)},
            oversized=uploads_over_cap(request),
        )
        if posted and form.is_valid():
            params = {"contextId": form.cleaned_data["context_id"]}
            preview = self._preview(
                request,
                form,
                kind=BulkJob.Kind.ISSUE,
                org=promotion.org,
                promotion=promotion,
                params=params,
                title=f"Issue “{promotion.name}”?",
            )
            if preview is not None:
                return preview
        return self._render_form(
            request,
            form,
            title=f"Issue “{promotion.name}” to customers",
            promotion=promotion,
            fieldsets=[
                CUSTOMERS_FIELDSET,
                ("Issue", {"fields": ["context_id"]}),
            ],
        )

    # --- bulk earn ----------------------------------------------------------------------------------

    def earn_view(self, request):
        """Customers earn one or more promotions: form, then preview, then confirm (post=yes)."""
        self._require_run_permission(request)
        if request.method == "POST" and request.POST.get("post") == "yes":
            return self._confirm(request)
        promotions = _org_promotions(request)
        posted = request.method == "POST"
        chosen = request.GET.get("promotion")
        initial = (
            [{"promotion": chosen, "earn_count": 1}]
            if chosen and promotions.filter(pk=chosen).exists()
            else []
        )
        form = EarnForm(
            request.POST if posted else None,
            request.FILES if posted else None,
            oversized=uploads_over_cap(request),
        )
        formset = EarnEntryFormSet(
            request.POST if posted else None, prefix="entries", promotions=promotions, initial=initial
        )
        if posted and form.is_valid() and formset.is_valid():
            data, entries = form.cleaned_data, formset.entries()
            org = entries[0][0].org
            params = {
                "earnedFromType": data["earned_from_type"],
                "earnedFromId": data["earned_from_id"],
                "entries": [{"promotionId": p.pk, "earnCount": count} for p, count in entries],
            }
            preview = self._preview(
                request,
                form,
                kind=BulkJob.Kind.EARN,
                org=org,
                promotion=entries[0][0] if len(entries) == 1 else None,
                params=params,
                title="Bulk earn?",
                entries=entries,
            )
            if preview is not None:
                return preview
        return self._render_form(
            request,
            form,
            title="Bulk earn",
            formset=formset,
            fieldsets=[
                CUSTOMERS_FIELDSET,
                ("Earn", {"fields": ["earned_from_type", "earned_from_id"]}),
            ],
        )

    # --- the steps both screens share ---------------------------------------------------------------

    def _context(self, request, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "has_view_permission": self.has_view_permission(request),
            "media": self.media,
            **extra,
        }

    def _render_form(self, request, form, *, title, fieldsets, formset=None, promotion=None):
        adminform = helpers.AdminForm(form, fieldsets, {})
        errors = helpers.AdminErrorList(form, [formset] if formset is not None else [])
        context = self._context(
            request,
            title=title,
            adminform=adminform,
            form=form,
            formset=formset,
            errors=errors,
            promotion=promotion,
            media=self.media + adminform.media,
        )
        return TemplateResponse(request, "admin/wallets/bulkjob/bulk_job_form.html", context)

    def _preview(self, request, form, *, kind, org, promotion, params, **page):
        """The preview page of a valid form; None when the service refuses (the refusal is then on
        the form, and nothing is stored)."""
        data = form.cleaned_data
        try:
            preview = bulk_job_preview(
                org=org,
                kind=kind,
                promotion=promotion,
                identifier_type=data["identifier_type"],
                values=data["values"],
                params=params,
            )
        except PromotionError as error:
            form.add_error(None, _refusal(error))
            return None
        # A preview with nothing to give offers no confirmation: its list is not kept.
        draft = ""
        if preview.to_give:
            draft = self._draft(request, form, kind=kind, org=org, promotion=promotion, params=params)
        return self._render_preview(request, form, preview, draft, promotion=promotion, **page)

    def _draft(self, request, form, *, kind, org, promotion, params) -> str:
        """Keep the previewed input (the uploaded file, or the pasted list as a text file) where the
        job will find it, and sign what the confirmation needs: the preview's form cannot be altered.
        The draft's random key becomes the job's idempotency key, so confirming twice starts one job."""
        data = form.cleaned_data
        key = secrets.token_hex(16)
        if data["source"] == "csv":
            content, name, extension = data["csv_file"], data["csv_file"].name, "csv"
        else:
            content, name, extension = ContentFile(data["identifiers"].encode()), "pasted.txt", "txt"
        stored = bulk_job_input_store(key=key, content=content, extension=extension)
        draft = {
            "key": key,
            "kind": kind,
            "org": org.pk,
            "promotion": promotion.pk if promotion else None,
            "params": params,
            "identifier_type": data["identifier_type"],
            "source": data["source"],
            "path": stored,
            "name": name[:255],
            "user": request.user.pk,
        }
        return signing.dumps(draft, salt=DRAFT_SALT, compress=True)

    def _render_preview(self, request, form, preview, draft, *, title, promotion=None, entries=None):
        data = form.cleaned_data
        context = self._context(
            request,
            title=title,
            preview=preview,
            draft=draft,
            promotion=promotion,
            entries=entries,
            identifier_label=LABELS[data["identifier_type"]],
            input_name=data["csv_file"].name if data["source"] == "csv" else "pasted list",
            context_id=data.get("context_id"),
            earned_from_type=data.get("earned_from_type"),
            earned_from_id=data.get("earned_from_id"),
            runs_at_once=preview.total <= settings.BULK_JOB_INLINE_MAX,
        )
        return TemplateResponse(request, "admin/wallets/bulkjob/bulk_job_confirmation.html", context)

    def _confirm(self, request):
        """The preview's confirmation (create the job from the stored input and start it, once) or its
        cancellation (`cancel`: the stored input is deleted)."""
        try:
            draft = signing.loads(request.POST.get("draft", ""), salt=DRAFT_SALT, max_age=DRAFT_MAX_AGE)
        except signing.BadSignature:
            messages.error(request, "This confirmation has expired or is not valid: fill in the form again.")
            return redirect(request.get_full_path())
        if draft["user"] != request.user.pk or not (
            sees_all_orgs(request) or draft["org"] == user_org_id(request)
        ):
            raise PermissionDenied
        org = Organization.objects.get(pk=draft["org"])
        existing = BulkJob.objects.for_org(org).filter(idempotency_key=draft["key"]).first()
        if existing is not None:
            messages.info(request, f"This confirmation was already sent: {existing} is the job it started.")
            return redirect("admin:wallets_bulkjob_change", existing.pk)
        if "cancel" in request.POST:
            bulk_job_input_discard(path=draft["path"])
            messages.info(request, "Cancelled: nothing was started, and the list you gave is deleted.")
            return redirect(request.get_full_path())
        promotion = Promotion.objects.for_org(org).filter(pk=draft["promotion"]).first()
        try:
            with default_storage.open(draft["path"], "rb") as stored:
                listed = read_stored_values(stored, draft["source"], draft["identifier_type"])
        except FileNotFoundError:
            messages.error(request, "The previewed list is no longer stored: fill in the form again.")
            return redirect(request.get_full_path())
        try:
            job = bulk_job_create(
                org=org,
                kind=draft["kind"],
                promotion=promotion,
                params=draft["params"],
                identifier_type=draft["identifier_type"],
                values=[item.value for item in listed],
                lines=[item.line for item in listed],
                user=request.user,
                input_file=draft["path"],
                input_name=draft["name"],
                idempotency_key=draft["key"],
            )
        except PromotionError as error:
            bulk_job_input_discard(path=draft["path"])
            messages.error(request, f"Nothing was started: {_refusal(error)}")
            return redirect(request.get_full_path())
        bulk_job_start(job=job)
        job.refresh_from_db()
        if job.status in (BulkJob.Status.DONE, BulkJob.Status.FAILED):
            messages.success(request, f"{job}: {job.get_status_display()}, {_progress_text(job)}.")
        else:
            messages.success(request, f"{job} started: follow its progress here.")
        return redirect("admin:wallets_bulkjob_change", job.pk)


@admin.register(BulkJobItem)
class BulkJobItemAdmin(ReadOnlyOrgScopedAdmin):
    org_lookup = "job__org_id"
    list_display = ["job", "line", "identifier", "customer_id", "status", "code", "message"]
    list_filter = ["status"]
