"""``report.build``, the dashboard's and ``celery_results_stats``' numbers, on every database."""

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
def test_the_window_counts_what_the_table_holds() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1))
    assert not numbers.sampled
    assert numbers.states == {"SUCCESS": 3, "FAILURE": 3, "STARTED": 1}
    assert numbers.total == 7
    assert numbers.failure_rate == pytest.approx(0.5)
    by_name = {entry.task_name: entry.states for entry in numbers.tasks}
    assert by_name == {
        "proj.add": {"SUCCESS": 3, "FAILURE": 1},
        "proj.mul": {"FAILURE": 2, "STARTED": 1},
    }
    assert sum(bucket.done for bucket in numbers.throughput) == 6
    assert sum(bucket.failed for bucket in numbers.throughput) == 3


@pytest.mark.usefixtures("rows")
def test_exceptions_are_counted_by_type_with_an_example() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1))
    found = {(e.type, e.count) for e in numbers.exceptions}
    assert found == {("ValueError", 2), ("proj.errors.Timeout", 1)}
    [value_error] = [e for e in numbers.exceptions if e.type == "ValueError"]
    assert value_error.example == "bad-2"  # the newest


@pytest.mark.usefixtures("rows")
def test_stuck_tasks_are_grouped_by_worker() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1))
    loads = {load.worker: load for load in numbers.workers}
    assert numbers.stuck == 1
    assert loads["celery@c"].stuck == 1
    assert loads["celery@c"].oldest_stuck is not None
    assert (loads["celery@b"].total, loads["celery@b"].failed, loads["celery@b"].running) == (
        3,
        2,
        1,
    )
    with override_settings(DJANGO_CELERY_RESULTS={"STUCK_AFTER": 10}):
        assert report.build(timezone.now() - timedelta(hours=1)).stuck == 2


def test_the_backlog_needs_track_pending(db_alias: str) -> None:
    put("waiting-1", "PENDING", ago=300)
    put("waiting-2", "PENDING", ago=100)
    assert report.build(timezone.now() - timedelta(hours=1)).backlog is None
    with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
        backlog = report.build(timezone.now() - timedelta(hours=1)).backlog
    assert backlog is not None
    assert (backlog.count, backlog.capped) == (2, False)
    assert backlog.oldest is not None
    assert timezone.now() - backlog.oldest > timedelta(seconds=299)


@pytest.mark.usefixtures("rows")
def test_a_window_past_the_bound_covers_its_newest_rows() -> None:
    numbers = report.build(timezone.now() - timedelta(hours=1), max_rows=4)
    assert numbers.sampled
    assert numbers.total == 4
    newest = TaskResult.objects.order_by("-date_done").values_list("date_done", flat=True)
    assert numbers.covered_since == newest[3]


def test_as_dict_is_json(db_alias: str) -> None:
    put("one", "FAILURE", result=FAILED, worker="celery@a")
    document = report.build(timezone.now() - timedelta(hours=1)).as_dict()
    assert json.loads(json.dumps(document))["states"] == {"FAILURE": 1}


@pytest.mark.parametrize(
    ("content_type", "result", "name"),
    [
        ("application/json", FAILED, "ValueError"),
        ("application/json", CUSTOM, "proj.errors.Timeout"),
        ("application/x-python-serialize", "gASV", "(application/x-python-serialize)"),
        ("application/json", "{broken", "(unreadable)"),
        ("application/json", "[1]", "(unknown)"),
        ("application/json", None, "(no result)"),
    ],
)
def test_exception_type(content_type: str, result: str | None, name: str) -> None:
    assert report.exception_type(content_type, result) == name
