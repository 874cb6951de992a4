"""Admin pages for task and group results: read-only by default, usable at any size."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from celery import current_app as celery_app
from celery.states import READY_STATES
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.timesince import timeuntil
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .. import retention
from ..cleanup import as_timedelta
from ..conf import app_settings
from ..history.rollup import catch_up
from ..models import AdminJob, GroupResult, TaskResult, Worker
from ..operations import actions as operations
from . import dashboard, display, filters, groups, operate, paging, search, summary
from .operate import AdminJobAdmin
from .workers import WorkerAdmin

__all__ = [
    "ALLOW_EDITS",
    "AdminJobAdmin",
    "GroupResultAdmin",
    "TaskResultAdmin",
    "WorkerAdmin",
    "celery_app",
]

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
#: Computed columns and fields of the admin itself.
COMPUTED = (
    "expires",
    "task",
    "name",
    "worker_name",
    "state",
    "exception",
    "done",
    "waiting",
    "processing",
    "times",
    "timeline",
    "args",
    "kwargs",
    "result_data",
    "meta_data",
    "traceback_text",
)


class TaskResultAdmin(_TaskResultAdminBase):
    """Admin-interface for results of tasks: read-only unless ``ALLOW_EDITS``, at any size.

    Nothing here reads the whole table: counts are estimated or bounded and deep pages
    follow a keyset (``paging``), filters take their choices from recent rows
    (``filters``), search looks ids and name prefixes up in indexes (``search``).
    """

    model = TaskResult
    # Fits 1400 pixels beside the admin's navigation and the filters, in Russian too: the
    # periodic task shows under the task name, the queue under the worker, the retention
    # rule on the detail page.
    list_display = (
        "task",
        "name",
        "state",
        "exception",
        "done",
        "worker_name",
        "times",
    )
    list_display_links = ("task",)
    list_filter = (
        filters.StatusFilter,
        "date_done",
        filters.TaskNameFilter,
        filters.PeriodicTaskNameFilter,
        filters.WorkerFilter,
        filters.QueueFilter,
        filters.ExceptionTypeFilter,
    )
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
    # The search box; what a term finds is ``search.search``'s (index lookups only).
    search_fields = ("task_id", "task_name", "periodic_task_name", "worker", "exception_type")
    search_help_text = _(
        "A task id, or the start of a task name, periodic task name, worker or exception type."
    )
    # Result tables grow to millions of rows: skip the second, unfiltered COUNT(*) that the
    # changelist runs on every search or filter just to print "x of N".
    show_full_result_count = False
    # "Show counts" would count every filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    # Sort only where an index serves the order (the rest would sort the whole table).
    sortable_by = ("task", "done")
    paginator = paging.ResultPaginator
    # Each shows a preview, then runs as a job (``operate``); each has its own permission.
    actions = ["retry_tasks", "revoke_tasks", "terminate_task", "delete_tasks"]
    #: The fieldsets with ``ALLOW_EDITS`` on: the stored columns, as upstream's admin edits them.
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
    #: The fieldsets of the read-only detail page: decoded values and the timeline.
    read_only_fieldsets = (
        (
            None,
            {
                "fields": (
                    "task_id",
                    "task_name",
                    "periodic_task_name",
                    "state",
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
            _("Timeline"),
            {"fields": ("timeline", "expires"), "classes": _FIELDSET_CLASSES},
        ),
        (
            _("Parameters"),
            {"fields": ("args", "kwargs"), "classes": _FIELDSET_CLASSES},
        ),
        (
            _("Result"),
            {
                "fields": ("result_data", "traceback_text", "meta_data"),
                "classes": _FIELDSET_CLASSES,
            },
        ),
    )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list; 400 for a query string no database can run (``paging.refused_query``).

        A search that finds nothing suggests the task names that contain its term.
        """
        refused = paging.refused_query(request)
        if refused is not None:
            return refused
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        changelist = (context or {}).get("cl")
        if changelist is not None and changelist.query and not changelist.result_count:
            database = changelist.queryset.db
            context["suggestions"] = search.suggested_names(database, changelist.query)  # type: ignore[index]
        return response

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: TaskResult | None = None,
    ) -> HttpResponse:
        """The task, with a summary on top and its name and id as the heading."""
        if obj is not None and not ALLOW_EDITS:
            try:
                context["summary"] = summary.summary(obj, timezone.now())
            except Exception:  # one unreadable row never takes its page down
                logger.exception("The summary of task %s could not be read", obj.task_id)
            context["subtitle"] = f"{obj.task_name or gettext('Task')} {obj.task_id}"
            context["buttons"] = self.buttons(request, obj)
            context["runs"] = summary.runs(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def buttons(self, request: HttpRequest, task: TaskResult) -> list[dict[str, Any]]:
        """The detail page's actions the user may take on ``task``, and why others can't."""
        shown = []
        for action, name in operate.NAMES.items():
            allowed = (
                self.has_delete_permission(request, task)
                if action == "delete"
                else operate.has_action_permission(request, action)
            )
            if not allowed:
                continue
            why = None
            if action == "retry":
                code = operations.why_not_retried(task, celery_app, succeeded=True)
                why = operations.SKIPPED.get(code, code) if code else None
            elif action in ("revoke", "terminate") and task.status in READY_STATES:
                why = operations.SKIPPED["finished"]
            shown.append({"action": name, "label": operate.LABELS[action], "why_not": why})
        return shown

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        """The list with keyset pages past the numbered ones (``?before=``)."""
        return paging.ResultChangeList

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        """Delete one row, after the history counted it."""
        catch_up(obj._state.db, wait=True, only=Q(pk=obj.pk))
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """Delete the selected rows, after the history counted them."""
        catch_up(queryset.db, wait=True, only=Q(pk__in=queryset.values("pk")))
        super().delete_queryset(request, queryset)

    def get_urls(self) -> list[URLPattern]:
        """The model's pages, and the dashboard (``admin:django_celery_results_dashboard``)."""
        view = self.admin_site.admin_view(partial(dashboard.dashboard_view, self))
        own = [path("dashboard/", view, name="django_celery_results_dashboard")]
        return own + super().get_urls()

    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        """The actions, without Django's ``delete_selected`` (``delete_tasks`` replaces it).

        ``action_location`` is Django 6.1's (the list, or the change form); 5.2 has none.
        """
        if action_location is None:
            found = super().get_actions(request)
        else:
            found = super().get_actions(request, action_location=action_location)  # type: ignore[call-arg]
        found.pop("delete_selected", None)
        return found

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[TaskResult], search_term: str
    ) -> tuple[QuerySet[TaskResult], bool]:
        """Find ``search_term`` through indexes only (``search.search``); no duplicates."""
        scan_args = app_settings().ADMIN_SEARCH_ARGS
        return search.search(queryset, search_term, scan_args=scan_args), False

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Results are written by workers: adding one by hand needs ``ALLOW_EDITS``."""
        return ALLOW_EDITS and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: TaskResult | None = None) -> bool:
        """Without ``ALLOW_EDITS`` the detail page is for viewing: no save buttons."""
        return ALLOW_EDITS and super().has_change_permission(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: TaskResult | None = None) -> Any:
        """The stored columns with ``ALLOW_EDITS``, else the decoded, read-only view."""
        if ALLOW_EDITS:
            return super().get_fieldsets(request, obj)
        return self.read_only_fieldsets

    # -- the list's columns --------------------------------------------------------------

    @admin.display(description=_("Task ID"), ordering="task_id")
    @display.guarded
    def task(self, obj: TaskResult) -> SafeString:
        """The id, short; the whole id on hover."""
        return display.short_id(obj.task_id)

    @admin.display(description=_("Task Name"), ordering="task_name")
    @display.guarded
    def name(self, obj: TaskResult) -> SafeString:
        """The task name, and the periodic task that sent it in small print."""
        return display.breakable(obj.task_name, obj.periodic_task_name)

    @admin.display(description=_("Worker"), ordering="worker")
    @display.guarded
    def worker_name(self, obj: TaskResult) -> SafeString:
        """The worker's node name (it may wrap after its ``@``), the queue in small print."""
        return display.breakable(obj.worker, obj.queue)

    @admin.display(description=_("State"), ordering="status")
    @display.guarded
    def state(self, obj: TaskResult) -> SafeString:
        """The state as a coloured badge."""
        return display.state_badge(obj.status)

    @admin.display(description=_("Exception"))
    @display.guarded
    def exception(self, obj: TaskResult) -> SafeString:
        """A failure's exception type, by its class name (the module on hover)."""
        return display.exception_name(obj.exception_type)

    @admin.display(description=_("Done"), ordering="date_done")
    @display.guarded
    def done(self, obj: TaskResult) -> SafeString:
        """``date_done`` to the second (the date only for rows of earlier days)."""
        return display.when_done(obj.date_done)

    @admin.display(description=_("Waited · ran"))
    @display.guarded
    def times(self, obj: TaskResult) -> str:
        """How long it waited, then how long it ran (one column: the list fits 1440 px)."""
        return f"{display.duration(obj.waiting_time)} · {display.duration(obj.processing_time)}"

    @admin.display(description=_("Waiting"))
    @display.guarded
    def waiting(self, obj: TaskResult) -> str:
        """Sent (or first written) to started, for people."""
        return display.duration(obj.waiting_time)

    @admin.display(description=_("Processing"))
    @display.guarded
    def processing(self, obj: TaskResult) -> str:
        """Started to done, for people."""
        return display.duration(obj.processing_time)

    # -- the detail page -----------------------------------------------------------------

    @admin.display(description=_("Timeline"))
    @display.guarded
    def timeline(self, obj: TaskResult) -> SafeString:
        """Created → started → done, to the millisecond, with the spans between."""
        return display.timeline(obj)

    @admin.display(description=_("Task Positional Arguments"))
    @display.guarded
    def args(self, obj: TaskResult) -> SafeString:
        """The arguments as Celery recorded them (``repr()``, in a JSON string)."""
        return display.decoded(obj.task_args)

    @admin.display(description=_("Task Named Arguments"))
    @display.guarded
    def kwargs(self, obj: TaskResult) -> SafeString:
        """The keyword arguments as Celery recorded them."""
        return display.decoded(obj.task_kwargs)

    @admin.display(description=_("Result Data"))
    @display.guarded
    def result_data(self, obj: TaskResult) -> SafeString:
        """The result, decoded with the row's own serializer when that is JSON."""
        return display.decoded(obj.result, obj.content_type)

    @admin.display(description=_("Task Meta Information"))
    @display.guarded
    def meta_data(self, obj: TaskResult) -> SafeString:
        """The meta (children, and a custom state's fields), as indented JSON.

        A stored call (``STORE_CALLS``) shows only as a note of its size.
        """
        return display.decoded(
            display.meta_without_call(obj.meta, obj.content_type), obj.content_type
        )

    @admin.display(description=_("Traceback"))
    @display.guarded
    def traceback_text(self, obj: TaskResult) -> SafeString:
        """The traceback, preformatted."""
        return display.preformatted(obj.traceback)

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
    @display.guarded
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
        try:
            when = obj.date_done + keep
        except OverflowError:  # a date_done near the year 9999: past the calendar's end
            return gettext("not before the year 9999 (%(rule)s)") % {"rule": name}
        if when <= timezone.now():
            return gettext("at the next cleanup (%(rule)s)") % {"rule": name}
        return gettext("in %(time)s (%(rule)s)") % {"time": timeuntil(when, depth=1), "rule": name}

    def has_retry_permission(self, request: HttpRequest) -> bool:
        """Retrying sends tasks again: it needs ``retry_taskresult``."""
        return operate.has_action_permission(request, "retry")

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        """Revoking acts on the workers: it needs ``revoke_taskresult``."""
        return operate.has_action_permission(request, "revoke")

    def has_terminate_permission(self, request: HttpRequest) -> bool:
        """Terminating tasks acts on the workers: it needs ``terminate_taskresult``."""
        return operate.has_action_permission(request, "terminate")

    @admin.action(description=_("Retry selected tasks…"), permissions=["retry"])
    def retry_tasks(self, request: HttpRequest, queryset: QuerySet[TaskResult]) -> Any:
        """Preview, then send the selected finished tasks again (``operations.actions.retry``)."""
        return operate.preview(self, request, queryset, "retry")

    @admin.action(description=_("Revoke selected tasks…"), permissions=["revoke"])
    def revoke_tasks(self, request: HttpRequest, queryset: QuerySet[TaskResult]) -> Any:
        """Preview, then revoke the selected unfinished tasks."""
        return operate.preview(self, request, queryset, "revoke")

    @admin.action(description=_("Terminate selected tasks"), permissions=["terminate"])
    def terminate_task(self, request: HttpRequest, queryset: QuerySet[TaskResult]) -> Any:
        """Preview, then revoke the selected tasks and signal the processes running them.

        Called as upstream's tests and code call it (not from the list's form), it
        terminates the tasks at once, as upstream's did.
        """
        if "action" in request.POST:
            return operate.preview(self, request, queryset, "terminate")
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

    @admin.action(description=_("Delete selected task results…"), permissions=["delete"])
    def delete_tasks(self, request: HttpRequest, queryset: QuerySet[TaskResult]) -> Any:
        """Preview, then delete the selected results (the history keeps counting them)."""
        return operate.preview(self, request, queryset, "delete")


