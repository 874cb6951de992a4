"""``CeleryBackend``: the ``TASKS`` backend that sends Django's tasks to Celery workers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ParamSpec, TypeVar

from celery import Celery, current_app
from celery.utils import uuid
from django.core import checks
from django.tasks import DEFAULT_TASK_QUEUE_NAME, Task, TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY
from django.tasks.signals import task_enqueued
from django.utils.functional import cached_property
from django.utils.module_loading import import_string

from ..utils import DJANGO_TASK_HEADER
from . import results
from .runner import BACKEND_HEADER, RUNNER_NAME

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The options ``TASKS[alias]["OPTIONS"]`` takes.
OPTIONS = ("APP", "PRIORITY_RANGE")
#: Broker schemes whose smaller priority number runs first (Redis: 0 is the most urgent).
LOW_NUMBER_FIRST = ("redis", "rediss", "sentinel", "redis+socket")


class CeleryBackend(BaseTaskBackend):
    """Send ``django.tasks`` tasks to Celery; read their results from our table.

    ``OPTIONS``: ``APP``, the import path of the Celery app (default: the current app,
    the one your project's ``celery.py`` creates); ``PRIORITY_RANGE``, the Celery
    priorities that Django's lowest (-100) and highest (100) priority map to (default
    ``(9, 0)`` on Redis, where 0 runs first, else ``(0, 9)``, RabbitMQ's order).
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    @property
    def app(self) -> Celery:
        """The Celery app tasks are sent with and results read through (asked each time)."""
        return self._named_app or current_app._get_current_object()

    @cached_property
    def _named_app(self) -> Celery | None:
        path = self.options.get("APP")
        if not path:
            return None
        app = import_string(path)
        if not isinstance(app, Celery):
            kind = type(app).__name__
            raise TypeError(f"OPTIONS['APP'] = {path!r} is a {kind}, not a Celery app")
        return app

    @property
    def priority_range(self) -> tuple[int, int]:
        """Celery's priorities for Django's lowest and highest (``PRIORITY_RANGE``)."""
        configured = self.options.get("PRIORITY_RANGE")
        if configured is not None:
            low, high = configured
            return int(low), int(high)
        url = str(self.app.conf.broker_url or "")
        return (9, 0) if url.split(":", 1)[0] in LOW_NUMBER_FIRST else (0, 9)

    def celery_priority(self, priority: int) -> int:
        """Django's priority in the broker's range (0, Django's default, in its middle).

        Always set: a message without one is the most urgent on Redis and the least on
        RabbitMQ, which would put Django's default priority out of its place.
        """
        low, high = self.priority_range
        share = (priority - TASK_MIN_PRIORITY) / (TASK_MAX_PRIORITY - TASK_MIN_PRIORITY)
        return round(low + share * (high - low))

    def enqueue(
        self, task: Task[_P, _R], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult[_P, _R]:
        """Write the task's PENDING row, then send it to the workers; return its result.

        The row is written first, in the caller's transaction, so ``get_result()`` finds
        it at once and ``enqueued_at`` is the time of sending. If the broker refuses the
        message, the row is deleted again and the error raised.
        """
        self.validate_task(task)
        backend = results.database_backend(self.app)
        # Django's TaskResult normalizes args and kwargs to JSON, or raises TypeError.
        result: TaskResult[_P, _R] = TaskResult(
            task=task,
            id=uuid(),
            status=TaskResultStatus.READY,
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=dict(kwargs),
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        options = self.send_options(task)
        headers = {DJANGO_TASK_HEADER: task.module_path, BACKEND_HEADER: self.alias}
        row = backend.pending_row(
            result.id,
            {"task": RUNNER_NAME, **headers},
            (result.args, result.kwargs, {}),
            routing_key=self.routing_key(options, result),
        )
        backend.store_pending_row(row)
        try:
            self.app.send_task(
                RUNNER_NAME,
                args=result.args,
                kwargs=result.kwargs,
                task_id=result.id,
                headers=headers,
                **options,
            )
        except BaseException:
            backend.forget(result.id)  # no message, no row: nothing claims it was sent
            raise
        object.__setattr__(result, "enqueued_at", row.date_done)
        task_enqueued.send(type(self), task_result=result)
        return result

    def send_options(self, task: Task[..., Any]) -> dict[str, Any]:
        """Celery's ``apply_async`` options for the task's queue, priority and ``run_after``."""
        options: dict[str, Any] = {}
        # Django's default queue is Celery's routing: task_routes, else task_default_queue.
        if task.queue_name != DEFAULT_TASK_QUEUE_NAME:
            options["queue"] = task.queue_name
        options["priority"] = self.celery_priority(task.priority)
        if task.run_after is not None:
            options["eta"] = task.run_after
        return options

    def routing_key(self, options: dict[str, Any], result: TaskResult[..., Any]) -> str | None:
        """The routing key Celery's router will send the task with (for the PENDING row)."""
        routed = self.app.amqp.router.route(dict(options), RUNNER_NAME, result.args, result.kwargs)
        queue = routed.get("queue")
        key = routed.get("routing_key") or getattr(queue, "routing_key", None)
        return str(key) if key else getattr(queue, "name", None)

    def get_result(self, result_id: str) -> TaskResult[..., Any]:
        """Read the task's row once; ``TaskResultDoesNotExist`` when there is none."""
        return results.read(self.app, result_id, self.alias)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        """Check the options, the Celery app and that it stores results with ``django-db``."""
        return [*super().check(**kwargs), *self._check_options()]

    def _check_options(self) -> Iterator[checks.CheckMessage]:
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            yield checks.Error(
                f"TASKS[{self.alias!r}]['OPTIONS'] has unknown keys: {', '.join(unknown)}.",
                hint=f"CeleryBackend takes {', '.join(OPTIONS)}.",
                id="django_celery_results.E005",
            )
        configured = self.options.get("PRIORITY_RANGE")
        if configured is not None and not _is_int_pair(configured):
            yield checks.Error(
                f"TASKS[{self.alias!r}]['OPTIONS']['PRIORITY_RANGE'] = {configured!r} is not "
                "two integers.",
                hint="Give the Celery priorities for Django's -100 and 100, e.g. (0, 9) on "
                "RabbitMQ or (9, 0) on Redis, where 0 runs first.",
                id="django_celery_results.E006",
            )
        try:
            results.database_backend(self.app)
        except Exception as exc:  # an import error, a wrong app, another result backend
            yield checks.Error(
                f"TASKS[{self.alias!r}] cannot use its Celery app: {exc}",
                hint="Set CELERY_RESULT_BACKEND = 'django-db' and load your Celery app "
                "before Django (or name it in OPTIONS['APP'], e.g. 'proj.celery.app').",
                id="django_celery_results.E007",
            )


def _is_int_pair(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
