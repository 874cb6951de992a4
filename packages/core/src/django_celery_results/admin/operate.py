"""The admin's actions on task results: a preview, then a job (``operations.jobs``).

Every action (retry, revoke, terminate, delete) shows a preview first: how many rows,
a sample, and what will happen. Confirming it fixes the rows and starts a job; a few
hand-picked rows are acted on at once, anything larger by a Celery task in the
background, whose progress the job's page shows.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..models import AdminJob, TaskResult
from ..operations import actions, jobs
from . import display, paging

if TYPE_CHECKING:
    _AdminJobAdminBase = admin.ModelAdmin[AdminJob]
else:
    _AdminJobAdminBase = admin.ModelAdmin

#: Rows a preview shows.
SAMPLE = 10
#: The form field that confirms a preview (its token).
CONFIRM = "dcr_confirm"

#: What each action does, for the preview.
EFFECTS = {
    "retry": _(
        "Each finished task is sent again as a new task, with the args and kwargs it was "
        "called with, to the queue it came from. The new task's row names the run it "
        "retries. Tasks without a stored call (STORE_CALLS) are skipped, and so are "
        "successful ones unless you tick the box below."
    ),
    "revoke": _(
        "Workers are told to skip these tasks. A task that has not started shows REVOKED "
        "at once; running and finished tasks are not stopped. Workers forget revokes when "
        "they restart unless they run with --statedb."
    ),
    "terminate": _(
        "Workers are told to skip these tasks and to send the chosen signal to the process "
        "running each one that has started. Finished tasks are skipped."
    ),
    "delete": _(
        "These task results are deleted from the database. The rolled-up history keeps "
        "counting them."
    ),
}
#: The admin action (``TaskResultAdmin``'s method) of each.
NAMES = {
    "retry": "retry_tasks",
    "revoke": "revoke_tasks",
    "terminate": "terminate_task",
    "delete": "delete_tasks",
}
LABELS = {
    "retry": _("Retry"),
    "revoke": _("Revoke"),
    "terminate": _("Terminate"),
    "delete": _("Delete"),
}


def preview(
    model_admin: Any, request: HttpRequest, queryset: QuerySet[TaskResult], action: str
) -> HttpResponse | None:
    """The preview of ``action`` on ``queryset``, or, once confirmed, the job it starts."""
    across = request.POST.get("select_across") == "1"
    options = _options(request, action)
    if request.POST.get(CONFIRM):
        return _confirmed(model_admin, request, queryset, action, options, across=across)
    counted = queryset.order_by()[: paging.COUNT_LIMIT + 1].count()
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("%(action)s task results") % {"action": LABELS[action]},
        "opts": model_admin.opts,
        "action": action,
        "action_label": LABELS[action],
        "action_name": NAMES[action],
        "effect": EFFECTS[action],
        "counted": min(counted, paging.COUNT_LIMIT),
        "more": counted > paging.COUNT_LIMIT,
        "sample": [
            {
                "row": row,
                "task": display.short_id(row.task_id),
                "badge": display.state_badge(row.status),
            }
            for row in queryset[:SAMPLE]
        ],
        "across": across,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "token": secrets.token_hex(16),
        "confirm_field": CONFIRM,
        "signals": actions.SIGNALS,
        "options": options,
        "media": model_admin.media,
    }
    return TemplateResponse(
        request, "admin/django_celery_results/taskresult/preview.html", context
    )


def _options(request: HttpRequest, action: str) -> dict[str, Any]:
    if action == "retry":
        return {"succeeded": request.POST.get("succeeded") == "1"}
    if action == "terminate":
        signal = request.POST.get("signal", "SIGTERM")
        return {"signal": signal if signal in actions.SIGNALS else "SIGTERM"}
    return {}


def _confirmed(
    model_admin: Any,
    request: HttpRequest,
    queryset: QuerySet[TaskResult],
    action: str,
    options: dict[str, Any],
    *,
    across: bool,
) -> HttpResponse:
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    query = request.GET.urlencode() if across else jobs.selection_query(selected)
    try:
        job, new = jobs.start(
            queryset,
            action=action,
            options=options,
            query=query or "",
            token=request.POST[CONFIRM][:32],
            user=request.user,
            # Hand-picked rows are the job's identity in full, not the ids it shows.
            scope=None if across else ",".join(sorted(selected)),
        )
    except jobs.TooMany as refused:
        model_admin.message_user(
            request,
            gettext(
                "More than %(n)s task results match: nothing was started. Filter the list "
                "further, or raise DJANGO_CELERY_RESULTS['ADMIN_ACTION_MAX_ROWS']."
            )
            % {"n": f"{refused.args[0]:,}"},
            messages.ERROR,
        )
        return HttpResponseRedirect(request.get_full_path())
    if not new:
        model_admin.message_user(
            request, gettext("This job was already started: here it is."), messages.WARNING
        )
    elif not across and job.total <= jobs.CHUNK:
        jobs.launch(job, inline=True)
    else:
        jobs.launch(job)
    return HttpResponseRedirect(
        reverse("admin:django_celery_results_adminjob_change", args=[job.pk])
    )


def has_action_permission(request: HttpRequest, action: str) -> bool:
    """Does the user hold ``action``'s own permission (``actions.PERMISSIONS``)?"""
    return bool(request.user.has_perm(f"django_celery_results.{actions.PERMISSIONS[action]}"))


