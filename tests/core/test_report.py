"""``report.build`` over the history: the dashboard's and the stats command's numbers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from django_celery_results import report
from django_celery_results.models import TaskResult

FAILED = json.dumps({"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"})
CUSTOM = json.dumps({"exc_type": "Timeout", "exc_message": [], "exc_module": "proj.errors"})


def put(task_id: str, status: str, *, ago: float = 60, **columns: Any) -> None:
    """Store a row done ``ago`` seconds ago."""
    done = timezone.now() - timedelta(seconds=ago)
    columns.setdefault("content_type", "application/json")
    TaskResult.objects.create(task_id=task_id, status=status, **columns)
    TaskResult.objects.filter(task_id=task_id).update(date_done=done, date_created=done)


@pytest.fixture
def rows(db_alias: str) -> None:
    for n in range(3):
        put(f"ok-{n}", "SUCCESS", task_name="proj.add", worker="celery@a")
    put("bad-1", "FAILURE", task_name="proj.add", worker="celery@a", result=FAILED, ago=50)
    put("bad-2", "FAILURE", task_name="proj.mul", worker="celery@b", result=FAILED, ago=40)
    put("bad-3", "FAILURE", task_name="proj.mul", worker="celery@b", result=CUSTOM, ago=30)
    put("running", "STARTED", task_name="proj.mul", worker="celery@b", ago=20)
    put("stuck", "STARTED", task_name="proj.mul", worker="celery@c", ago=7200)
    put("old", "SUCCESS", task_name="proj.add", worker="celery@a", ago=3 * 86_400)


@pytest.mark.usefixtures("rows")
def test_the_window_counts_the_finished_tasks_the_table_holds() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1))
    assert numbers.states == {"SUCCESS": 3, "FAILURE": 3}
    assert numbers.total == 6
    assert numbers.failure_rate == pytest.approx(0.5)
    by_name = {entry.task_name: entry.states for entry in numbers.tasks}
    assert by_name == {"proj.add": {"SUCCESS": 3, "FAILURE": 1}, "proj.mul": {"FAILURE": 2}}
    assert sum(bar.done for bar in numbers.throughput) == 6
    assert sum(bar.failed for bar in numbers.throughput) == 3
    assert not numbers.history.behind


@pytest.mark.usefixtures("rows")
def test_a_long_window_counts_every_row_in_it() -> None:
    numbers = report.build(timezone.now() - timedelta(days=7))
    assert numbers.states == {"SUCCESS": 4, "FAILURE": 3}
    assert numbers.covered_since <= timezone.now() - timedelta(days=3)


@pytest.mark.usefixtures("rows")
def test_incidents_are_by_exception_type_and_task_with_an_example() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1))
    found = {(e.type, e.task_name, e.count) for e in numbers.incidents}
    assert found == {
        ("ValueError", "proj.add", 1),
        ("ValueError", "proj.mul", 1),
        ("proj.errors.Timeout", "proj.mul", 1),
    }
    [timeout] = [e for e in numbers.incidents if e.type == "proj.errors.Timeout"]
    assert (timeout.example, timeout.workers) == ("bad-3", ["celery@b"])
    assert timeout.first <= timeout.last


@pytest.mark.usefixtures("rows")
def test_stuck_tasks_are_grouped_by_worker() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1))
    loads = {load.worker: load for load in numbers.workers}
    assert numbers.stuck == 1
    assert loads["celery@c"].stuck == 1
    assert loads["celery@c"].oldest_stuck is not None
    b = loads["celery@b"]
    assert (b.total, b.failed, b.running) == (2, 2, 1)
    assert sum(load.running for load in numbers.workers) == 1  # stuck is not running
    with override_settings(DJANGO_CELERY_RESULTS={"STUCK_AFTER": 10}):
        later = report.build(timezone.now() - timedelta(hours=1))
    assert later.stuck == 2
    assert sum(load.running for load in later.workers) == 0


def test_the_backlog_needs_track_pending(db_alias: str) -> None:
    put("waiting-1", "PENDING", ago=300, queue="slow")
    put("waiting-2", "PENDING", ago=100, queue="fast")
    put("waiting-3", "PENDING", ago=50, queue="fast")
    assert report.build(timezone.now() - timedelta(hours=1)).backlog is None
    with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
        backlog = report.build(timezone.now() - timedelta(hours=1)).backlog
    assert backlog is not None
    assert (backlog.count, backlog.capped) == (3, False)
    assert backlog.queues == {"fast": 2, "slow": 1}
    assert backlog.oldest is not None
    assert timezone.now() - backlog.oldest > timedelta(seconds=299)


@pytest.mark.usefixtures("rows")
def test_the_previous_window_is_beside_this_one() -> None:
    put("earlier", "SUCCESS", task_name="proj.add", worker="celery@a", ago=5400)
    numbers = report.build(timezone.now() - timedelta(hours=1), compare=True)
    assert numbers.previous["proj.add"].states == {"SUCCESS": 1}


def test_as_dict_is_json(db_alias: str) -> None:
    put("one", "FAILURE", result=FAILED, worker="celery@a")
    document = report.build(timezone.now() - timedelta(hours=1)).as_dict()
    assert json.loads(json.dumps(document))["states"] == {"FAILURE": 1}


def test_registered_workers_are_listed_with_their_state(db_alias: str) -> None:
    from django_celery_results.workers import registry
    from django_celery_results.workers.registry import WorkerInfo

    registry.register(WorkerInfo("celery@idle", "h", 1, "x.prefork.TaskPool", 4), db_alias)
    gone = WorkerInfo("celery@gone", "h", 2)
    registry.register(gone, db_alias)
    registry.stop(gone, db_alias)
    put("unregistered", "SUCCESS", task_name="proj.add", worker="celery@old")
    loads = {
        load.worker: load for load in report.build(timezone.now() - timedelta(hours=1)).workers
    }
    assert loads["celery@idle"].state == "live"
    assert (loads["celery@idle"].pool, loads["celery@idle"].concurrency) == ("prefork", 4)
    assert loads["celery@idle"].registry_id is not None
    assert "celery@gone" not in loads  # stopped, and nothing in the window
    assert loads["celery@old"].state == ""  # never registered
