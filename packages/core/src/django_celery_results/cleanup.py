"""Cleanup: the retention rules run in the database, chunk by chunk, or counted (dry run)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Model, Q
from django.utils import timezone

from . import retention
from .conf import CleanupRefused, app_settings, refuse_if_misconfigured
from .drivers import BaseDriver, driver_for_model
from .history.prune import prune
from .history.rollup import catch_up
from .models import ChordCounter, GroupResult, TaskResult, Worker
from .retention import Step
from .workers import registry

#: Seconds between two progress reports of a running step.
PROGRESS_SECONDS = 0.5

__all__ = ["CleanupRefused", "configured_steps", "delete_dead_chord_counters", "run"]


@dataclass
class Outcome:
    """What one step did: rows deleted (or, in a dry run, that would be), and when."""

    name: str
    description: str
    rows: int = 0
    seconds: float = 0.0
    #: The oldest and newest ``date_done`` of the rows a dry run counted.
    oldest: datetime | None = None
    newest: datetime | None = None


@dataclass
class CleanupReport:
    """A whole cleanup: each step's outcome, and whether every step ran to its end."""

    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    complete: bool = True
    seconds: float = 0.0
    #: History buckets past their retention that were pruned after the steps.
    history_pruned: int = 0
    #: Rows of workers silent for a week, deleted after the steps (``workers.registry``).
    workers_pruned: int = 0

    @property
    def rows(self) -> int:
        """Rows deleted (or counted) by every step."""
        return sum(outcome.rows for outcome in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--format json``)."""
        return {
            "dry_run": self.dry_run,
            "complete": self.complete,
            "rows": self.rows,
            "history_pruned": self.history_pruned,
            "workers_pruned": self.workers_pruned,
            "seconds": round(self.seconds, 3),
            "steps": [
                {
                    "name": o.name,
                    "description": o.description,
                    "rows": o.rows,
                    "seconds": round(o.seconds, 3),
                    **(
                        {
                            "oldest": o.oldest and o.oldest.isoformat(),
                            "newest": o.newest and o.newest.isoformat(),
                        }
                        if self.dry_run
                        else {}
                    ),
                }
                for o in self.outcomes
            ],
        }


def as_timedelta(expires: float | timedelta | None) -> timedelta | None:
    """Return Celery's ``result_expires`` (seconds or a timedelta; 0 or None: never)."""
    if not expires:
        return None
    return expires if isinstance(expires, timedelta) else timedelta(seconds=expires)


def configured_steps(
    result_expires: float | timedelta | None,
    rules: Sequence[retention.Rule] | None = None,
    now: datetime | None = None,
) -> list[Step]:
    """Return the steps of the configured retention: task rules, the fallback, groups.

    ``rules`` defaults to ``RETENTION``; ``result_expires`` decides for the task results
    no rule matches, and for groups unless ``GROUP_RETENTION`` says otherwise. Raises
    :class:`CleanupRefused` while those settings are invalid (see
    :func:`refuse_if_misconfigured`).
    """
    refuse_if_misconfigured(result_expires, rules=rules is None)
    now = now or timezone.now()
    conf = app_settings()
    fallback = as_timedelta(result_expires)
    rules = conf.RETENTION if rules is None else rules
    steps = retention.plan(rules, fallback, now)
    groups = fallback if conf.GROUP_RETENTION == "result_expires" else conf.GROUP_RETENTION
    if groups is not None:
        steps.append(
            Step(
                "groups",
                f"group results: {retention.humanize(groups)}",
                Q(date_done__lt=now - groups),
                GroupResult,
            )
        )
    return steps


def one_off_step(rule: retention.Rule, now: datetime | None = None) -> Step:
    """Return the step of a one-off rule (the command's ``--status``, ``--older-than`` …)."""
    assert rule.keep is not None
    now = now or timezone.now()
    condition = rule.q() & Q(date_done__lt=now - rule.keep)
    return Step(rule.name, retention.describe(rule), condition)


