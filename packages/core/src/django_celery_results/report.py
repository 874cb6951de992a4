"""What the results table says about a time window: the dashboard's and the stats command's.

Every query is bounded: by ``date_done`` (the window, served by its index), and by
:data:`MAX_ROWS`: when the window holds more rows than that, the report covers its newest
``MAX_ROWS`` rows and says so (``Report.sampled``), so a dashboard over a table of tens of
millions of rows costs what it costs over a small one.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import router
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Trunc
from django.utils import timezone

from . import stats
from .conf import app_settings
from .drivers import driver_for_alias
from .models import TaskResult
from .states import PENDING, TERMINAL_STATES
from .stats import TaskStats

#: Most rows of a window a report reads; past it, the newest of them.
MAX_ROWS = 5_000
#: Failures whose exception types are counted (the newest of the window).
MAX_FAILURES = 500
#: How far back STARTED rows count as stuck, and PENDING rows as the backlog.
HORIZON = timedelta(days=7)
#: The backlog is counted up to this many rows ("100,000+" past it).
MAX_BACKLOG = 100_000
#: Stuck tasks counted, at most (the oldest of them).
MAX_STUCK = 500
#: Exception types and workers listed, at most.
TOP = 10
#: Chart buckets: the window's length → the bucket's unit.
BUCKETS = ((timedelta(hours=2), "minute"), (timedelta(days=8), "hour"))


@dataclass
class Bucket:
    """Finished tasks in one slice of the window."""

    start: datetime
    done: int = 0
    failed: int = 0


@dataclass
class ExceptionCount:
    """How often one exception type ended a task, and the newest such task."""

    type: str
    count: int
    example: str


@dataclass
class WorkerLoad:
    """What one worker did in the window, and its stuck tasks."""

    worker: str
    total: int = 0
    failed: int = 0
    running: int = 0
    stuck: int = 0
    oldest_stuck: datetime | None = None


@dataclass
class Backlog:
    """PENDING rows (``TRACK_PENDING``): sent, not started."""

    count: int
    capped: bool
    oldest: datetime | None


@dataclass
class Report:
    """The window's numbers."""

    since: datetime
    until: datetime
    #: The window held more than ``MAX_ROWS`` rows: the report covers rows done since
    #: ``covered_since`` only.
    sampled: bool
    covered_since: datetime
    tasks: list[TaskStats]
    throughput: list[Bucket]
    exceptions: list[ExceptionCount]
    workers: list[WorkerLoad]
    stuck_after: timedelta
    backlog: Backlog | None = None
    states: dict[str, int] = field(default_factory=dict)
    #: The throughput chart's bucket: "minute", "hour" or "day".
    bucket: str = "minute"
    #: The stuck count stopped at ``MAX_STUCK``: there are more.
    stuck_capped: bool = False
    #: Rows by (task name, state, queue): what the metrics view exports.
    counts: list[tuple[str, str, str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows in the (covered) window."""
        return sum(self.states.values())

    @property
    def failure_rate(self) -> float | None:
        """FAILURE rows over finished rows; None when none finished."""
        return stats.failure_rate(self.states)

    @property
    def stuck(self) -> int:
        """STARTED rows older than ``stuck_after``, on every worker."""
        return sum(worker.stuck for worker in self.workers)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        document = asdict(self)
        document["tasks"] = [entry.as_dict() for entry in self.tasks]
        document["stuck_after"] = self.stuck_after.total_seconds()
        document.update(total=self.total, failure_rate=self.failure_rate, stuck=self.stuck)
        return _jsonable(document)  # type: ignore[no-any-return]


def build(
    since: datetime,
    *,
    until: datetime | None = None,
    task_names: list[str] | None = None,
    max_rows: int = MAX_ROWS,
) -> Report:
    """Compute the report of rows done from ``since`` to now (on the read database)."""
    until = until or timezone.now()
    alias = router.db_for_read(TaskResult) or "default"
    table = TaskResult._default_manager.db_manager(alias).all()
    covered, covered_since, sampled = window_rows(table, since, until, task_names, max_rows)
    stuck_after = app_settings().STUCK_AFTER
    tasks = driver_for_alias(alias).ops.timeline_stats(covered_since, task_names)
    report = Report(
        since=since,
        until=until,
        sampled=sampled,
        covered_since=covered_since,
        tasks=tasks,
        throughput=throughput(covered, covered_since, until),
        bucket=bucket_unit(covered_since, until),
        exceptions=top_exceptions(covered),
        workers=worker_loads(covered, table, until - stuck_after, until),
        stuck_after=stuck_after,
        backlog=backlog(table, until) if app_settings().TRACK_PENDING else None,
        counts=counts_by_queue(covered),
    )
    # The totals from the same read as the metrics (timeline_stats reads up to now).
    for _name, state, _queue, count in report.counts:
        report.states[state] = report.states.get(state, 0) + count
    report.stuck_capped = sum(load.stuck for load in report.workers) >= MAX_STUCK
    return report


def window_rows(
    table: QuerySet[TaskResult],
    since: datetime,
    until: datetime,
    task_names: list[str] | None = None,
    max_rows: int = MAX_ROWS,
) -> tuple[QuerySet[TaskResult], datetime, bool]:
    """The rows done in the window, at most its newest ``max_rows``.

    Returns them, the ``date_done`` they start at, and whether the window held more.
    """
    window = table.filter(date_done__gte=since, date_done__lte=until)
    if task_names:
        window = window.filter(task_name__in=task_names)
    newest = window.order_by("-date_done").values_list("date_done", flat=True)
    # The max_rows-th newest row, and whether one more follows it.
    cutoff = list(newest[max_rows - 1 : max_rows + 1])
    covered_since = cutoff[0] if cutoff else since
    return window.filter(date_done__gte=covered_since), covered_since, len(cutoff) > 1


def counts_by_queue(rows: QuerySet[TaskResult]) -> list[tuple[str, str, str, int]]:
    """Rows by task name, state and queue, in one ``GROUP BY``."""
    counted = rows.values_list("task_name", "status", "queue").annotate(n=Count("id")).order_by()
    return sorted((name or "", state, queue or "", n) for name, state, queue, n in counted)


def bucket_unit(since: datetime, until: datetime) -> str:
    """The chart's bucket for a window: minutes up to 2 h, hours up to 8 d, else days."""
    return next((unit for length, unit in BUCKETS if until - since <= length), "day")


def throughput(rows: QuerySet[TaskResult], since: datetime, until: datetime) -> list[Bucket]:
    """Finished and failed tasks per minute (windows up to 2 h), hour (8 d) or day."""
    unit = bucket_unit(since, until)
    finished = rows.filter(status__in=sorted(TERMINAL_STATES))
    counted = (
        # Buckets in UTC: no time zone conversion in the database (MySQL's CONVERT_TZ
        # needs its zone tables loaded); the page shows each start in local time.
        finished.annotate(bucket=Trunc("date_done", unit, tzinfo=UTC))
        .values("bucket")
        .annotate(done=Count("id"), failed=Count("id", filter=Q(status="FAILURE")))
        .order_by("bucket")
    )
    return [Bucket(row["bucket"], row["done"], row["failed"]) for row in counted]


def top_exceptions(rows: QuerySet[TaskResult]) -> list[ExceptionCount]:
    """Exception types of the newest :data:`MAX_FAILURES` failures, most frequent first.

    Read from the stored result (``exc_type``) of JSON results; other serializers are
    never decoded here and count as their content type.
    """
    failures = (
        rows.filter(status="FAILURE")
        .order_by("-date_done")
        .values_list("task_id", "content_type", "result")[:MAX_FAILURES]
    )
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for task_id, content_type, result in failures:
        name = exception_type(content_type, result)
        counts[name] += 1
        examples.setdefault(name, task_id)
    return [ExceptionCount(name, n, examples[name]) for name, n in counts.most_common(TOP)]


#: Longest exception type name a report shows (a stored one can be any text).
MAX_NAME = 200


def exception_type(content_type: str | None, result: str | None) -> str:
    """The ``exc_type`` of a stored failure (``exc_module.exc_type`` when not builtin)."""
    if not result:
        return "(no result)"
    if content_type != "application/json":
        return f"({content_type})"
    try:
        value = json.loads(result)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python reads
        return "(unreadable)"
    if not isinstance(value, dict) or not isinstance(value.get("exc_type"), str):
        return "(unknown)"
    module = value.get("exc_module")
    name = value["exc_type"][:MAX_NAME] or "(unknown)"
    if not isinstance(module, str):
        module = None
    return name if module in (None, "builtins") else f"{module}.{name}"


def worker_loads(
    rows: QuerySet[TaskResult],
    table: QuerySet[TaskResult],
    stuck_before: datetime,
    until: datetime,
) -> list[WorkerLoad]:
    """Per worker: rows, failures and running tasks in the window, and stuck tasks.

    A task is stuck when its row is STARTED and was written (``date_done``) before
    ``stuck_before``, within :data:`HORIZON`; the oldest :data:`MAX_STUCK` are counted.
    """
    loads: dict[str, WorkerLoad] = {}
    counted = (
        rows.values("worker")
        .annotate(
            total=Count("id"),
            failed=Count("id", filter=Q(status="FAILURE")),
            running=Count("id", filter=Q(status="STARTED")),
        )
        .order_by("-total")
    )
    for row in counted:
        name = row["worker"] or ""
        loads[name] = WorkerLoad(name, row["total"], row["failed"], row["running"])
    stuck = (
        table.filter(status="STARTED", date_done__lt=stuck_before)
        .filter(date_done__gte=until - HORIZON)
        .order_by("date_done")
        .values_list("worker", "date_done")[:MAX_STUCK]
    )
    for worker, written in stuck:  # the oldest first: each worker's first is its oldest
        load = loads.setdefault(worker or "", WorkerLoad(worker or ""))
        if load.oldest_stuck is None:
            load.oldest_stuck = written
        load.stuck += 1
    ordered = sorted(loads.values(), key=lambda load: (-load.stuck, -load.total, load.worker))
    return ordered[: max(TOP, sum(1 for load in ordered if load.stuck))]


def backlog(table: QuerySet[TaskResult], until: datetime) -> Backlog:
    """PENDING rows written within :data:`HORIZON`: how many, and the oldest send time."""
    pending = table.filter(status=PENDING, date_done__gte=until - HORIZON)
    counted = pending.order_by()[: MAX_BACKLOG + 1].count()
    # The first row of the date_done index, not MIN() over every PENDING row.
    oldest = pending.order_by("date_done").values_list("date_done", flat=True).first()
    return Backlog(min(counted, MAX_BACKLOG), counted > MAX_BACKLOG, oldest)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


__all__ = ["Backlog", "Bucket", "ExceptionCount", "Report", "WorkerLoad", "build"]
