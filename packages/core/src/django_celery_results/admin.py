"""Admin pages for task and group results."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery import current_app as celery_app
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import retention
from .cleanup import as_timedelta
from .conf import app_settings
from .models import GroupResult, TaskResult

__all__ = ["ALLOW_EDITS", "GroupResultAdmin", "TaskResultAdmin", "celery_app"]

logger = logging.getLogger(__name__)

#: ``DJANGO_CELERY_RESULTS['ALLOW_EDITS']``, read once at import time as upstream does.
ALLOW_EDITS: bool = app_settings().ALLOW_EDITS

if TYPE_CHECKING:
    _TaskResultAdminBase = admin.ModelAdmin[TaskResult]
    _GroupResultAdminBase = admin.ModelAdmin[GroupResult]
else:
    # Django's ModelAdmin cannot be subscripted at run time.
    _TaskResultAdminBase = _GroupResultAdminBase = admin.ModelAdmin

_FIELDSET_CLASSES = ("extrapretty", "wide")

#: ``TaskResult`` properties shown beside the stored dates (computed, never editable).
TIMELINE = ("waiting_time", "processing_time", "total_time")
#: Computed columns of the admin itself.
COMPUTED = ("expires",)


class TaskResultAdmin(_TaskResultAdminBase):
    """Admin-interface for results of tasks."""

    model = TaskResult
    date_hierarchy = "date_done"
    list_display = (
        "task_id",
        "periodic_task_name",
        "task_name",
        "date_done",
        "status",
        "worker",
        "queue",
        "waiting_time",
        "processing_time",
        "expires",
    )
    list_filter = ("status", "date_done", "periodic_task_name", "task_name", "worker")
    readonly_fields = (
        "date_created",
        "date_started",
        "date_done",
        "waiting_time",
        "processing_time",
        "total_time",
        "expires",
        "result",
        "meta",
    )
    search_fields = ("task_name", "task_id", "status", "task_args", "task_kwargs")
    # Result tables grow to millions of rows: skip the second, unfiltered COUNT(*) that the
    # changelist runs on every search or filter just to print "x of N".
    show_full_result_count = False
    actions = ["terminate_task"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "task_id",
                    "task_name",
                    "periodic_task_name",
                    "status",
                    "worker",
                    "queue",
                    "retries",
                    "content_type",
                    "content_encoding",
                ),
                "classes": _FIELDSET_CLASSES,
            },
        ),
        (
            _("Parameters"),
            {"fields": ("task_args", "task_kwargs"), "classes": _FIELDSET_CLASSES},
        ),
        (
            _("Result"),
            {
                "fields": (
                    "result",
                    "date_created",
                    "date_started",
                    "date_done",
                    "waiting_time",
                    "processing_time",
                    "total_time",
                    "expires",
                    "traceback",
                    "meta",
                ),
                "classes": _FIELDSET_CLASSES,
            },
        ),
    )

    def get_readonly_fields(
        self, request: HttpRequest, obj: TaskResult | None = None
    ) -> list[str] | tuple[str, ...]:
        """Return ``readonly_fields`` when ``ALLOW_EDITS`` is on, otherwise every field.

        ``model._meta.fields`` (not ``opts.local_fields``) also lists the inherited fields
        of a proxy model registered with this admin (upstream #489).
        """
        if ALLOW_EDITS:
            return self.readonly_fields
        return [field.name for field in self.model._meta.fields] + list(TIMELINE + COMPUTED)

    @admin.display(description=_("Expires"))
    def expires(self, obj: TaskResult) -> str:
        """When cleanup deletes the row, and by which retention rule (``RETENTION``)."""
        rule = retention.rule_for(app_settings().RETENTION, obj)
        if rule is None:
            name, keep = "result_expires", as_timedelta(celery_app.conf.result_expires)
        else:
            name, keep = rule.name, rule.keep
        if keep is None:
            return gettext("never (%(rule)s)") % {"rule": name}
        if obj.date_done is None:
            return "-"
        when = obj.date_done + keep
        if when <= timezone.now():
            return gettext("at the next cleanup (%(rule)s)") % {"rule": name}
        return gettext("in %(time)s (%(rule)s)") % {"time": timeuntil(when), "rule": name}

    @admin.action(description=_("Terminate selected tasks"))
    def terminate_task(self, request: HttpRequest, queryset: QuerySet[TaskResult]) -> None:
        """Ask the workers to terminate the selected tasks (``control.terminate``)."""
        task_ids = list(queryset.values_list("task_id", flat=True))
        try:
            celery_app.control.terminate(task_ids)
        except Exception as exc:  # any broker or connection error becomes an admin message
            logger.exception("Error while terminating tasks %s", task_ids)
            self.message_user(
                request,
                gettext("Error while terminating tasks: %(error)s") % {"error": exc},
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            gettext("%(count)d task(s) was terminated successfully.") % {"count": len(task_ids)},
            messages.SUCCESS,
        )


class GroupResultAdmin(_GroupResultAdminBase):
    """Admin-interface for results of grouped tasks."""

    model = GroupResult
    date_hierarchy = "date_done"
    list_display = ("group_id", "date_done")
    list_filter = ("date_done",)
    readonly_fields = ("date_created", "date_done", "result")
    search_fields = ("group_id",)
    # See TaskResultAdmin: no second full-table COUNT(*) on large tables.
    show_full_result_count = False


admin.site.register(TaskResult, TaskResultAdmin)
admin.site.register(GroupResult, GroupResultAdmin)
