"""What happened in a time window: the dashboard's, the metrics' and the stats command's numbers.

Finished tasks come from the rolled-up history (``history``), exact for the window's whole
minutes at any table size: a report first catches the history up (within a time budget,
and says so when rows are left to count). What is true now rather than in a window (tasks
running or stuck, the PENDING backlog) is read from the rows through an index on
``(status, date_done)``: it walks only the rows in that state.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import router
from django.db.models import Count, QuerySet
from django.utils import timezone

from . import stats
from .conf import app_settings
from .history import sketch
from .history.backlog import HORIZON, MAX_BACKLOG, Sample, pending_rows, trend
from .history.rollup import catch_up
from .history.windows import Bar, SeriesCount, Window, chart, series_counts, spreads, window
from .models import HistoryState, TaskResult
from .states import FAILURE
from .stats import Spread, TaskStats

#: The backlog's queues are read from its oldest rows, at most this many.
BACKLOG_QUEUE_ROWS = 10_000
#: Stuck tasks counted, at most (the oldest of them).
MAX_STUCK = 500
#: Incidents and workers listed, at most.
TOP = 10
#: Seconds a report may spend catching the history up before it reads it.
CATCH_UP_SECONDS = 2.0


@dataclass
class Incident:
    """One exception type of one task: how often, when, on which workers, and an example."""

    type: str
    task_name: str
    count: int
    first: datetime
    last: datetime
    workers: list[str]
    example: str


@dataclass
class WorkerLoad:
    """What one worker finished in the window, and its running and stuck tasks now.

    ``running`` and ``stuck`` do not overlap: a STARTED row older than ``STUCK_AFTER`` is
    stuck, not running.
    """

    worker: str
    total: int = 0
    failed: int = 0
    running: int = 0
    stuck: int = 0
    oldest_stuck: datetime | None = None

    @property
    def failure_rate(self) -> float | None:
        """FAILURE over finished tasks; None when none finished."""
        return self.failed / self.total if self.total else None


@dataclass
class Backlog:
    """PENDING rows (``TRACK_PENDING``): sent, not started."""

    count: int
    capped: bool
    oldest: datetime | None
    #: PENDING rows by queue, among the oldest :data:`BACKLOG_QUEUE_ROWS`.
    queues: dict[str, int] = field(default_factory=dict)
    #: ``queues`` counts only the oldest :data:`BACKLOG_QUEUE_ROWS` rows.
    queues_partial: bool = False
    #: Each queue's samples over the window (``history.backlog``), oldest first.
    trend: dict[str, list[Sample]] = field(default_factory=dict)


@dataclass
class HistoryStatus:
    """How current the history is."""

    #: When a catch-up last left nothing to count.
    caught_up_at: datetime | None
    #: Rows were written that this report's catch-up had no time to count.
    behind: bool


@dataclass
class Report:
    """The window's numbers."""

    since: datetime
    until: datetime
    #: The whole minutes the numbers cover: from ``covered_since`` to ``covered_until``.
    covered_since: datetime
    covered_until: datetime
    tasks: list[TaskStats]
    throughput: list[Bar]
    incidents: list[Incident]
    workers: list[WorkerLoad]
    stuck_after: timedelta
    history: HistoryStatus
    backlog: Backlog | None = None
    states: dict[str, int] = field(default_factory=dict)
    #: The chart's bar length, in seconds.
    bar_seconds: int = 60
    #: The one task the chart counts, or None for every task.
    chart_task: str | None = None
    #: The stuck count stopped at ``MAX_STUCK``: there are more.
    stuck_capped: bool = False
    #: Tasks by (task name, state, queue): what the metrics' window gauges export.
    counts: list[tuple[str, str, str, int]] = field(default_factory=list)
    #: The same numbers over the window of the same length just before (dashboard).
    previous: dict[str, TaskStats] = field(default_factory=dict)
    #: Compatibility: reports never sample (always False since the history).
    sampled: bool = False

    @property
    def total(self) -> int:
        """Finished tasks in the window."""
        return sum(self.states.values())

    @property
    def failure_rate(self) -> float | None:
        """FAILURE over finished tasks; None when none finished."""
        return stats.failure_rate(self.states)

    @property
    def stuck(self) -> int:
        """STARTED rows older than ``stuck_after``, on every worker."""
        return sum(worker.stuck for worker in self.workers)

    @property
    def exceptions(self) -> list[Incident]:
        """The incidents (the name older code reads)."""
        return self.incidents

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        document = asdict(self)
        document["tasks"] = [entry.as_dict() for entry in self.tasks]
        document["previous"] = {name: entry.as_dict() for name, entry in self.previous.items()}
        document["stuck_after"] = self.stuck_after.total_seconds()
        document.update(total=self.total, failure_rate=self.failure_rate, stuck=self.stuck)
        return _jsonable(document)  # type: ignore[no-any-return]


