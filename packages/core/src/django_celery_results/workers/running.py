"""What runs now: each STARTED row as running, on a lost worker, or running too long.

A task is *on a lost worker* when the life that started it (``lifeline``) belongs to a
registered worker that is no longer live: the lifeline settles it once its grace has
passed. It is *overdue* when it has run longer than its task name's p99 run time over
the last day of history (with at least :data:`MIN_RUNS` runs measured), or than
``STUCK_AFTER`` without that. Both are *stuck*; the rest are *running*. Rows are read
through the ``(status, date_done)`` index, within the backlog's horizon: every row up to
``STUCK_AFTER`` old (as many as the workers run at once, at most :data:`MAX_RUNNING`),
and the oldest :data:`MAX_STUCK` of the older ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery.states import STARTED
from django.db.models import QuerySet

from ..conf import app_settings
from ..history import sketch
from ..history.backlog import HORIZON
from ..history.windows import spreads, window
from ..models import TaskResult
from . import life
from .status import LIVE, WorkerStatus

#: Rows younger than ``STUCK_AFTER`` read at most, and older ones (the oldest first).
MAX_RUNNING = 10_000
MAX_STUCK = 500
#: Runs a task name needs in the last day for its p99 to say what is too long.
MIN_RUNS = 100
#: The history a task name's p99 comes from.
EXPECTED_FROM = timedelta(days=1)


@dataclass
class Running:
    """One worker's STARTED rows now, by what they are."""

    running: int = 0
    lost: int = 0
    overdue: int = 0
    oldest_stuck: datetime | None = None

    @property
    def stuck(self) -> int:
        """Tasks on a lost worker, and tasks running too long."""
        return self.lost + self.overdue


@dataclass
class RunningNow:
    """Every worker's STARTED rows, and whether the reads stopped at their bounds."""

    by_worker: dict[str, Running] = field(default_factory=dict)
    capped: bool = False


def running_now(
    table: QuerySet[TaskResult],
    until: datetime,
    alias: str,
    workers: Iterable[WorkerStatus],
) -> RunningNow:
    """Each worker's STARTED rows at ``until``, read from ``table`` (see the module)."""
    stuck_after = app_settings().STUCK_AFTER
    started = table.filter(status=STARTED)
    columns = ("worker", "task_name", "date_done", "lifeline")
    young = list(started.filter(date_done__gte=until - stuck_after).values_list(*columns)[
        : MAX_RUNNING + 1
    ])  # fmt: skip
    old = list(
        started.filter(date_done__gte=until - HORIZON, date_done__lt=until - stuck_after)
        .order_by("date_done")
        .values_list(*columns)[: MAX_STUCK + 1]
    )
    now = RunningNow(capped=len(young) > MAX_RUNNING or len(old) > MAX_STUCK)
    rows = young[:MAX_RUNNING] + old[:MAX_STUCK]
    lost_lives = {status.worker.boot for status in workers if status.state != LIVE}
    limits = expected_runtimes(alias, {name for _, name, _, _ in rows if name}, until)
    for worker, name, started_at, lifeline in sorted(rows, key=lambda row: row[2]):
        found = now.by_worker.setdefault(worker or "", Running())
        line = life.parse(lifeline)
        if line is not None and line.boot in lost_lives:
            found.lost += 1
        elif until - started_at > limits.get(name or "", stuck_after):
            found.overdue += 1
        else:
            found.running += 1
            continue
        if found.oldest_stuck is None:  # the rows go oldest first
            found.oldest_stuck = started_at
    return now


def expected_runtimes(alias: str, names: set[str], until: datetime) -> dict[str, timedelta]:
    """Each task name's p99 run time over the last day, where it ran :data:`MIN_RUNS` times."""
    if not names:
        return {}
    span = window(until - EXPECTED_FROM, until, until)
    limits = {}
    for (name, kind), bins in spreads(span, alias, names).items():
        if kind != "run" or sum(bins.values()) < MIN_RUNS:
            continue
        (p99,) = sketch.percentiles(bins, (0.99,))
        if p99 is not None:
            limits[name] = timedelta(seconds=p99)
    return limits
