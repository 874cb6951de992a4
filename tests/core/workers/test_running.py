"""What runs now: running, on a lost worker, or running longer than its task's p99."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import states
from django.utils import timezone

from django_celery_results.history.rollup import catch_up
from django_celery_results.models import TaskResult, Worker
from django_celery_results.workers import registry
from django_celery_results.workers.registry import WorkerInfo
from django_celery_results.workers.running import MIN_RUNS, expected_runtimes, running_now
from django_celery_results.workers.status import statuses

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
LOST, LIVE = "1" * 32, "2" * 32


def start(task_id: str, worker: str, ago: timedelta, lifeline: str | None = None,
          task_name: str = "t.work") -> None:  # fmt: skip
    at = timezone.now() - ago
    TaskResult.objects.create(
        task_id=task_id, status=states.STARTED, worker=worker, task_name=task_name,
        date_started=at, lifeline=lifeline,
    )  # fmt: skip
    TaskResult.objects.filter(task_id=task_id).update(date_done=at)  # not auto_now's


def test_tasks_on_lost_workers_and_overdue_ones_are_stuck_apart(db_alias: str) -> None:
    registry.register(WorkerInfo("celery@lost", "h", 1, boot=LOST), db_alias)
    registry.register(WorkerInfo("celery@live", "h", 2, boot=LIVE), db_alias)
    Worker.objects.filter(boot=LOST).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    start("on-lost", "celery@lost", timedelta(seconds=5), LOST)
    start("fine", "celery@live", timedelta(seconds=5), LIVE)
    start("too-long", "celery@live", timedelta(hours=2), LIVE)  # past STUCK_AFTER (1 h)
    start("unregistered", "celery@old", timedelta(seconds=5))
    now = running_now(TaskResult.objects.all(), timezone.now(), db_alias, statuses(db_alias))
    lost, live, old = (
        now.by_worker[name] for name in ("celery@lost", "celery@live", "celery@old")
    )
    assert (lost.lost, lost.overdue, lost.running) == (1, 0, 0)
    assert (live.lost, live.overdue, live.running) == (0, 1, 1)
    assert (old.lost, old.overdue, old.running) == (0, 0, 1)
    assert live.oldest_stuck is not None
    assert timezone.now() - live.oldest_stuck > timedelta(hours=1)
    assert not now.capped


def test_a_task_past_its_own_p99_is_overdue(db_alias: str) -> None:
    """A task name with MIN_RUNS runs of about a second: five seconds is too long."""
    done = timezone.now() - timedelta(minutes=2)
    TaskResult.objects.bulk_create(
        TaskResult(
            task_id=f"quick-{n}",
            status=states.SUCCESS,
            task_name="t.quick",
            worker="w",
            date_started=done - timedelta(seconds=1),
            date_done=done,
        )
        for n in range(MIN_RUNS)
    )
    TaskResult.objects.update(date_done=done)  # not auto_now's
    catch_up(db_alias, wait=True)
    limits = expected_runtimes(db_alias, {"t.quick", "t.rare"}, timezone.now())
    assert set(limits) == {"t.quick"}  # t.rare has no runs: STUCK_AFTER decides
    assert timedelta(seconds=0.9) < limits["t.quick"] < timedelta(seconds=1.1)
    start("slow-quick", "w", timedelta(seconds=5), task_name="t.quick")
    start("slow-rare", "w", timedelta(seconds=5), task_name="t.rare")
    now = running_now(TaskResult.objects.all(), timezone.now(), db_alias, [])
    assert (now.by_worker["w"].overdue, now.by_worker["w"].running) == (1, 1)
