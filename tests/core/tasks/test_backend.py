"""The ``django.tasks`` backend without a worker: sending, options, checks.

A real Redis broker takes the messages.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django
import pytest
from celery import Celery, states
from django.test import override_settings
from django.utils import timezone

from django_celery_results.models import TaskResult as TaskResultRow
from tests.brokers import RABBITMQ_URL

from .helpers import APP, NEEDS_DJANGO_6, jobs, tasks_setting

pytestmark = pytest.mark.django_db(transaction=True)


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
def test_priorities_map_onto_the_brokers_range(backend: Any) -> None:
    from django.tasks import task_backends

    assert backend.priority_range == (9, 0)  # Redis: 0 runs first
    # Django's default (0) is set too, in the middle: no priority is Redis's most urgent.
    assert [backend.celery_priority(p) for p in (-100, -1, 0, 1, 50, 100)] == [
        9, 5, 4, 4, 2, 0
    ]  # fmt: skip
    amqp = Celery("amqp", set_as_current=False)
    amqp.conf.broker_url = RABBITMQ_URL
    amqp.conf.result_backend = "django-db"
    try:
        with override_settings(TASKS=tasks_setting()):
            amqp.set_current()
            rabbit: Any = task_backends["default"]
            assert rabbit.priority_range == (0, 9)
            assert [rabbit.celery_priority(p) for p in (-100, 0, 100)] == [0, 4, 9]
        with override_settings(TASKS=tasks_setting(PRIORITY_RANGE=(0, 255))):
            wide: Any = task_backends["default"]
            assert wide.celery_priority(100) == 255
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
        ({"APP": "tests.core.tasks.helpers.APP", "COLOUR": "blue"}, "E005"),
        ({"APP": "tests.core.tasks.helpers.APP", "PRIORITY_RANGE": (0, "9")}, "E006"),
        ({"APP": "tests.core.tasks.helpers.ELSEWHERE"}, "E007"),
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
