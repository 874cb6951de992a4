"""Per-task-name statistics of the task timeline: counts by state, waiting and processing time.

``TaskStats`` is what ``manage.py celery_results_stats`` prints. The portable computation
here reads the window's rows once, on any database, and takes percentiles by nearest
rank. The PostgreSQL driver computes everything in the database, in one query with
``percentile_cont``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count

from .states import TERMINAL_STATES

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import TaskResult

#: The percentiles reported, as fractions.
PERCENTILES = (0.5, 0.95, 0.99)


@dataclass
class Spread:
    """Percentiles and maximum of one duration, in seconds (``None`` without data)."""

    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    p99: float | None = None
    #: How many durations were measured (0: none could be, see the page's note).
    count: int = 0


@dataclass
class TaskStats:
    """What one task name did in the window."""

    task_name: str
    states: dict[str, int] = field(default_factory=dict)
    waiting: Spread = field(default_factory=Spread)
    processing: Spread = field(default_factory=Spread)

    @property
    def total(self) -> int:
        """Rows of this task name in the window."""
        return sum(self.states.values())

    @property
    def failure_rate(self) -> float | None:
        """FAILURE rows over finished rows (SUCCESS, FAILURE, REVOKED); None if none."""
        return failure_rate(self.states)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**asdict(self), "total": self.total, "failure_rate": self.failure_rate}


def failure_rate(states: dict[str, int]) -> float | None:
    """FAILURE rows over finished rows among ``states``' counts; None when none finished."""
    finished = sum(n for state, n in states.items() if state in TERMINAL_STATES)
    return states.get("FAILURE", 0) / finished if finished else None


def rows_in_window(
    queryset: QuerySet[TaskResult], since: datetime, task_names: Sequence[str] | None
) -> QuerySet[TaskResult]:
    """Return the rows done since ``since``, of ``task_names`` when given."""
    rows = queryset.filter(date_done__gte=since)
    return rows.filter(task_name__in=task_names) if task_names else rows


def state_counts(rows: QuerySet[TaskResult]) -> dict[str, TaskStats]:
    """Count rows by task name and state, in one query."""
    stats: dict[str, TaskStats] = {}
    counted = rows.values_list("task_name", "status").annotate(n=Count("id")).order_by()
    for name, state, count in counted:
        key = name or ""
        stats.setdefault(key, TaskStats(task_name=key)).states[state] = count
    return stats


def portable_stats(
    queryset: QuerySet[TaskResult], since: datetime, task_names: Sequence[str] | None
) -> list[TaskStats]:
    """Compute :class:`TaskStats` on any database: one query, percentiles by nearest rank.

    Reads the state and three dates of every row in the window and computes in Python,
    so the cost is one pass over the window however many task names it holds (the report
    bounds the window to its newest rows).
    """
    rows = rows_in_window(queryset, since, task_names).order_by()
    stats: dict[str, TaskStats] = {}
    spans: dict[str, tuple[list[float], list[float]]] = {}
    columns = ("task_name", "status", "date_created", "date_started", "date_done")
    for name, state, created, started, done in rows.values_list(*columns).iterator(5000):
        key = name or ""
        entry = stats.get(key)
        if entry is None:
            entry = stats[key] = TaskStats(task_name=key)
            spans[key] = ([], [])
        entry.states[state] = entry.states.get(state, 0) + 1
        if started is None:
            continue
        waiting, processing = spans[key]
        if created is not None:
            waiting.append((started - created).total_seconds())
        if state in TERMINAL_STATES and done is not None:
            processing.append((done - started).total_seconds())
    for key, (waiting, processing) in spans.items():
        stats[key].waiting = nearest_rank(waiting)
        stats[key].processing = nearest_rank(processing)
    return sorted(stats.values(), key=lambda s: s.task_name)


def nearest_rank(values: list[float]) -> Spread:
    """The :data:`PERCENTILES` of ``values`` by nearest rank, and their maximum."""
    if not values:
        return Spread()
    ordered = sorted(values)
    spread = Spread(max=ordered[-1], count=len(ordered))
    for fraction in PERCENTILES:
        rank = max(math.ceil(fraction * len(ordered)) - 1, 0)
        setattr(spread, f"p{round(fraction * 100)}", ordered[rank])
    return spread


def _seconds(value: Any) -> float | None:
    """Return a duration as seconds (databases hand back a timedelta or microseconds)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000
