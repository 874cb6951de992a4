"""Our stored row, read as a ``django.tasks.TaskResult``: statuses, dates, errors, values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery import states
from django.core.exceptions import ImproperlyConfigured
from django.tasks import Task, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from ..backends.database import DatabaseBackend

if TYPE_CHECKING:
    from celery import Celery

    from ..models import TaskResult as TaskResultRow

#: Celery's states as Django's: waiting, running (a retry waits to run again), finished.
STATUSES = {
    states.PENDING: TaskResultStatus.READY,
    states.RECEIVED: TaskResultStatus.READY,
    states.STARTED: TaskResultStatus.RUNNING,
    states.RETRY: TaskResultStatus.RUNNING,
    states.SUCCESS: TaskResultStatus.SUCCESSFUL,
    states.FAILURE: TaskResultStatus.FAILED,
    states.REVOKED: TaskResultStatus.FAILED,
    states.REJECTED: TaskResultStatus.FAILED,
}
#: The states whose stored result is the exception that ended (or paused) an attempt.
ERROR_STATES = frozenset({states.FAILURE, states.RETRY, states.REVOKED, states.REJECTED})
#: The key of the row's meta where the runner notes when the latest attempt started.
ATTEMPT_META = "django_task_attempt_started"


def database_backend(app: Celery) -> DatabaseBackend:
    """Return ``app``'s result backend, which must be ours (``django-db``)."""
    backend = app.backend
    if not isinstance(backend, DatabaseBackend):
        raise ImproperlyConfigured(
            f"django_celery_results.tasks.CeleryBackend reads results from the django-db "
            f"result backend, but the Celery app {app.main or app!r} uses "
            f"{type(backend).__module__}.{type(backend).__name__}. Set "
            "CELERY_RESULT_BACKEND = 'django-db', and load your Celery app before Django "
            "uses tasks (import it in your project's __init__.py, as Celery's Django guide "
            "does) or name it in the backend's OPTIONS['APP']."
        )
    return backend


def django_task(path: str | None) -> Task[..., Any]:
    """Import the ``django.tasks.Task`` at ``path`` (what ``@task`` made of a function)."""
    try:
        found = import_string(path or "")
    except ImportError as exc:
        raise LookupError(f"No django.tasks task can be imported from {path!r}: {exc}") from exc
    if not isinstance(found, Task):
        raise LookupError(
            f"{path!r} is a {type(found).__name__}, not a django.tasks task: decorate the "
            "function with django.tasks.task"
        )
    return found


def read(app: Celery, task_id: str, alias: str | None = None) -> TaskResult[..., Any]:
    """Read ``task_id``'s row once: its result, of backend ``alias`` (default: its task's)."""
    backend = database_backend(app)
    row = backend.stored_row(task_id)
    if row is None:
        raise TaskResultDoesNotExist(task_id)
    try:
        task = django_task(row.task_name)
    except LookupError as exc:
        raise TaskResultDoesNotExist(
            f"{task_id} is a result of Celery task {row.task_name!r}, not of a django.tasks task"
        ) from exc
    return from_row(row, task, alias or task.backend, backend)


def on_backend(task: Task[..., Any], alias: str) -> Task[..., Any]:
    """``task`` bound to backend ``alias`` (what ``.using(backend=…)`` sent it with)."""
    return task if task.backend == alias else task.using(backend=alias)


def from_row(
    row: TaskResultRow, task: Task[..., Any], alias: str, backend: DatabaseBackend
) -> TaskResult[..., Any]:
    """Fill every field of a ``TaskResult`` from one stored row (nothing else is read)."""
    status = STATUSES.get(row.status, TaskResultStatus.RUNNING)  # custom states: running
    finished = status in (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
    value = backend.decode_content(row, row.result)
    errors = []
    if row.status in ERROR_STATES:
        errors.append(
            TaskError(
                exception_class_path=exception_path(value, row.status),
                traceback=row.traceback or "",
            )
        )
    result: TaskResult[..., Any] = TaskResult(
        task=on_backend(task, alias),  # refresh() asks the backend that was asked
        id=row.task_id,
        status=status,
        enqueued_at=row.date_created,
        started_at=row.date_started,
        finished_at=row.date_done if finished else None,
        last_attempted_at=last_attempt(row, backend),
        args=json_value(backend.decode_content(row, row.task_args), list),
        kwargs=json_value(backend.decode_content(row, row.task_kwargs), dict),
        backend=alias,
        errors=errors,
        # The table keeps one worker, the latest attempt's: one entry per attempt names
        # it, so ``attempts`` counts the retries.
        worker_ids=[row.worker] * ((row.retries or 0) + 1) if row.worker else [],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", value)
    return result


def last_attempt(row: TaskResultRow, backend: DatabaseBackend) -> datetime | None:
    """When the latest attempt started: a STARTED row's date, else what the runner noted."""
    if row.status == states.STARTED:
        return row.date_done
    meta = backend.decode_content(row, row.meta)
    noted = meta.get(ATTEMPT_META) if isinstance(meta, dict) else None
    started = parse_datetime(noted) if isinstance(noted, str) else None
    return started or row.date_started


def exception_path(value: Any, state: str) -> str:
    """The import path of a stored exception: Celery's JSON form or a (pickled) instance."""
    if value is None and state == states.RETRY:
        return "celery.exceptions.Retry"  # ``retry()`` without an exception stores none
    if isinstance(value, dict) and "exc_type" in value:
        module = value.get("exc_module") or "builtins"
        return f"{module}.{value['exc_type']}"
    if isinstance(value, BaseException):
        return f"{type(value).__module__}.{type(value).__qualname__}"
    return "builtins.Exception"


def json_value(value: Any, kind: type) -> Any:
    """Args or kwargs as stored: JSON values; text (an older row's repr) parsed if it is JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return kind()
    if kind is list and isinstance(value, tuple):
        value = list(value)
    return value if isinstance(value, kind) else kind()