class AdminJobAdmin(_AdminJobAdminBase):
    """The admin's jobs: read-only, with their progress and a Cancel button."""

    list_display = (
        "__str__",
        "state",
        "total",
        "done",
        "skipped",
        "failed",
        "username",
        "created_at",
    )
    list_filter = ("state", "action")
    fields = (
        "action", "state", "options", "query", "username", "total", "done", "skipped",
        "failed", "skipped_why", "error", "created_at", "finished_at",
    )  # fmt: skip
    readonly_fields = fields
    change_form_template = "admin/django_celery_results/adminjob/change_form.html"

    def has_view_permission(self, request: HttpRequest, obj: AdminJob | None = None) -> bool:
        """Whoever may view task results may follow the jobs on them."""
        return bool(request.user.has_perm("django_celery_results.view_taskresult"))

    def has_module_permission(self, request: HttpRequest) -> bool:
        """Listed in the admin's index for those who may view it."""
        return self.has_view_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Jobs are started from the task list's actions."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: AdminJob | None = None) -> bool:
        """A job is never edited (Cancel has its own URL and permission)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AdminJob | None = None) -> bool:
        """A job is a record: it is kept."""
        return False

    def get_urls(self) -> list[URLPattern]:
        """The jobs' pages, and Cancel (``admin:django_celery_results_adminjob_cancel``)."""
        view = self.admin_site.admin_view(self.cancel_view)
        own = [path("<int:job_id>/cancel/", view, name="django_celery_results_adminjob_cancel")]
        return own + super().get_urls()

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: AdminJob | None = None,
    ) -> HttpResponse:
        """The job, with its progress and, for who may run its action, Cancel."""
        if obj is not None:
            handled = obj.done + obj.skipped + obj.failed
            context.update(
                job=obj,
                percent=int(100 * handled / max(obj.total, 1)),
                skipped_reasons=jobs.skipped_reasons(obj),
                can_cancel=obj.state in ("queued", "running")
                and has_action_permission(request, obj.action),
                running=obj.state not in jobs.FINISHED,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def cancel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        """POST: ask the job to stop (needs its action's permission)."""
        job = get_object_or_404(AdminJob, pk=job_id)
        if request.method != "POST" or not has_action_permission(request, job.action):
            raise PermissionDenied
        if jobs.cancel(job):
            self.message_user(request, gettext("The job stops before its next chunk."))
        return HttpResponseRedirect(
            reverse("admin:django_celery_results_adminjob_change", args=[job.pk])
        )
