"""The worker registry in the admin: every registered worker, live, silent or stopped."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.db.models.functions import Now
from django.http import HttpRequest
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..models import Worker
from ..workers.status import state_of
from . import display

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
        "concurrency", "queue_names", "versions",
    )  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Worker]:
        """Each row with the database's clock: states and ages are by its time."""
        return super().get_queryset(request).annotate(now=Now())

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
        return f"{display.duration(status.age)} ago"

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
        module, _dot, name = obj.pool.rpartition(".")
        return module.rsplit(".", 1)[-1] if name == "TaskPool" else name

    @admin.display(description=_("Queues"))
    def queue_names(self, obj: Worker) -> str:
        """The queues it consumes."""
        return ", ".join(_loaded(obj.queues, []))

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
