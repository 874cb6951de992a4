"""Django 6's ``django.tasks`` run by a real ``celery worker``; results read from our table.

The functions are ``demo_library.jobs``: plain ``@task`` functions of an app that knows
nothing of Celery. The test process enqueues them through ``TASKS`` (``CeleryBackend``,
the current Celery app: the sender's) and reads their results back as Django's
``TaskResult``; the worker of the example project runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from django_celery_results.models import TaskResult as TaskResultRow
from tests.e2e.conftest import (
    TIMEOUT,
    Brokers,
    Combo,
    Worker,
    combo_params,
    running_worker,
    sender_app,
    wait_until,
)

COMBOS = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "rabbitmq", "prefork"),
]
pytestmark = [
    pytest.mark.skipif(
        django.VERSION < (6, 0),
        reason="django.tasks needs Django 6.0+: the Python 3.13 / Django 6.1 leg runs these",
    ),
    pytest.mark.parametrize("combo", combo_params(COMBOS), indirect=True, scope="module"),
]


@pytest.fixture(scope="module")
def signals_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signals") / "signals.jsonl"


@pytest.fixture(scope="module")
def worker(
    combo: Combo,
    brokers: Brokers,
    django_db_setup: None,
    django_db_blocker: Any,
    signals_file: Path,
) -> Iterator[Worker]:
    """The module's worker, logging Django's task signals to ``signals_file``."""
    env = {"DEMO_TASK_SIGNALS_FILE": str(signals_file)}
    with running_worker(combo, brokers, django_db_blocker, extra_env=env) as started:
        yield started


@pytest.fixture
def app(worker: Worker, combo: Combo) -> Iterator[Any]:
    """The sender's app, current: ``CeleryBackend`` sends with it (TRACK_PENDING off)."""
    with sender_app(worker, combo, {}) as sender:
        yield sender


def jobs() -> Any:
    import demo_library.jobs

    return demo_library.jobs


def finished(result: Any, timeout: float = TIMEOUT) -> Any:
    """Refresh ``result`` until the worker has finished it."""

    def done() -> bool:
        result.refresh()
        return bool(result.is_finished)

    wait_until(done, timeout=timeout, what=f"{result.task.name} {result.id} to finish")
    return result


def test_a_task_runs_and_every_field_is_filled(app: Any, worker: Worker) -> None:
    sent = jobs().add.enqueue(2, 3)
    assert sent.status == "READY"
    result = finished(jobs().add.get_result(sent.id))  # Task.get_result checks the function
    assert result.status == "SUCCESSFUL", result.errors
    assert result.return_value == 5
    assert (result.args, result.kwargs) == ([2, 3], {})
    assert result.enqueued_at == sent.enqueued_at
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert len(result.worker_ids) == 1
    assert result.worker_ids[0].startswith(f"{worker.queue}@")
    assert result.errors == []
    row = TaskResultRow.objects.get(task_id=sent.id)
    # Shown in the admin like any task: the function's path, the queue, the worker.
    assert (row.task_name, row.queue, row.worker) == (
        "demo_library.jobs.add",
        worker.queue,
        result.worker_ids[0],
    )


def test_args_and_kwargs_round_trip_as_json(app: Any) -> None:
    args = [1, "ü", [2.5, None], {"a": True}]
    kwargs = {"when": "2026-12-02", "nested": {"list": [1, 2]}}
    result = finished(jobs().echo.enqueue(*args, **kwargs))
    assert result.return_value == {"args": args, "kwargs": kwargs}
    assert (result.args, result.kwargs) == (args, kwargs)


def test_a_failure_has_its_exception_path_and_traceback(app: Any) -> None:
    result = finished(jobs().fail.enqueue("boom"))
    assert result.status == "FAILED"
    [error] = result.errors
    assert error.exception_class is ValueError
    assert error.exception_class_path == "builtins.ValueError"
    assert "demo_library/jobs.py" in error.traceback
    assert "ValueError: boom" in error.traceback
    with pytest.raises(ValueError, match="failed"):
        _ = result.return_value


