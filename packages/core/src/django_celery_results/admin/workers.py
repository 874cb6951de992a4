"""The worker registry in the admin: every registered worker, live, silent or stopped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery import states
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import TaskResult, Worker
from ..workers.clock import DatabaseNow
from ..workers.display import pool_name, queue_names
from ..workers.status import state_of
from . import display

ZERO = timedelta(0)
#: How far a worker's clock (``date_done``) may be behind the database's (``started_at``).
CLOCK_SLACK = timedelta(minutes=5)

if TYPE_CHECKING:
    _WorkerAdminBase = admin.ModelAdmin[Worker]
else:
    _WorkerAdminBase = admin.ModelAdmin


class WorkerAdmin(_WorkerAdminBase):
    """Read-only: the workers write these rows themselves (``workers.heartbeat``)."""

    model = Worker
    list_display = (
        "hostname", "state", "heartbeat", "started", "pool_name", "concurrency", "queue_names",
        "host", "pid",
    )  # fmt: skip
    list_filter = ("host",)
    search_fields = ("hostname",)
    ordering = ("-heartbeat_at",)
    fields = (
        "hostname", "state", "heartbeat", "started", "stopped", "host", "pid", "pool",
        "concurrency", "queue_names", "versions", "writes_retried", "writes_lost",
    )  # fmt: skip
    readonly_fields = fields
    change_form_template = "admin/django_celery_results/worker/change_form.html"

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Worker | None = None,
    ) -> HttpResponse:
        """The worker, then its running tasks and its latest finished ones."""
        if obj is not None:
            context.update(worker_tasks(obj, obj.now))  # type: ignore[attr-defined]
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        """Each row with the database's clock: states and ages are by its time."""
        return super().get_queryset(request).annotate(now=DatabaseNow())

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Workers register themselves."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Only a worker writes its row."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Cleanup forgets silent workers; nobody deletes a row by hand."""
        return False

    @admin.display(description=_("State"))
    def state(self, obj: Worker) -> SafeString:
        """Live, silent (missed three heartbeats) or stopped (a warm shutdown)."""
        status = state_of(obj, obj.now)  # type: ignore[attr-defined]
        return display.state_badge(status.state, display.WORKER_STATE_CLASSES)

    @admin.display(description=_("Last heartbeat"), ordering="heartbeat_at")
    def heartbeat(self, obj: Worker) -> str:
        """How long ago, by the database's clock."""
        status = state_of(obj, obj.now)  # type: ignore[attr-defined]
        return _("%(duration)s ago") % {"duration": display.duration(status.age)}

    @admin.display(description=_("Started"), ordering="started_at")
    def started(self, obj: Worker) -> str:
        """``started_at``, to the second."""
        return display.to_the_second(obj.started_at)

    @admin.display(description=_("Stopped"))
    def stopped(self, obj: Worker) -> str:
        """``stopped_at``, to the second ("-" while it runs)."""
        return display.to_the_second(obj.stopped_at) or "-"

    @admin.display(description=_("Pool"), ordering="pool")
    def pool_name(self, obj: Worker) -> str:
        """Celery's pools by their module (``prefork``, ``thread``…); others by class name."""
        return pool_name(obj.pool)

    @admin.display(description=_("Queues"))
    def queue_names(self, obj: Worker) -> str:
        """The queues it consumes (a queue bound several times, once)."""
        return ", ".join(queue_names(obj.queues))

    @admin.display(description=_("Versions"))
    def versions(self, obj: Worker) -> str:
        """Its software's versions."""
        return ", ".join(
            f"{name} {version}" for name, version in _loaded(obj.software, {}).items()
        )


def _loaded(text: str, default: Any) -> Any:
    """A JSON column, or ``default`` when it is unreadable (one bad row never fails a page)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


#: Tasks listed on a worker's page, at most, running and finished each.
WORKER_PAGE_TASKS = 50


def worker_tasks(worker: Worker, now: datetime) -> dict[str, Any]:
    """A worker life's running tasks and its latest finished ones, for its page.

    Running: its ``worker`` column (``result_extended``), or this life's ``lifeline``.
    Finished: those naming it (``result_extended``) since this life started.
    """
    table = TaskResult._default_manager.using(worker._state.db)
    started = table.filter(status=states.STARTED)
    mine = Q(worker=worker.hostname)
    if worker.boot:
        mine |= Q(lifeline__startswith=worker.boot)
    running = started.filter(mine).order_by("date_done")[:WORKER_PAGE_TASKS]
    # This life's, read back along the date_done index no further than its start.
    recent = table.filter(
        worker=worker.hostname,
        status__in=states.READY_STATES,
        date_done__gte=worker.started_at - CLOCK_SLACK,
    ).order_by("-date_done")[:WORKER_PAGE_TASKS]
    return {
        "running_tasks": [
            {"task": task, "badge": display.state_badge(task.status),
             "for": display.duration(max(now - (task.date_started or task.date_done), ZERO))}
            for task in running
        ],
        "recent_tasks": [
            {"task": task, "badge": display.state_badge(task.status),
             "took": display.duration(task.date_done - task.date_started)
             if task.date_started else "-"}
            for task in recent
        ],
        "page_tasks": WORKER_PAGE_TASKS,
    }  # fmt: skip
