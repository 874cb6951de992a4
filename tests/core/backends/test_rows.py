"""``backends.rows``: from a request or a message being sent to the row the backend writes."""

from __future__ import annotations

import logging

import pytest
from celery import Celery, states
from celery.app.task import Context

from django_celery_results import retention
from django_celery_results.backends import rows
from django_celery_results.backends.rows import InvalidStateName, InvalidTaskId
from django_celery_results.drivers import TaskRow
from django_celery_results.models import GroupResult, TaskResult


def app(extended: bool = True) -> Celery:
    celery = Celery("rows", set_as_current=False)
    celery.conf.update(result_backend="django-db", result_extended=extended)
    return celery


@pytest.mark.parametrize(
    ("value", "says"),
    [("", "non-empty"), ("a\x00b", "NUL"), ("x" * 256, "characters"), (None, "non-empty")],
)
def test_an_id_no_row_can_hold_is_refused_saying_why(value: object, says: str) -> None:
    with pytest.raises(InvalidTaskId, match=says):
        rows.check_id_length(value, TaskResult, "task_id")  # type: ignore[arg-type]
    with pytest.raises(InvalidTaskId, match=says):
        rows.check_id_length(value, GroupResult, "group_id")  # type: ignore[arg-type]


def test_a_state_name_longer_than_the_column_is_refused() -> None:
    # The settings' check (below the models) holds the same limit as a constant.
    assert rows.column_length(TaskResult, "status") == retention.STATE_MAX_LENGTH == 50
    rows.check_state_length("P" * 50)
    with pytest.raises(InvalidStateName, match="50"):
        rows.check_state_length("P" * 51)


def test_a_long_name_is_cut_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    hostname = "celery@" + "h" * 300
    with caplog.at_level(logging.WARNING, logger=rows.logger.name):
        for _ in range(3):
            fitted = rows.fit_descriptive_columns({"worker": hostname})
    assert fitted["worker"] == hostname[: rows.column_length(TaskResult, "worker")]
    assert len([r for r in caplog.records if "worker" in r.getMessage()]) == 1


def test_a_request_s_columns_are_taken_only_with_their_types() -> None:
    backend = app().backend
    request = Context(
        id="t", task="tasks.add", argsrepr="(1, 2)", kwargsrepr="{}", hostname=7, retries="2",
        delivery_info={"routing_key": "fast"}, periodic_task_name=None,
    )  # fmt: skip
    props = backend._get_extended_properties(request, None)
    assert props["task_name"] == "tasks.add"
    assert props["task_args"] == '"(1, 2)"'
    assert props["worker"] is None  # not text
    assert props["retries"] is None  # not a whole number
    assert props["queue"] == "fast"


def test_without_result_extended_no_descriptive_column_is_written() -> None:
    backend = app(extended=False).backend
    props = backend._get_extended_properties(Context(id="t", task="tasks.add"), None)
    assert props == dict.fromkeys(TaskRow.DESCRIPTIVE)


def test_a_pending_row_is_encoded_as_the_worker_encodes() -> None:
    backend = app().backend
    headers = {"task": "tasks.add", "argsrepr": "(1,)", "kwargsrepr": "{'a': 1}"}
    pending = backend.pending_row("t1", headers, ((1,), {"a": 1}, {}), routing_key="q")
    assert pending.status == states.PENDING
    assert (pending.task_name, pending.queue) == ("tasks.add", "q")
    assert pending.task_args == '"(1,)"'
    assert pending.result == "null"
    assert pending.worker is None
