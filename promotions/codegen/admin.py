"""The admin of promo codes: the code list, the batch list and page (a progress bar like the bulk
jobs'), and the screens a CODE promotion's page links to: generate codes, upload codes, export codes.

Permissions: generating, uploading and cancelling need `promotions.change_promotion` (the marketer
who edits the promotion); the batch pages need view permission on batches (or change_promotion); the
export needs view permission on codes. Every page is scoped to the staff user's org (another org's
promotion or batch is a 404)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from promotions.audit import Actor
from promotions.codegen.forms import GenerateCodesForm, UploadCodesForm
from promotions.codegen.selectors import EXPORT_COLUMNS, promo_codes_export_rows
from promotions.codegen.services import (
    REPORT_COLUMNS,
    generation_params,
    promo_code_batch_cancel,
    promo_code_batch_generate,
    promo_codes_upload,
    upload_text,
)
from promotions.models import PromoCode, PromoCodeBatch, Promotion, PromotionType
from promotions_site.admin_jobs import JobAdminMixin, progress_bar
from promotions_site.admin_lists import EstimatedCountPaginator
from promotions_site.admin_scoping import ReadOnlyOrgScopedAdmin, sees_all_orgs, user_org_id
from promotions_site.csvexport import csv_lines
from promotions_site.errors import PromotionError
from promotions_site.uploads import uploads_over_cap

FINISHED = ("DONE", "FAILED", "CANCELLED")


def _percent(batch: PromoCodeBatch) -> int:
    return 100 if not batch.total else min(100, batch.done * 100 // batch.total)


def _progress_text(batch: PromoCodeBatch) -> str:
    text = f"{batch.done:,} of {batch.total:,} codes ({_percent(batch)}%)"
    return text + (f" · refused {batch.failed:,}" if batch.failed else "")


def _code_promotions(request):
    promotions = Promotion.objects.filter(type=PromotionType.CODE)
    return promotions if sees_all_orgs(request) else promotions.filter(org_id=user_org_id(request))


class CodePromotionFilter(admin.SimpleListFilter):
    title = "promotion"
    parameter_name = "promotion"

    def lookups(self, request, model_admin):
        return list(_code_promotions(request).order_by("name").values_list("pk", "name")[:200])

    def queryset(self, request, queryset):
        return queryset.filter(promotion_id=self.value()) if self.value() else queryset


class LinkedFilter(admin.SimpleListFilter):
    title = "linked to a customer"
    parameter_name = "linked"

    def lookups(self, request, model_admin):
        return [("yes", "Linked"), ("no", "Unlinked")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(customer__isnull=self.value() == "no")
        return queryset


@admin.register(PromoCode)
class PromoCodeAdmin(ReadOnlyOrgScopedAdmin):
    """Codes, searched by the whole code (any case: an exact look-up on the unique (org, code) index)."""

    list_display = ["code", "promotion", "customer_id", "linked_on", "active", "batch_id", "created_on"]
    list_columns = {
        "code": "code", "promotion": "promotionName", "customer_id": ("Linked customer", "customerId"),
        "linked_on": ("Linked on", None), "active": "active", "batch_id": ("Batch", "id (of its batch)"),
        "created_on": ("Created", "createdOn"),
    }  # fmt: skip
    list_filter = [CodePromotionFilter, LinkedFilter, "active"]
    list_select_related = ["promotion"]
    search_fields = ["code"]
    search_help_text = "The whole code (any case)."
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    fields = ["code", "promotion", "customer", "linked_on", "active", "batch", "created_on"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term or "\x00" in term:
            return queryset, False
        return queryset.filter(code=term), False


@admin.register(PromoCodeBatch)
class PromoCodeBatchAdmin(JobAdminMixin, ReadOnlyOrgScopedAdmin):
    run_permission = "promotions.change_promotion"
    job_noun = "batch"

    list_display = ["__str__", "promotion", "kind", "status", "progress_display", "created_by", "created_at"]
    list_columns = {
        "__str__": ("Batch", "id"), "promotion": "promotionId", "kind": ("Generated or uploaded", "kind"),
        "status": "status", "progress_display": ("Progress", "done, total, failed"), "created_by": None,
        "created_at": ("Started", "createdOn"),
    }  # fmt: skip
    list_filter = ["kind", "status"]
    list_select_related = ["promotion"]
    fields = [
        "promotion",
        "kind",
        "request_id",
        "params",
        "status",
        "total",
        "done",
        "failed",
        "error",
        "created_by",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    @admin.display(description="Progress")
    def progress_display(self, batch: PromoCodeBatch):
        return progress_bar(
            _percent(batch), _progress_text(batch), failed=batch.status == PromoCodeBatch.Status.FAILED
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, object_id)
        extra_context = {
            **(extra_context or {}),
            "progress_text": _progress_text(batch) if batch else "",
            "percent": _percent(batch) if batch else 0,
            "can_run": self.has_run_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- URLs ---------------------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "generate/<str:promotion_id>/",
                view(self.generate_view),
                name="promotions_promocodebatch_generate",
            ),
            path(
                "upload/<str:promotion_id>/", view(self.upload_view), name="promotions_promocodebatch_upload"
            ),
            path(
                "export/<str:promotion_id>/", view(self.export_view), name="promotions_promocodebatch_export"
            ),
            path(
                "<int:batch_id>/progress/",
                view(self.progress_view),
                name="promotions_promocodebatch_progress",
            ),
            path("<int:batch_id>/report/", view(self.report_view), name="promotions_promocodebatch_report"),
            path("<int:batch_id>/cancel/", view(self.cancel_view), name="promotions_promocodebatch_cancel"),
            *super().get_urls(),
        ]

    def progress_view(self, request, batch_id: int):
        """The batch page's progress bar polls this every second until the batch finishes."""
        batch = self._job(request, batch_id)
        return JsonResponse(
            {
                "id": batch.pk,
                "status": batch.status,
                "total": batch.total,
                "done": batch.done,
                "failed": batch.failed,
                "percent": _percent(batch),
                "text": _progress_text(batch),
                "error": batch.error,
                "finished": batch.status in FINISHED,
            }
        )

    def report_view(self, request, batch_id: int):
        """An upload's refused rows (line, code, errorCode, reason) as CSV."""
        batch = self._job(request, batch_id)
        rows = ([entry.get(column) for column in REPORT_COLUMNS] for entry in batch.report)
        response = StreamingHttpResponse(
            csv_lines(REPORT_COLUMNS, rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="code-batch-{batch.pk}-refused.csv"'
        return response

    def cancel_view(self, request, batch_id: int):
        self._require_run_permission(request)
        batch = self._job(request, batch_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            promo_code_batch_cancel(batch=batch, actor=Actor.for_user(request.user))
        except PromotionError as error:
            messages.error(request, f"{error.message} (code {int(error.code)})")
        else:
            messages.success(request, "The batch is cancelled; the codes it wrote stay.")
        return redirect("admin:promotions_promocodebatch_change", batch.pk)

    def export_view(self, request, promotion_id: str):
        """The promotion's codes as CSV, streamed page by page."""
        if not request.user.has_perm("promotions.view_promocode"):
            raise PermissionDenied
        promotion = get_object_or_404(_code_promotions(request), pk=promotion_id)
        response = StreamingHttpResponse(
            csv_lines(EXPORT_COLUMNS, promo_codes_export_rows(promotion=promotion)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="promo-codes-{promotion.pk}.csv"'
        return response

    # --- generate and upload ------------------------------------------------------------------------

    def generate_view(self, request, promotion_id: str):
        self._require_run_permission(request)
        promotion = get_object_or_404(_code_promotions(request), pk=promotion_id)
        posted = request.method == "POST"
        form = GenerateCodesForm(
            request.POST if posted else None,
            initial={"length": 10, "request_id": GenerateCodesForm.new_request_id()},
        )
        if posted and form.is_valid():
            data = form.cleaned_data
            try:
                batch = promo_code_batch_generate(
                    promotion=promotion,
                    params=generation_params(
                        count=data["count"],
                        length=data["length"],
                        charset=data["charset"],
                        alphabet=data["alphabet"],
                        prefix=data["prefix"],
                        suffix=data["suffix"],
                        pattern=data["pattern"],
                    ),
                    request_id=data["request_id"],
                    actor=Actor.for_user(request.user),
                )
            except PromotionError as error:
                form.add_error(None, f"{error.message} (code {int(error.code)})")
            else:
                messages.success(request, f"{batch.total:,} codes asked for: the bar shows their progress.")
                return redirect("admin:promotions_promocodebatch_change", batch.pk)
        return self._render_form(request, form, promotion, title=f"Generate codes for “{promotion.name}”")

    def upload_view(self, request, promotion_id: str):
        self._require_run_permission(request)
        promotion = get_object_or_404(_code_promotions(request), pk=promotion_id)
        posted = request.method == "POST"
        form = UploadCodesForm(
            request.POST if posted else None,
            request.FILES if posted else None,
            initial={"request_id": GenerateCodesForm.new_request_id()},
            oversized=uploads_over_cap(request),
        )
        if posted and form.is_valid():
            upload = form.cleaned_data["csv_file"]
            try:
                text = upload_text(upload.read())
            except UnicodeDecodeError:
                form.add_error("csv_file", "The file is not UTF-8 text.")
            else:
                try:
                    batch = promo_codes_upload(
                        promotion=promotion,
                        file=text,
                        file_name=upload.name,
                        request_id=form.cleaned_data["request_id"],
                        actor=Actor.for_user(request.user),
                    )
                except PromotionError as error:
                    form.add_error(None, f"{error.message} (code {int(error.code)})")
                else:
                    messages.success(
                        request,
                        f"{batch.done:,} codes added, {batch.failed:,} rows refused (see the report).",
                    )
                    return redirect("admin:promotions_promocodebatch_change", batch.pk)
        return self._render_form(request, form, promotion, title=f"Upload codes for “{promotion.name}”")

    def _render_form(self, request, form, promotion, *, title: str):
        adminform = helpers.AdminForm(form, [(None, {"fields": list(form.fields)})], {})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "adminform": adminform,
            "form": form,
            "errors": helpers.AdminErrorList(form, []),
            "promotion": promotion,
            "media": self.media + adminform.media,
            "cancel_url": reverse("admin:promotions_promotion_change", args=[promotion.pk]),
        }
        return TemplateResponse(request, "admin/promotions/promocodebatch/code_form.html", context)