class GroupResultAdmin(_GroupResultAdminBase):
    """Admin-interface for results of grouped tasks."""

    model = GroupResult
    list_display = ("group_id", "done")
    list_filter = ("date_done",)
    readonly_fields = ("created", "done", "result")
    #: The detail page: the dates through ``display`` (a stored date past the calendar's
    #: end has no local time; Django's own rendering would fail the page).
    fields = ("group_id", "created", "done", "content_type", "content_encoding", "result")
    search_fields = ("group_id",)

    @admin.display(description=_("Created DateTime"), ordering="date_created")
    @display.guarded
    def created(self, obj: GroupResult) -> str:
        """``date_created``, to the millisecond."""
        return display.with_milliseconds(obj.date_created)

    @admin.display(description=_("Completed DateTime"), ordering="date_done")
    @display.guarded
    def done(self, obj: GroupResult) -> SafeString:
        """``date_done`` to the second (the date only for rows of earlier days)."""
        return display.when_done(obj.date_done)

    # See TaskResultAdmin: no COUNT(*) over a large table, no OFFSET deep into it.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = paging.ResultPaginator
    change_form_template = "admin/django_celery_results/groupresult/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Groups are saved by the app that runs them: adding one needs ``ALLOW_EDITS``."""
        return ALLOW_EDITS and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: GroupResult | None = None) -> bool:
        """Without ``ALLOW_EDITS`` the detail page is for viewing: no save buttons."""
        return ALLOW_EDITS and super().has_change_permission(request, obj)

    def get_readonly_fields(
        self, request: HttpRequest, obj: GroupResult | None = None
    ) -> tuple[str, ...]:
        """Every field, unless ``ALLOW_EDITS`` is on."""
        return self.readonly_fields if ALLOW_EDITS else self.fields

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: GroupResult | None = None,
    ) -> HttpResponse:
        """The group, then its members with their states, and how far it is."""
        if obj is not None:
            listed = groups.members(obj)
            context.update(
                members=[
                    {
                        "task_id": task_id,
                        "row": row,
                        "badge": display.state_badge(row.status if row else "PENDING"),
                    }
                    for task_id, row in listed.rows
                ],
                progress=listed,
                max_members=groups.MAX_MEMBERS,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[GroupResult], search_term: str
    ) -> tuple[QuerySet[GroupResult], bool]:
        """A group id, looked up exactly in the unique index (not ``icontains``)."""
        term = search_term.strip()
        return (queryset.filter(group_id=term) if term else queryset), False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The list; 400 for a query string no database can run (``paging.refused_query``)."""
        return paging.refused_query(request) or super().changelist_view(request, extra_context)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        """The list with keyset pages past the numbered ones (``?before=``)."""
        return paging.ResultChangeList


admin.site.register(TaskResult, TaskResultAdmin)
admin.site.register(GroupResult, GroupResultAdmin)
admin.site.register(Worker, WorkerAdmin)
admin.site.register(AdminJob, AdminJobAdmin)
