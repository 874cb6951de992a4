"""Per-task-name statistics of the task timeline, computed in the database.

``TaskStats`` is what ``manage.py celery_results_stats`` prints. The portable computation
here uses the ORM on any database: counts in one ``GROUP BY`` query, maxima with
aggregates, and percentiles by nearest rank (one ``ORDER BY … OFFSET k LIMIT 1`` query
each). The PostgreSQL driver computes everything in one query with ``percentile_cont``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q
from django.db.models.expressions import CombinedExpression

from .states import TERMINAL_STATES

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from .models import TaskResult

#: The percentiles reported, as fractions.
PERCENTILES = (0.5, 0.95)


@dataclass
class Spread:
    """Percentiles and maximum of one duration, in seconds (``None`` without data)."""

    p50: float | None = None
    p95: float | None = None
    max: float | None = None


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
        finished = sum(n for state, n in self.states.items() if state in TERMINAL_STATES)
        return self.states.get("FAILURE", 0) / finished if finished else None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**asdict(self), "total": self.total, "failure_rate": self.failure_rate}


def waiting_expression() -> ExpressionWrapper[CombinedExpression]:
    """``date_started - date_created``: time in the queue (and the worker's prefetch)."""
    return ExpressionWrapper(F("date_started") - F("date_created"), output_field=DurationField())


def processing_expression() -> ExpressionWrapper[CombinedExpression]:
    """``date_done - date_started`` of a finished task: time spent running."""
    return ExpressionWrapper(F("date_done") - F("date_started"), output_field=DurationField())


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
    """Compute :class:`TaskStats` with the ORM, on any database (nearest-rank percentiles)."""
    rows = rows_in_window(queryset, since, task_names)
    stats = state_counts(rows)
    measured = {
        "waiting": (waiting_expression(), Q(date_started__isnull=False)),
        "processing": (
            processing_expression(),
            Q(date_started__isnull=False, status__in=sorted(TERMINAL_STATES)),
        ),
    }
    for name, entry in stats.items():
        named = rows.filter(task_name=name or None)
        for metric, (expression, condition) in measured.items():
            values = named.filter(condition).annotate(span=expression)
            summary = values.aggregate(n=Count("id"), longest=Max("span"))
            spread = Spread(max=_seconds(summary["longest"]))
            ordered = values.order_by("span").values_list("span", flat=True)
            for fraction in PERCENTILES:
                if summary["n"]:
                    rank = max(math.ceil(fraction * summary["n"]) - 1, 0)
                    value = ordered[rank]  # OFFSET rank LIMIT 1, in the database
                    setattr(spread, f"p{round(fraction * 100)}", _seconds(value))
            setattr(entry, metric, spread)
    return sorted(stats.values(), key=lambda s: s.task_name)


def _seconds(value: Any) -> float | None:
    """Return a duration as seconds (databases hand back a timedelta or microseconds)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000