def build(
    since: datetime,
    *,
    until: datetime | None = None,
    task_names: list[str] | None = None,
    compare: bool = False,
    budget: float = CATCH_UP_SECONDS,
    chart_task: str | None = None,
) -> Report:
    """The report of tasks finished from ``since`` to ``until`` (now), exact per minute.

    ``compare`` adds the window of the same length just before, per task name;
    ``chart_task`` draws the chart of that task alone, if it finished tasks in the window.
    """
    now = timezone.now()
    until = until or now
    progress = catch_up(router.db_for_write(TaskResult), budget=budget)
    alias = router.db_for_read(TaskResult) or "default"
    span = window(since, until, now)
    counted = _wanted(series_counts(span, alias), task_names)
    tasks = task_stats(counted, spreads(span, alias))
    stuck_after = app_settings().STUCK_AFTER
    table = TaskResult._default_manager.db_manager(alias).all()
    bar_seconds = span.bar
    charted = chart_task if any(e.key.task_name == chart_task for e in counted) else None
    report = Report(
        since=since,
        until=until,
        covered_since=span.start,
        covered_until=span.end,
        tasks=tasks,
        throughput=chart(span, alias, until, charted),
        chart_task=charted,
        bar_seconds=bar_seconds,
        incidents=incidents(counted),
        workers=worker_loads(counted, table, until - stuck_after, until),
        stuck_after=stuck_after,
        history=_status(alias, progress.remaining or progress.busy),
        backlog=backlog(table, until, span, alias) if app_settings().TRACK_PENDING else None,
        counts=_by_queue(counted),
    )
    for entry in counted:
        report.states[entry.key.state] = report.states.get(entry.key.state, 0) + entry.count
    report.stuck_capped = report.stuck >= MAX_STUCK
    if compare:
        length = span.end - span.start
        before = Window(span.start - length, span.start)
        earlier = _wanted(series_counts(before, alias), task_names)
        report.previous = {
            entry.task_name: entry for entry in task_stats(earlier, spreads(before, alias))
        }
    return report


def _wanted(counted: list[SeriesCount], task_names: list[str] | None) -> list[SeriesCount]:
    if not task_names:
        return counted
    names = set(task_names)
    return [entry for entry in counted if entry.key.task_name in names]


def task_stats(
    counted: list[SeriesCount], binned: dict[tuple[str, str], sketch.Bins]
) -> list[TaskStats]:
    """Per task name: finished tasks by state, and wait and run percentiles."""
    by_name: dict[str, TaskStats] = {}
    for entry in counted:
        name = entry.key.task_name
        found = by_name.setdefault(name, TaskStats(task_name=name))
        found.states[entry.key.state] = found.states.get(entry.key.state, 0) + entry.count
    for found in by_name.values():
        found.waiting = spread_of(binned.get((found.task_name, "wait"), {}))
        found.processing = spread_of(binned.get((found.task_name, "run"), {}))
    return sorted(by_name.values(), key=lambda entry: entry.task_name)


def spread_of(bins: sketch.Bins) -> Spread:
    """The percentiles of binned durations (within ``sketch.ALPHA`` of the exact ones)."""
    count = sum(bins.values())
    if not count:
        return Spread()
    p50, p95, p99, top = sketch.percentiles(bins, (*stats.PERCENTILES, 1.0))
    return Spread(p50=p50, p95=p95, p99=p99, max=top, count=count)


