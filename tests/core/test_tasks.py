"""The ``django.tasks`` backend without a worker: sending, reading rows, options, checks.

A real Redis broker takes the messages; rows are written as a worker writes them, through
the result backend with a request like the one Celery builds from the message.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from celery import Celery, states
from celery.app.task import Context
from django.test import override_settings
from django.utils import timezone

from django_celery_results.models import TaskResult as TaskResultRow
from django_celery_results.testing.suite.helpers import new_id
from tests.databases import reachable

NEEDS_DJANGO_6 = pytest.mark.skipif(
    django.VERSION < (6, 0),
    reason="django.tasks needs Django 6.0+: the Python 3.13 / Django 6.1 leg runs this",
)
REDIS = "redis://127.0.0.1:6379/0"
BACKEND = "django_celery_results.tasks.CeleryBackend"

pytestmark = pytest.mark.django_db(transaction=True)

#: The app ``OPTIONS["APP"]`` names in these tests (a module attribute, as in a project).
APP = Celery("tasks-tests", set_as_current=False)
APP.conf.update(
    broker_url=REDIS,
    result_backend="django-db",
    result_extended=True,
    task_default_queue=f"tasks-tests-{uuid.uuid4().hex[:8]}",
    task_publish_retry=False,
)
#: An app that stores results elsewhere: the check must refuse it.
ELSEWHERE = Celery("elsewhere", set_as_current=False)
ELSEWHERE.conf.result_backend = "cache+memory://"


def tasks_setting(**options: Any) -> dict[str, Any]:
    return {"default": {"BACKEND": BACKEND, "QUEUES": [], "OPTIONS": options}}


@pytest.fixture
def backend() -> Iterator[Any]:
    if not reachable("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379: redis-server --daemonize yes")
    from django.tasks import task_backends

    with override_settings(TASKS=tasks_setting(APP="tests.core.test_tasks.APP")):
        yield task_backends["default"]
    with APP.connection_for_write() as connection:
        connection.default_channel.queue_purge(APP.conf.task_default_queue)


def jobs() -> Any:
    return importlib.import_module("demo_library.jobs")


def store(
    task_id: str, state: str, result: Any = None, traceback: str | None = None, **request: Any
) -> None:
    """Write a state of ``task_id`` as the worker does, from a runner's request."""
    context = Context(
        id=task_id,
        task="django_celery_results.run_django_task",
        args=request.pop("args", [2, 3]),
        kwargs=request.pop("kwargs", {}),
        hostname=request.pop("hostname", "w1@host"),
        retries=request.pop("retries", 0),
        delivery_info={"routing_key": "celery"},
        django_task=request.pop("path", "demo_library.jobs.add"),
        **request,
    )
    APP.backend.store_result(task_id, result, state, traceback=traceback, request=context)


@NEEDS_DJANGO_6
def test_enqueue_writes_the_pending_row_then_sends(backend: Any) -> None:
    from django.tasks import TaskResultStatus
    from django.tasks.signals import task_enqueued

    seen: list[Any] = []
    task_enqueued.connect(lambda **kw: seen.append(kw), weak=False, dispatch_uid="t.enqueued")
    try:
        before = timezone.now()
        result = jobs().echo.enqueue(1, "ü", (2, 3), key={"nested": [None, True]})
    finally:
        task_enqueued.disconnect(dispatch_uid="t.enqueued")
    assert result.status == TaskResultStatus.READY
    assert result.args == [1, "ü", [2, 3]]  # JSON values: the tuple became a list
    row = TaskResultRow.objects.get(task_id=result.id)
    assert row.status == states.PENDING
    assert row.task_name == "demo_library.jobs.echo"
    assert row.queue == APP.conf.task_default_queue
    assert before <= result.enqueued_at == row.date_created
    assert [kw["task_result"].id for kw in seen] == [result.id]
    assert seen[0]["sender"] is type(backend)
    stored = backend.get_result(result.id)
    assert stored.status == TaskResultStatus.READY
    assert (stored.args, stored.kwargs) == ([1, "ü", [2, 3]], {"key": {"nested": [None, True]}})
    assert stored.enqueued_at == result.enqueued_at
    assert (stored.started_at, stored.finished_at, stored.worker_ids) == (None, None, [])
    # The message is the runner's, naming the function in its header.
    with APP.connection_for_read() as connection:
        queue = connection.SimpleQueue(APP.conf.task_default_queue)
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.headers["task"] == "django_celery_results.run_django_task"
    assert message.headers["django_task"] == "demo_library.jobs.echo"
    assert message.headers["id"] == result.id


