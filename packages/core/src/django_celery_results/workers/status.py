"""Whether a registered worker is live, silent or stopped: its heartbeat's age, by the DB's clock.

A worker is *live* while its last heartbeat is younger than :data:`MISSED_BEATS`
heartbeat intervals, *silent* past that (lost, or cut off from the database), and
*stopped* once a warm shutdown said so. Silent is not yet gone: the lifeline (issue 36)
decides that, with its own grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models.functions import Now

from ..conf import app_settings
from ..models import Worker

#: Heartbeats a live worker may miss before it reads as silent.
MISSED_BEATS = 3
LIVE, SILENT, STOPPED = "live", "silent", "stopped"
STATES = (LIVE, SILENT, STOPPED)


@dataclass(frozen=True)
class WorkerStatus:
    """A registered worker, its state and its heartbeat's age."""

    worker: Worker
    state: str
    age: timedelta


def silent_after(interval: float | None = None) -> timedelta:
    """How old a heartbeat may be for its worker to still read as live."""
    seconds = app_settings().WORKER_HEARTBEAT if interval is None else interval
    return timedelta(seconds=MISSED_BEATS * seconds)


def state_of(worker: Worker, now: datetime, interval: float | None = None) -> WorkerStatus:
    """``worker``'s state at ``now`` (the database's clock)."""
    age = max(now - worker.heartbeat_at, timedelta(0))
    if worker.stopped_at is not None:
        return WorkerStatus(worker, STOPPED, age)
    return WorkerStatus(worker, LIVE if age <= silent_after(interval) else SILENT, age)


def statuses(alias: str) -> list[WorkerStatus]:
    """Every registered worker's status, the latest heartbeat first."""
    rows = list(
        Worker._default_manager.db_manager(alias).annotate(now=Now()).order_by("-heartbeat_at")
    )
    if not rows:
        return []
    now = rows[0].now
    return [state_of(row, now) for row in rows]
