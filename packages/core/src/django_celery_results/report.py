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
from django.db.models import QuerySet
from django.utils import timezone

from . import stats
from .conf import app_settings
from .history import sketch
from .history.backlog import MAX_BACKLOG, Sample, pending_rows, trend
from .history.rollup import catch_up
from .history.windows import Bar, SeriesCount, Window, chart, series_counts, spreads, window
from .models import HistoryState, TaskResult
from .states import FAILURE
from .stats import Spread, TaskStats
from .workers import running
from .workers.display import pool_name, queue_names
from .workers.routing import Consumers, unconsumed_keys
from .workers.running import running_now
from .workers.status import LIVE, SILENT, STOPPED, WorkerStatus, latest_lives, statuses

#: The backlog's queues are read from its oldest rows, at most this many.
BACKLOG_QUEUE_ROWS = 10_000
#: Stuck tasks counted, at most (the oldest of them).
MAX_STUCK = running.MAX_STUCK
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
    """What one worker finished in the window, its tasks now, and what its registry row says.

    ``running``, ``lost`` and ``overdue`` do not overlap (``workers.running``): a task on a
    lost worker, or one running longer than its task name's p99 (or ``STUCK_AFTER``), is
    stuck, not running.
    """

    worker: str
    total: int = 0
    failed: int = 0
    running: int = 0
    #: Running on a registered worker that is no longer live.
    lost: int = 0
    #: Running longer than its task name's p99 run time (or ``STUCK_AFTER``).
    overdue: int = 0
    oldest_stuck: datetime | None = None
    #: The registry's state (live, silent, stopped), or "" for a worker that never registered.
    state: str = ""
    #: Seconds since its last heartbeat (the database's clock); None when unregistered.
    heartbeat_age: float | None = None
    pool: str = ""
    concurrency: int | None = None
    queues: list[str] = field(default_factory=list)
    #: Result writes it retried after transient errors, and lost, in its current life.
    writes_retried: int = 0
    writes_lost: int = 0
    #: Its registry row's primary key (its admin page); None when unregistered.
    registry_id: int | None = None

    @property
    def stuck(self) -> int:
        """Tasks on a lost worker and tasks running too long."""
        return self.lost + self.overdue

    @property
    def failure_rate(self) -> float | None:
        """FAILURE over finished tasks; None when none finished."""
        return self.failed / self.total if self.total else None

    def registered(self, status: WorkerStatus) -> None:
        """Take the registry's row of this worker."""
        row = status.worker
        self.state = status.state
        self.heartbeat_age = status.age.total_seconds()
        self.pool = pool_name(row.pool)
        self.concurrency = row.concurrency
        self.queues = queue_names(row.queues)
        self.writes_retried, self.writes_lost = row.writes_retried, row.writes_lost
        self.registry_id = row.pk


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
    #: PENDING rows older than ``UNCONSUMED_AFTER`` whose routing key no live worker
    #: consumes (``workers.routing``); None when that cannot be judged.
    unconsumed: int | None = None
    #: Those rows by routing key.
    unconsumed_queues: dict[str, int] = field(default_factory=dict)
    #: The routing keys were judged among the oldest 10,000 such rows only.
    unconsumed_partial: bool = False
    #: A key's count stopped at :data:`MAX_BACKLOG`: the total is a lower bound ("+").
    unconsumed_capped: bool = False


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
    #: The tasks now were read up to their bounds (``workers.running``): there are more.
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
        """Tasks on lost workers and tasks running too long, on every worker."""
        return sum(worker.stuck for worker in self.workers)

    @property
    def lost(self) -> int:
        """Tasks running on registered workers that are no longer live."""
        return sum(worker.lost for worker in self.workers)

    @property
    def overdue(self) -> int:
        """Tasks running longer than their task name's p99 (or ``stuck_after``)."""
        return sum(worker.overdue for worker in self.workers)

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
        document.update(
            total=self.total, failure_rate=self.failure_rate, stuck=self.stuck,
            lost=self.lost, overdue=self.overdue,
        )  # fmt: skip
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
    registered = statuses(alias)
    workers, capped = worker_loads(counted, table, until, alias, registered)
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
        workers=workers,
        stuck_capped=capped,
        stuck_after=stuck_after,
        history=_status(alias, progress.remaining or progress.busy),
        backlog=backlog(table, until, span, alias, registered)
        if app_settings().TRACK_PENDING
        else None,
        counts=_by_queue(counted),
    )
    for entry in counted:
        report.states[entry.key.state] = report.states.get(entry.key.state, 0) + entry.count
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
    until: datetime,
    alias: str,
    registered: list[WorkerStatus],
) -> tuple[list[WorkerLoad], bool]:
    """Per worker: finished and failed tasks in the window, its tasks now, its registry row.

    Every registered worker that is live or silent is listed, the busiest of the others
    (at most :data:`TOP`), and every one with a stuck task. The second value says whether
    the tasks now were read only up to their bounds (``workers.running``).
    """
    loads: dict[str, WorkerLoad] = {}
    for entry in counted:
        load = loads.setdefault(entry.key.worker, WorkerLoad(entry.key.worker))
        load.total += entry.count
        if entry.key.state == FAILURE:
            load.failed += entry.count
    now = running_now(table, until, alias, registered)
    for worker, found in now.by_worker.items():
        load = loads.setdefault(worker, WorkerLoad(worker))
        load.running, load.lost, load.overdue = found.running, found.lost, found.overdue
        load.oldest_stuck = found.oldest_stuck
    for status in latest_lives(registered):
        if status.state != STOPPED or status.worker.hostname in loads:
            loads.setdefault(status.worker.hostname, WorkerLoad(status.worker.hostname))
            loads[status.worker.hostname].registered(status)
    ordered = sorted(loads.values(), key=lambda load: (-load.stuck, -load.total, load.worker))
    shown = [
        load for i, load in enumerate(ordered)
        if i < TOP or load.stuck or load.state in (LIVE, SILENT)
    ]  # fmt: skip
    return shown, now.capped


def backlog(
    table: QuerySet[TaskResult],
    until: datetime,
    span: Window,
    alias: str,
    registered: list[WorkerStatus],
) -> Backlog:
    """PENDING rows written within :data:`HORIZON`: how many, the oldest, their queues, trend.

    And those no live worker consumes (``workers.routing``), when that can be judged.
    """
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
        *unconsumed(pending, until, Consumers.of(registered)),
    )


def unconsumed(
    pending: QuerySet[TaskResult], until: datetime, consumers: Consumers
) -> tuple[int | None, dict[str, int], bool, bool]:
    """PENDING rows older than ``UNCONSUMED_AFTER`` no live worker consumes, by routing key.

    Counted exactly, up to :data:`MAX_BACKLOG` per routing key (the fourth value says a
    count stopped there); the keys are those of the oldest such rows
    (``routing.unconsumed_keys``: the third value says the read stopped at its bound).
    ``(None, {}, False, False)`` when routing keys cannot be judged (no worker
    registered, or one consumes through a fanout or headers exchange).
    """
    if not consumers.judges:
        return None, {}, False, False
    old = pending.filter(date_done__lt=until - app_settings().UNCONSUMED_AFTER)
    keys, partial = unconsumed_keys(old, consumers)
    by_key = {key: old.filter(queue=key).order_by()[:MAX_BACKLOG].count() for key in keys}
    capped = any(count >= MAX_BACKLOG for count in by_key.values())
    return sum(by_key.values()), by_key, partial, capped


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