@NEEDS_DJANGO_6
def test_a_refused_message_leaves_no_row(backend: Any) -> None:
    from django.tasks import task_backends

    before = TaskResultRow.objects.count()
    unreachable = Celery("unreachable", set_as_current=False)
    unreachable.conf.update(
        broker_url="amqp://guest:guest@127.0.0.1:1//",
        result_backend="django-db",
        task_publish_retry=False,
        broker_connection_timeout=1,
    )
    try:
        with override_settings(TASKS=tasks_setting()):
            unreachable.set_current()
            with pytest.raises(Exception, match=r"refused|Connection"):
                task_backends["default"].enqueue(jobs().add, [1, 2], {})
    finally:
        APP.set_current()
        unreachable.close()
    assert TaskResultRow.objects.count() == before


@NEEDS_DJANGO_6
def test_args_that_are_not_json_are_refused_before_anything_is_written(backend: Any) -> None:
    before = TaskResultRow.objects.count()
    with pytest.raises(TypeError):
        jobs().echo.enqueue(object())
    assert TaskResultRow.objects.count() == before


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

    two = tasks_setting(APP="tests.core.test_tasks.APP")
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


@NEEDS_DJANGO_6
def test_priorities_map_onto_the_brokers_range(backend: Any) -> None:
    from django.tasks import task_backends

    assert backend.priority_range == (9, 0)  # Redis: 0 runs first
    # Django's default (0) is set too, in the middle: no priority is Redis's most urgent.
    assert [backend.celery_priority(p) for p in (-100, -1, 0, 1, 50, 100)] == [
        9, 5, 4, 4, 2, 0
    ]  # fmt: skip
    amqp = Celery("amqp", set_as_current=False)
    amqp.conf.broker_url = "amqp://guest:guest@127.0.0.1:5672//"
    amqp.conf.result_backend = "django-db"
    try:
        with override_settings(TASKS=tasks_setting()):
            amqp.set_current()
            rabbit = task_backends["default"]
            assert rabbit.priority_range == (0, 9)
            assert [rabbit.celery_priority(p) for p in (-100, 0, 100)] == [0, 4, 9]
        with override_settings(TASKS=tasks_setting(PRIORITY_RANGE=(0, 255))):
            assert task_backends["default"].celery_priority(100) == 255
    finally:
        APP.set_current()
        amqp.close()


@NEEDS_DJANGO_6
def test_queue_priority_and_run_after_become_celery_options(backend: Any) -> None:
    later = timezone.now() + timedelta(minutes=5)
    task = jobs().add.using(queue_name="reports", priority=100, run_after=later)
    assert backend.send_options(task) == {"queue": "reports", "priority": 0, "eta": later}
    # Django's default queue leaves the routing to Celery.
    assert backend.send_options(jobs().add) == {"priority": 4}


@NEEDS_DJANGO_6
@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"APP": "tests.core.test_tasks.APP", "COLOUR": "blue"}, "E005"),
        ({"APP": "tests.core.test_tasks.APP", "PRIORITY_RANGE": (0, "9")}, "E006"),
        ({"APP": "tests.core.test_tasks.ELSEWHERE"}, "E007"),
        ({"APP": "tests.core.no_such_module.app"}, "E007"),
    ],
)
def test_checks_name_what_is_wrong(options: dict[str, Any], error: str) -> None:
    from django.tasks import task_backends

    with override_settings(TASKS=tasks_setting(**options)):
        messages = list(task_backends["default"].check())
    assert [m.id for m in messages] == [f"django_celery_results.{error}"]
    assert messages[0].hint


@NEEDS_DJANGO_6
def test_a_good_setting_passes_its_checks(backend: Any) -> None:
    assert list(backend.check()) == []


@pytest.mark.skipif(django.VERSION >= (6, 0), reason="Django 5.2 has no django.tasks")
def test_on_django_5_the_backend_says_it_needs_django_6() -> None:
    import django_celery_results.tasks as tasks  # autodiscover_tasks() imports it: it must work

    with pytest.raises(ImportError, match=r"needs Django 6\.0 or later"):
        from django_celery_results.tasks import CeleryBackend  # noqa: F401
    assert tasks.__name__ == "django_celery_results.tasks"
