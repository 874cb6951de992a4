"""``get_result()`` without a worker: rows written as a worker writes them, read back.

Rows go through the result backend with a request like the one Celery builds from the
message.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from celery import states
from celery.app.task import Context
from django.test import override_settings

from django_celery_results.models import TaskResult as TaskResultRow
from django_celery_results.testing.suite.helpers import new_id

from .helpers import APP, NEEDS_DJANGO_6, jobs, store, tasks_setting

pytestmark = pytest.mark.django_db(transaction=True)


@NEEDS_DJANGO_6
@pytest.mark.parametrize(
    ("state", "status"),
    [
        (states.PENDING, "READY"),
        (states.RECEIVED, "READY"),
        (states.STARTED, "RUNNING"),
        (states.RETRY, "RUNNING"),
        ("PROGRESS", "RUNNING"),
        (states.SUCCESS, "SUCCESSFUL"),
        (states.FAILURE, "FAILED"),
        (states.REVOKED, "FAILED"),
    ],
)
def test_states_map_to_django_statuses(backend: Any, state: str, status: str) -> None:
    task_id = new_id()
    failed = state in (states.FAILURE, states.RETRY, states.REVOKED)
    store(task_id, state, ValueError("no") if failed else 5, "Traceback …" if failed else None)
    result = backend.get_result(task_id)
    assert result.status == status
    assert result.is_finished == (status in ("SUCCESSFUL", "FAILED"))
    assert bool(result.errors) == failed
    assert (result.finished_at is not None) == result.is_finished


@NEEDS_DJANGO_6
def test_every_field_comes_from_the_row(backend: Any) -> None:
    task_id = new_id()
    store(task_id, states.STARTED, retries=1, hostname="w2@host", kwargs={"y": 3}, args=[2])
    running = backend.get_result(task_id)
    row = TaskResultRow.objects.get(task_id=task_id)
    assert running.status == "RUNNING"
    assert running.started_at == row.date_started
    assert running.last_attempted_at == row.date_done  # the STARTED write: this attempt
    assert (running.args, running.kwargs) == ([2], {"y": 3})
    assert running.worker_ids == ["w2@host", "w2@host"]  # one per attempt: a retry ran
    assert running.attempts == 2
    with pytest.raises(ValueError, match="not finished"):
        _ = running.return_value
    store(task_id, states.SUCCESS, 5, retries=1, hostname="w2@host", kwargs={"y": 3}, args=[2])
    running.refresh()  # Django's refresh() reads through get_result()
    assert running.status == "SUCCESSFUL"
    assert running.return_value == 5
    assert running.finished_at == TaskResultRow.objects.get(task_id=task_id).date_done
    assert running.started_at == row.date_started  # the first attempt's start is kept
    again = async_to_sync(backend.aget_result)(task_id)
    assert (again.status, again.return_value, again.id) == ("SUCCESSFUL", 5, task_id)


@NEEDS_DJANGO_6
def test_a_retry_without_an_exception_is_celerys_retry(backend: Any) -> None:
    task_id = new_id()
    store(task_id, states.RETRY, None, "Traceback …")  # what ``raise self.retry()`` stores
    [error] = backend.get_result(task_id).errors
    assert error.exception_class_path == "celery.exceptions.Retry"


@NEEDS_DJANGO_6
def test_a_task_sent_through_another_alias_answers_for_it() -> None:
    from django.tasks import task_backends

    two = tasks_setting(APP="tests.core.tasks.helpers.APP")
    two["celery"] = two["default"]
    with override_settings(TASKS=two):
        sent = jobs().add.using(backend="celery").enqueue(1, 2)
        assert (sent.backend, sent.task.backend) == ("celery", "celery")
        row = TaskResultRow.objects.get(task_id=sent.id)
        assert row.task_name == "demo_library.jobs.add"
        read = task_backends["celery"].get_result(sent.id)
        # refresh() asks result.task's backend: the alias the result was read through.
        assert (read.backend, read.task.backend) == ("celery", "celery")
        read.refresh()
        assert read.status == "READY"
    with APP.connection_for_write() as connection:
        connection.default_channel.queue_purge(APP.conf.task_default_queue)


@NEEDS_DJANGO_6
def test_a_failure_names_its_exception_and_keeps_its_traceback(backend: Any) -> None:
    task_id = new_id()
    store(task_id, states.FAILURE, KeyError("missing"), "Traceback (most recent call last):\n…")
    failed = backend.get_result(task_id)
    assert failed.status == "FAILED"
    [error] = failed.errors
    assert error.exception_class_path == "builtins.KeyError"
    assert error.exception_class is KeyError
    assert error.traceback.startswith("Traceback (most recent call last):")
    with pytest.raises(ValueError, match="failed"):
        _ = failed.return_value


@NEEDS_DJANGO_6
def test_an_unknown_id_does_not_exist(backend: Any) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result(new_id())
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result("not an id at all, and far too long " * 10)


@NEEDS_DJANGO_6
def test_a_plain_celery_task_is_not_a_django_task(backend: Any) -> None:
    from django.tasks.exceptions import TaskResultDoesNotExist

    task_id = new_id()
    APP.backend.store_result(
        task_id, 1, states.SUCCESS, request=Context(id=task_id, task="demo_app.tasks.add")
    )
    with pytest.raises(TaskResultDoesNotExist, match=r"Celery task 'demo_app\.tasks\.add'"):
        backend.get_result(task_id)