def run(
    steps: Sequence[Step],
    *,
    dry_run: bool = False,
    batch_size: int | None = None,
    max_seconds: float | None = None,
    progress: Callable[[Outcome], None] | None = None,
) -> CleanupReport:
    """Run (or, with ``dry_run``, count) each step in order; return what each did.

    Deletions go through the driver in chunks of ``batch_size`` rows, each its own short
    transaction, and never load rows. Past ``max_seconds`` the cleanup stops after the
    chunk it is in, and says so (``CleanupReport.complete``); the next run goes on from there.
    """
    size = batch_size or app_settings().CLEANUP_BATCH_SIZE
    started = time.monotonic()
    deadline = None if max_seconds is None else started + max_seconds
    report = CleanupReport(dry_run=dry_run)
    if not dry_run and any(model_of(step) is TaskResult for step in steps):
        # Count every row into the history before any is deleted; a row written again
        # after this is kept until the next cleanup (only counted rows are deleted).
        catch_up(_driver(TaskResult).alias, wait=True)
    for step in steps:
        outcome = Outcome(step.name, step.description)
        report.outcomes.append(outcome)
        began = time.monotonic()
        finished = True
        if dry_run:
            _count(step, outcome)
        else:
            finished = _delete(step, outcome, size, deadline, progress)
        outcome.seconds = time.monotonic() - began
        if progress is not None:
            progress(outcome)
        out_of_time = deadline is not None and time.monotonic() >= deadline
        if not finished or out_of_time:
            # Complete only when the deadline came just as the last step finished.
            report.complete = finished and step is steps[-1]
            break
    if not dry_run and report.complete:
        report.history_pruned = prune(_driver(TaskResult).alias, timezone.now())
        report.workers_pruned = registry.prune(_driver(Worker).alias)
    report.seconds = time.monotonic() - started
    return report


def model_of(step: Step) -> type[Model]:
    """The model whose rows ``step`` deletes."""
    return step.model or TaskResult


def _count(step: Step, outcome: Outcome) -> None:
    model = model_of(step)
    manager = model._default_manager.db_manager(_driver(model).alias)
    found = manager.filter(step.condition).aggregate(
        rows=Count("pk"), oldest=Min("date_done"), newest=Max("date_done")
    )
    outcome.rows, outcome.oldest, outcome.newest = found["rows"], found["oldest"], found["newest"]


def _delete(
    step: Step,
    outcome: Outcome,
    size: int,
    deadline: float | None,
    progress: Callable[[Outcome], None] | None,
) -> bool:
    """Delete a step's rows; return False when the deadline stopped it before the end."""
    model = model_of(step)
    driver = _driver(model)
    began = time.monotonic()
    shown = began

    def chunk_done(rows: int) -> None:
        nonlocal shown
        outcome.rows = rows
        outcome.seconds = time.monotonic() - began
        if progress is not None and time.monotonic() - shown >= PROGRESS_SECONDS:
            shown = time.monotonic()
            progress(outcome)

    # Only rows the history has counted: deleting never takes a task out of it.
    condition = step.condition & Q(rolled_up=True) if model is TaskResult else step.condition
    outcome.rows = driver.retrying.delete_matching(model, condition, size, deadline, chunk_done)
    if deadline is None or time.monotonic() < deadline:
        return True
    # Stopped by the deadline, or finished just then: one indexed query tells.
    manager = model._default_manager.db_manager(driver.alias)
    return not manager.filter(condition).exists()


def delete_dead_chord_counters(
    result_expires: float | timedelta | None, batch_size: int | None = None
) -> int:
    """Delete the counters of chords whose header results all expired (as upstream)."""
    refuse_if_misconfigured(result_expires)
    expires = as_timedelta(result_expires)
    if expires is None:
        return 0
    driver = _driver(ChordCounter)
    size = batch_size or app_settings().CLEANUP_BATCH_SIZE
    return int(driver.retrying.delete_expired_chord_counters(timezone.now() - expires, size))


def _driver(model: type[Model]) -> BaseDriver:
    return driver_for_model(model)
