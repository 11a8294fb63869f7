"""What the admin pages of background jobs share (bulk jobs, promo code batches): a permission to run
them beside the permission to view them, the look-up of one job in the user's org, and the progress
bar of the lists (styles and live updates in wallets/bulk_jobs.css and wallets/bulk_job_progress.js)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils.html import format_html


class JobAdminMixin:
    """For a ModelAdmin of jobs: `run_permission` (an "app.codename") lets a user start, cancel and
    download them, and so see them; `job_noun` names one in a 404."""

    run_permission = ""
    job_noun = "job"

    class Media:
        css = {"all": ["wallets/bulk_jobs.css"]}
        js = ["wallets/bulk_job_progress.js"]

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm(self.run_permission)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self.has_run_permission(request)

    def _require_run_permission(self, request) -> None:
        if not self.has_run_permission(request):
            raise PermissionDenied

    def _job(self, request, job_id: int):
        """The job of the user's org with this id: 403 without view permission, 404 if there is none."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = self.get_queryset(request).filter(pk=job_id).first()
        if job is None:
            raise Http404(f"No such {self.job_noun}.")
        return job


def progress_bar(percent: int, text: str, *, failed: bool):
    """A list's small progress bar with its text."""
    return format_html(
        '<span class="bulk-job-bar small{}"><span style="width: {}%"></span></span> {}',
        " failed" if failed else "",
        percent,
        text,
    )