def test_a_celery_retry_counts_as_a_second_attempt(app: Any) -> None:
    result = finished(jobs().flaky.enqueue(7))
    assert (result.status, result.return_value) == ("SUCCESSFUL", 7)
    assert result.attempts == 2
    assert result.last_attempted_at > result.started_at  # the retry started later
    assert TaskResultRow.objects.get(task_id=result.id).retries == 1


def test_run_after_defers_the_start(app: Any) -> None:
    run_after = timezone.now() + timedelta(seconds=3)
    result = finished(jobs().add.using(run_after=run_after).enqueue(1, 1))
    assert result.return_value == 2
    assert result.started_at >= run_after


def test_priority_and_queue_reach_the_broker(app: Any, worker: Worker, combo: Combo) -> None:
    task = jobs().delivery.using(priority=100, queue_name=worker.queue)
    result = finished(task.enqueue())
    # Django's highest priority is the broker's most urgent: 0 on Redis, 9 on RabbitMQ.
    urgent = {"redis": 0, "rabbitmq": 9}[combo.broker]
    assert result.return_value == {"priority": urgent, "routing_key": worker.queue}
    assert TaskResultRow.objects.get(task_id=result.id).queue == worker.queue


def test_an_async_task_function_runs_in_the_worker(app: Any) -> None:
    result = finished(jobs().async_add.enqueue(20, 22))
    assert result.return_value == 42


def test_a_task_that_takes_context_sees_its_own_result(app: Any) -> None:
    result = finished(jobs().attempt.enqueue())
    assert result.return_value == {"id": result.id, "attempt": 1}


def test_async_enqueue_and_results(app: Any) -> None:
    sent = async_to_sync(jobs().add.aenqueue)(4, 5)

    def arefreshed() -> bool:
        async_to_sync(sent.arefresh)()
        return bool(sent.is_finished)

    wait_until(arefreshed, what="arefresh to see the result")
    result = async_to_sync(jobs().add.aget_result)(sent.id)
    assert (result.status, result.return_value) == ("SUCCESSFUL", 9)


def test_an_unknown_id_does_not_exist(app: Any) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    with pytest.raises(TaskResultDoesNotExist):
        jobs().add.get_result("3c5e1d9b-0000-4000-8000-000000000000")


def test_signals_fire_where_djangos_contract_says(app: Any, signals_file: Path) -> None:
    from django.tasks.signals import task_enqueued

    enqueued: list[str] = []
    task_enqueued.connect(
        lambda task_result, **kw: enqueued.append(task_result.id),
        weak=False,
        dispatch_uid="e2e.enqueued",
    )
    try:
        ok = jobs().add.enqueue(1, 2)
        bad = jobs().fail.enqueue("signal")
    finally:
        task_enqueued.disconnect(dispatch_uid="e2e.enqueued")
    assert enqueued == [ok.id, bad.id]
    finished(ok), finished(bad)

    def lines() -> list[dict[str, Any]]:
        if not signals_file.exists():
            return []
        logged = [json.loads(line) for line in signals_file.read_text().splitlines()]
        return [line for line in logged if line["id"] in (ok.id, bad.id)]

    wait_until(lambda: len(lines()) == 4, what="the worker's four signal lines")
    logged = {(line["id"], line["signal"]): line for line in lines()}
    sender = "django_celery_results.tasks.backend.CeleryBackend"
    for task_id, outcome in ((ok.id, "SUCCESSFUL"), (bad.id, "FAILED")):
        started = logged[(task_id, "task_started")]
        assert (started["status"], started["stored_status"]) == ("RUNNING", "RUNNING")
        done = logged[(task_id, "task_finished")]
        # Sent once the outcome is stored: a receiver reading the result sees it.
        assert (done["status"], done["stored_status"]) == (outcome, outcome)
        assert started["sender"] == done["sender"] == sender