def incidents(counted: list[SeriesCount]) -> list[Incident]:
    """Failures by exception type and task name, most frequent first."""
    grouped: dict[tuple[str, str], list[SeriesCount]] = defaultdict(list)
    for entry in counted:
        if entry.key.state == FAILURE:
            kind = entry.key.exception_type or "(unknown)"
            grouped[(kind, entry.key.task_name)].append(entry)
    found = []
    for (kind, name), entries in grouped.items():
        newest = max(entries, key=lambda entry: entry.last)
        found.append(
            Incident(
                type=kind,
                task_name=name,
                count=sum(entry.count for entry in entries),
                first=min(entry.first for entry in entries),
                last=newest.last,
                workers=sorted({entry.key.worker for entry in entries}),
                example=newest.example,
            )
        )
    return sorted(found, key=lambda incident: (-incident.count, incident.type, incident.task_name))


def _by_queue(counted: list[SeriesCount]) -> list[tuple[str, str, str, int]]:
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for entry in counted:
        totals[(entry.key.task_name, entry.key.state, entry.key.queue)] += entry.count
    return sorted((*key, n) for key, n in totals.items())


def worker_loads(
    counted: list[SeriesCount],
    table: QuerySet[TaskResult],
    stuck_before: datetime,
    until: datetime,
) -> list[WorkerLoad]:
    """Per worker: finished and failed tasks in the window; running and stuck tasks now.

    Both are STARTED rows, read through the ``(status, date_done)`` index: running ones
    were written from ``stuck_before`` on, stuck ones before it (within :data:`HORIZON`;
    the oldest :data:`MAX_STUCK` are counted). Running tasks are as many as the workers
    run at once, whatever the table's size; stuck rows of lost workers can pile up, hence
    the bound.
    """
    loads: dict[str, WorkerLoad] = {}
    for entry in counted:
        load = loads.setdefault(entry.key.worker, WorkerLoad(entry.key.worker))
        load.total += entry.count
        if entry.key.state == FAILURE:
            load.failed += entry.count
    started = table.filter(status="STARTED")
    running = started.filter(date_done__gte=stuck_before)
    for worker, n in running.values_list("worker").annotate(n=Count("id")).order_by():
        loads.setdefault(worker or "", WorkerLoad(worker or "")).running = n
    stuck = (
        started.filter(date_done__gte=until - HORIZON, date_done__lt=stuck_before)
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


def backlog(table: QuerySet[TaskResult], until: datetime, span: Window, alias: str) -> Backlog:
    """PENDING rows written within :data:`HORIZON`: how many, the oldest, their queues, trend."""
    pending = pending_rows(table, until)
    counted = pending.order_by()[: MAX_BACKLOG + 1].count()
    # The first row of the (status, date_done) index, not MIN() over every PENDING row.
    oldest = pending.order_by("date_done").values_list("date_done", flat=True).first()
    queues: dict[str, int] = defaultdict(int)
    first = pending.order_by("date_done").values_list("queue", flat=True)[:BACKLOG_QUEUE_ROWS]
    for queue in first:
        queues[queue or ""] += 1
    return Backlog(
        min(counted, MAX_BACKLOG),
        counted > MAX_BACKLOG,
        oldest,
        dict(sorted(queues.items(), key=lambda item: -item[1])),
        counted > BACKLOG_QUEUE_ROWS,
        {
            queue: samples
            for queue, samples in trend(alias, span.start, span.end).items()
            if queue in queues or any(sample.count for sample in samples)
        },
    )


def _status(alias: str, behind: bool) -> HistoryStatus:
    state = HistoryState._default_manager.db_manager(alias).filter(id=1)
    caught_up_at = state.values_list("caught_up_at", flat=True).first()
    return HistoryStatus(caught_up_at, behind)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


__all__ = ["Backlog", "Incident", "Report", "WorkerLoad", "build"]
