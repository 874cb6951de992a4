"""Retry, revoke, terminate and delete on rows: what each does, and what it skips and why."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import pytest
from celery import Celery

from django_celery_results.models import TaskResult
from django_celery_results.operations import actions, calls

pytestmark = pytest.mark.django_db


def stored(status: str, task_id: str, *, call: bool = True, **extra: Any) -> TaskResult:
    meta: dict[str, Any] = {"children": []}
    if call:
        meta[calls.META_KEY] = {
            "body": json.dumps([[task_id], {"n": 1}]),
            "content_type": "application/json",
            "content_encoding": "utf-8",
            "serializer": "json",
            "exchange": "",
            "routing_key": "billing",
        }
    return TaskResult.objects.create(
        task_id=task_id,
        task_name="proj.charge",
        status=status,
        queue="billing",
        content_type="application/json",
        content_encoding="utf-8",
        meta=json.dumps(meta),
        **extra,
    )


def test_retry_sends_each_failure_once_and_links_both_ways(app: Celery) -> None:
    failed = stored("FAILURE", "f-1")
    with mock.patch.object(app, "send_task") as send_task:
        outcome = actions.retry([failed], app)
    assert outcome.done == 1
    new_id = TaskResult.objects.get(retry_of="f-1").task_id
    send_task.assert_called_once_with(
        "proj.charge", args=("f-1",), kwargs={"n": 1}, task_id=new_id, queue="billing",
        exchange=None, routing_key="billing", serializer="json",
    )  # fmt: skip
    retry = TaskResult.objects.get(task_id=new_id)
    assert (retry.status, retry.retry_of, retry.task_name) == ("PENDING", "f-1", "proj.charge")
    assert list(TaskResult.objects.filter(retry_of="f-1").values_list("task_id", flat=True)) == [
        new_id
    ]


def test_retry_skips_successes_unfinished_and_uncalled_rows(app: Celery) -> None:
    rows = [
        stored("SUCCESS", "s-1"),
        stored("STARTED", "r-1"),
        stored("FAILURE", "n-1", call=False),
    ]
    with mock.patch.object(app, "send_task") as send_task:
        outcome = actions.retry(rows, app)
    send_task.assert_not_called()
    assert outcome.skipped == {"succeeded": 1, "unfinished": 1, "no-call": 1}
    with mock.patch.object(app, "send_task") as send_task:
        assert actions.retry(rows[:1], app, succeeded=True).done == 1


def test_a_failed_send_leaves_no_retry_row(app: Celery) -> None:
    failed = stored("FAILURE", "f-2")
    with mock.patch.object(app, "send_task", side_effect=ConnectionError("down")):
        outcome = actions.retry([failed], app)
    assert outcome.failed == 1
    assert not TaskResult.objects.filter(retry_of="f-2").exists()


def test_revoke_marks_tasks_not_started_revoked_at_once(app: Celery) -> None:
    app.conf.task_track_started = True
    pending, running, done = (
        stored("PENDING", "p-1"),
        stored("STARTED", "r-2"),
        stored("SUCCESS", "d-1"),
    )
    with mock.patch.object(app.control, "revoke") as revoke:
        outcome = actions.revoke([pending, running, done], app)
    revoke.assert_called_once_with(["p-1", "r-2"])
    assert (outcome.done, outcome.skipped) == (2, {"finished": 1})
    states = dict(TaskResult.objects.values_list("task_id", "status"))
    assert states == {"p-1": "REVOKED", "r-2": "STARTED", "d-1": "SUCCESS"}
    row = TaskResult.objects.get(task_id="p-1")
    assert json.loads(row.result or "{}")["exc_type"] == "TaskRevokedError"
    assert row.rolled_up is False


def test_terminate_signals_with_the_chosen_signal(app: Celery) -> None:
    running = stored("STARTED", "r-3")
    with mock.patch.object(app.control, "terminate") as terminate:
        actions.perform("terminate", [running], app, {"signal": "SIGKILL"})
    terminate.assert_called_once_with(["r-3"], signal="SIGKILL")


def test_delete_deletes_the_rows(app: Celery) -> None:
    rows = [stored("FAILURE", "x-1"), stored("FAILURE", "x-2")]
    keep = stored("FAILURE", "x-3")
    assert actions.delete(rows).done == 2
    assert list(TaskResult.objects.values_list("pk", flat=True)) == [keep.pk]


def test_without_track_started_a_pending_row_is_left_to_its_worker(app: Celery) -> None:
    # A running task's row reads PENDING too: writing REVOKED would be wrong.
    pending = stored("PENDING", "p-2")
    with mock.patch.object(app.control, "revoke") as revoke:
        assert actions.revoke([pending], app).done == 1
    revoke.assert_called_once_with(["p-2"])
    assert TaskResult.objects.get(task_id="p-2").status == "PENDING"
