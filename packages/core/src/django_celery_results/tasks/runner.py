"""The one Celery task that runs any ``django.tasks`` task, and Django's task signals.

The backend sends every task as this Celery task, its import path in the message's
:data:`~django_celery_results.utils.DJANGO_TASK_HEADER` (which Celery keeps on a retry),
so nobody decorates a function twice. ``task_started`` is sent as the function starts,
``task_finished`` once the worker has stored the outcome (from Celery's ``task_success``,
``task_failure`` and ``task_revoked``), so a receiver that reads the result sees it.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.json import normalize_json

from ..utils import DJANGO_TASK_HEADER
from . import results

logger = logging.getLogger(__name__)

#: The Celery task name every ``django.tasks`` task is sent as (route it like any other).
RUNNER_NAME = "django_celery_results.run_django_task"
#: The message header naming the ``TASKS`` alias the task was enqueued through.
BACKEND_HEADER = "django_task_backend"


@shared_task(bind=True, name=RUNNER_NAME, track_started=True, ignore_result=False)
def run_django_task(self: Any, *args: Any, **kwargs: Any) -> Any:
    """Run the ``django.tasks`` task the message names, with its args; return its value."""
    request = self.request
    try:
        task = results.django_task(getattr(request, DJANGO_TASK_HEADER, None))
    except LookupError as exc:
        raise RuntimeError(
            f"{exc}. The worker runs django.tasks tasks by import path: deploy the same "
            "code to the workers as to the senders"
        ) from exc
    task = results.on_backend(task, getattr(request, BACKEND_HEADER, None) or task.backend)
    backend = task_backends[task.backend]
    result = running_result(self.app, request, task, timezone.now())
    # Noted in the row's meta with the outcome: when the latest attempt started.
    meta = getattr(request, "meta", None) or {}
    attempt = result.last_attempted_at
    request.meta = {**meta, results.ATTEMPT_META: attempt and attempt.isoformat()}
    task_started.send(sender=type(backend), task_result=result)
    if task.takes_context:
        value = task.call(TaskContext(task_result=result), *args, **kwargs)
    else:
        value = task.call(*args, **kwargs)
    return normalize_json(value)


def running_result(app: Any, request: Any, task: Any, started: datetime) -> TaskResult[..., Any]:
    """The result of the attempt starting now, read from the row the worker just wrote."""
    alias = task.backend
    workers = [request.hostname] * ((request.retries or 0) + 1)
    try:
        stored = results.read(app, request.id, alias)
    except TaskResultDoesNotExist:  # sent by hand, without its PENDING row
        return TaskResult(
            task=task,
            id=request.id,
            status=TaskResultStatus.RUNNING,
            enqueued_at=None,
            started_at=started,
            finished_at=None,
            last_attempted_at=started,
            args=list(request.args or ()),
            kwargs=dict(request.kwargs or {}),
            backend=alias,
            errors=[],
            worker_ids=workers,
        )
    # The STARTED row Celery wrote for this attempt (track_started) dates its start.
    attempt_started = stored.last_attempted_at if stored.status == "RUNNING" else None
    return dataclasses.replace(
        stored,
        status=TaskResultStatus.RUNNING,
        started_at=stored.started_at or started,
        last_attempted_at=attempt_started or started,
        worker_ids=workers,
    )


def send_finished(sender: Any, request: Any) -> None:
    """Send ``task_finished`` for a runner's task whose outcome is stored."""
    task_id = getattr(request, "id", None)
    if getattr(sender, "name", None) != RUNNER_NAME or not task_id:
        return
    try:
        result = results.read(sender.app, task_id, getattr(request, BACKEND_HEADER, None))
    except TaskResultDoesNotExist:
        logger.warning("No stored result of django.tasks task %s to send task_finished", task_id)
        return
    task_finished.send(sender=type(task_backends[result.backend]), task_result=result)


def on_outcome(sender: Any = None, **kwargs: Any) -> None:
    """Celery's ``task_success`` and ``task_failure`` handler (wired by ``lifecycle``).

    ``task_failure`` is sent inside Celery's exception handler, the request still pushed:
    receivers see the exception (``exc_info``).
    """
    send_finished(sender, getattr(sender, "request", None))


def on_revoked(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
    """Celery's ``task_revoked`` handler (wired by ``lifecycle``)."""
    send_finished(sender, request)
