"""Whether a registered worker is live, silent or stopped: its heartbeat's age, by the DB's clock.

A worker's life is *live* while its last heartbeat is younger than :data:`MISSED_BEATS` of
its own heartbeat intervals, *silent* past that (lost, or cut off from the database), and
*stopped* once a warm shutdown said so. Silent is not yet gone: the lifeline decides
that, with its own grace period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..models import Worker
from .clock import DatabaseNow
from .registry import MISSED_BEATS

LIVE, SILENT, STOPPED = "live", "silent", "stopped"
STATES = (LIVE, SILENT, STOPPED)


@dataclass(frozen=True)
class WorkerStatus:
    """A registered worker's life, its state and its heartbeat's age."""

    worker: Worker
    state: str
    age: timedelta


def silent_after(interval: float) -> timedelta:
    """How old a heartbeat may be for its worker to still read as live."""
    return timedelta(seconds=MISSED_BEATS * interval)


def state_of(worker: Worker, now: datetime) -> WorkerStatus:
    """``worker``'s state at ``now`` (the database's clock)."""
    age = max(now - worker.heartbeat_at, timedelta(0))
    if worker.stopped_at is not None:
        return WorkerStatus(worker, STOPPED, age)
    return WorkerStatus(worker, LIVE if age <= silent_after(worker.interval) else SILENT, age)


def statuses(alias: str) -> list[WorkerStatus]:
    """Every registered life's status, the latest heartbeat first."""
    rows = list(
        Worker._default_manager.db_manager(alias)
        .annotate(now=DatabaseNow())
        .order_by("-heartbeat_at")
    )
    if not rows:
        return []
    now = rows[0].now
    return [state_of(row, now) for row in rows]


def latest_lives(found: list[WorkerStatus]) -> list[WorkerStatus]:
    """Each node name's latest life, from :func:`statuses` (the latest heartbeat first)."""
    seen: set[str] = set()
    latest = []
    for status in found:
        if status.worker.hostname not in seen:
            seen.add(status.worker.hostname)
            latest.append(status)
    return latest
