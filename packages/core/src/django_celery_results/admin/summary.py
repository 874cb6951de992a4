"""The top of a task's detail page: what happened, how long it took, and what it links to."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import states
from django.utils.safestring import SafeString

from ..models import GroupResult, TaskResult, Worker
from ..workers import life
from . import display

#: Children linked at most.
MAX_CHILDREN = 100


@dataclass
class Summary:
    """A task row, read for people; every part may be missing, none raises."""

    state: str
    task_name: str
    #: The exception's type and message of a FAILURE stored as JSON.
    exception: str = ""
    message: str = ""
    waited: timedelta | None = None
    ran: timedelta | None = None
    #: How long a running task has run, by the database's clock.
    running_for: timedelta | None = None
    #: The lifeline marked the task awaiting its broker's redelivery (its worker was lost).
    awaiting_redelivery: bool = False
    #: ``(task id, primary key or None)`` of the child tasks Celery stored.
    children: list[tuple[str, int | None]] = field(default_factory=list)
    #: The worker's registry row (its latest life), for a link.
    worker_id: int | None = None
    #: ``(group id, primary key or None)`` of its group, and of its parent task.
    group: tuple[str, int | None] | None = None
    parent: tuple[str, int | None] | None = None

    @property
    def badge(self) -> SafeString:
        """The state as a coloured badge."""
        return display.state_badge(self.state)

    @property
    def times(self) -> dict[str, str]:
        """The durations as people read them ("-" where unknown)."""
        return {
            "waited": display.duration(self.waited),
            "ran": display.duration(self.ran),
            "running_for": display.duration(self.running_for),
        }


def summary(task: TaskResult, now: datetime) -> Summary:
    """What the top of ``task``'s page shows."""
    found = Summary(task.status, task.task_name or "")
    if task.status == states.FAILURE:
        found.exception, found.message = exception_of(task)
    if task.status in states.READY_STATES:
        found.waited, found.ran = task.waiting_time, task.processing_time
    elif task.date_started is not None:
        found.waited = task.waiting_time
        found.running_for = max(now - task.date_started, timedelta(0))
    line = life.parse(task.lifeline)
    found.awaiting_redelivery = line is not None and line.mark == life.AWAITING
    database = task._state.db
    meta = stored_meta(task)
    ids = child_ids(meta)
    if ids:
        table = TaskResult._default_manager.using(database)
        keys = dict(table.filter(task_id__in=ids).values_list("task_id", "pk"))
        found.children = [(child, keys.get(child)) for child in ids]
    group_id, parent_id = meta.get("group_id"), meta.get("parent_id")
    if isinstance(group_id, str) and group_id:
        saved = GroupResult._default_manager.using(database).filter(group_id=group_id)
        found.group = (group_id, saved.values_list("pk", flat=True).first())
    if isinstance(parent_id, str) and parent_id:
        rows = TaskResult._default_manager.using(database).filter(task_id=parent_id)
        found.parent = (parent_id, rows.values_list("pk", flat=True).first())
    if task.worker:
        registry = Worker._default_manager.using(database).filter(hostname=task.worker)
        found.worker_id = registry.order_by("-heartbeat_at").values_list("pk", flat=True).first()
    return found


def exception_of(task: TaskResult) -> tuple[str, str]:
    """A JSON FAILURE's exception type and message; the type column alone otherwise."""
    kind = task.exception_type or ""
    if task.content_type != "application/json" or not task.result:
        return kind, ""
    try:
        stored = json.loads(task.result)
    except (ValueError, RecursionError):
        return kind, ""
    if not isinstance(stored, dict):
        return kind, ""
    message = stored.get("exc_message")
    if isinstance(message, list | tuple):
        message = ", ".join(str(part) for part in message)
    return kind or str(stored.get("exc_type") or ""), str(message or "")


def stored_meta(task: TaskResult) -> dict[str, Any]:
    """The row's meta, read as JSON (which runs no code: pickle stays undecoded), or empty."""
    if not task.meta:
        return {}
    try:
        meta = json.loads(task.meta)
    except (ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def child_ids(meta: dict[str, Any]) -> list[str]:
    """The ids of the child tasks Celery stored in a row's meta (``stored_meta``)."""
    try:
        children = meta.get("children") or []
        ids = []
        for child in children[:MAX_CHILDREN]:
            node = child[0] if isinstance(child, list | tuple) else child
            head = node[0] if isinstance(node, list | tuple) else node
            if isinstance(head, str):
                ids.append(head)
        return ids
    except (ValueError, TypeError, IndexError, RecursionError, AttributeError):
        return []


#: Retries of one run linked at most.
MAX_RETRIES = 50


@dataclass
class Runs:
    """A task's other runs: the run it retries, and its retries (the admin's Retry)."""

    #: ``(task id, primary key or None)`` of the run this one retries.
    retry_of: tuple[str, int | None] | None = None
    #: ``(task id, primary key, badge)`` of the runs that retry this one, newest first.
    retries: list[tuple[str, int, SafeString]] = field(default_factory=list)


def runs(task: TaskResult) -> Runs:
    """The runs linked to ``task`` (two index lookups)."""
    table = TaskResult._default_manager.using(task._state.db)
    found = Runs()
    if task.retry_of:
        earlier = table.filter(task_id=task.retry_of).values_list("pk", flat=True).first()
        found.retry_of = (task.retry_of, earlier)
    later = table.filter(retry_of=task.task_id).order_by("-pk")[:MAX_RETRIES]
    found.retries = [
        (task_id, pk, display.state_badge(state))
        for task_id, pk, state in later.values_list("task_id", "pk", "status")
    ]
    return found
