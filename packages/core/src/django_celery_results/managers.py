"""Model managers: upstream's manager API, carried out by the database's driver."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from celery.states import FAILURE
from celery.utils.time import maybe_timedelta
from django.conf import settings
from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from .conf import app_settings, refuse_if_misconfigured
from .drivers import BaseDriver, TaskRow, get_driver
from .failures import stored_exception_type
from .utils import now

if TYPE_CHECKING:
    from .models import GroupResult, TaskResult

W_ISOLATION_REP = """
Polling results with transaction isolation level 'repeatable-read'
within the same transaction may give outdated results.

Be sure to commit the transaction for each poll iteration.
"""

#: Called with a database alias before task results are deleted there: the history's
#: catch-up (``lifecycle.install`` adds it; this layer cannot import the history).
BEFORE_DELETE: list[Callable[[str], object]] = []

M = TypeVar("M", bound=models.Model)


class TxIsolationWarning(UserWarning):
    """Warning emitted if the transaction isolation level is suboptimal."""


class ResultManager(models.Manager[M], Generic[M]):
    """Generic manager for celery results."""

    #: The id the last read found no row for (see :meth:`note_missing`).
    _last_missing: str | None = None

    def warn_if_repeatable_read(self) -> None:
        """Warn when the read database polls inside old snapshots (MySQL's default)."""
        if get_driver(self.connection_for_read()).ops.uses_repeatable_read():
            warnings.warn(TxIsolationWarning(W_ISOLATION_REP.strip()), stacklevel=2)

    def note_missing(self, key: str) -> None:
        """Record a read that found no row for ``key``; the second in a row may warn.

        Polling an id that stays missing is what a repeatable-read snapshot looks like.
        """
        if self._last_missing == key:
            self.warn_if_repeatable_read()
        self._last_missing = key

    def connection_for_write(self) -> BaseDatabaseWrapper:
        """Return the connection Django's routers pick for writes of this model."""
        return connections[router.db_for_write(self.model) or "default"]

    def connection_for_read(self) -> BaseDatabaseWrapper:
        """Return the connection of this manager's database."""
        return connections[self.db]

    def current_engine(self) -> str:
        """Return the ``ENGINE`` of this manager's database."""
        return str(settings.DATABASES[self.db]["ENGINE"])

    def driver(self, using: str | None = None) -> BaseDriver:
        """Return the driver of ``using``, or of the database writes are routed to."""
        return get_driver(connections[using] if using else self.connection_for_write())

    def get_all_expired(self, expires: float | timedelta) -> models.QuerySet[M]:
        """Get all expired results."""
        return self.filter(date_done__lt=now() - maybe_timedelta(expires))

    def delete_expired(self, expires: float | timedelta, batch_size: int | None = None) -> int:
        """Delete all expired results, ``batch_size`` rows per transaction; return how many.

        ``batch_size`` defaults to ``DJANGO_CELERY_RESULTS['CLEANUP_BATCH_SIZE']``.
        Upstream's API: one span for every row, ``RETENTION`` ignored. Like every cleanup
        path it deletes nothing while a deletion setting, or ``expires``, is invalid
        (:class:`~django_celery_results.cleanup.CleanupRefused`).
        """
        refuse_if_misconfigured(expires)
        driver = self.driver(self._db)
        cutoff = now() - maybe_timedelta(expires)
        size = batch_size or app_settings().CLEANUP_BATCH_SIZE
        if not any(field.name == "rolled_up" for field in self.model._meta.fields):
            return driver.retrying.delete_expired(self.model, cutoff, size)
        # Task results: the history counts them first, and only counted rows go.
        for hook in BEFORE_DELETE:
            hook(driver.alias)
        condition = models.Q(date_done__lt=cutoff, rolled_up=True)
        return driver.retrying.delete_matching(self.model, condition, size)


class TaskResultManager(ResultManager["TaskResult"]):
    """Manager for :class:`~.models.TaskResult` models."""

    def get_task(self, task_id: str) -> TaskResult:
        """Get result for task by ``task_id``; an unsaved PENDING row when there is none."""
        try:
            return self.get(task_id=task_id)
        except self.model.DoesNotExist:
            self.note_missing(task_id)
            return self.model(task_id=task_id)

    def store_result(
        self,
        content_type: str,
        content_encoding: str,
        task_id: str,
        result: str | None,
        status: str,
        traceback: str | None = None,
        meta: str | None = None,
        periodic_task_name: str | None = None,
        task_name: str | None = None,
        task_args: str | None = None,
        task_kwargs: str | None = None,
        worker: str | None = None,
        using: str | None = None,
        **kwargs: Any,
    ) -> TaskResult:
        """Store the result and status of a task, and return its row.

        Applies the state precedence rule: a SUCCESS row is never overwritten, and a
        terminal state never by a non-terminal one. ``date_started`` (any value; upstream
        passed ``Now()``) records the start time once. ``retries=`` and ``queue=`` are
        taken by keyword only (no positional parameter before ``using``, as upstream).
        """
        row = TaskRow(
            task_id=task_id,
            status=status,
            content_type=content_type,
            content_encoding=content_encoding,
            result=result,
            traceback=traceback,
            meta=meta,
            periodic_task_name=periodic_task_name,
            task_name=task_name,
            task_args=task_args,
            task_kwargs=task_kwargs,
            worker=worker,
            retries=kwargs.get("retries"),
            queue=kwargs.get("queue"),
            date_done=timezone.now(),
            date_started=_started_at(kwargs.get("date_started")),
            exception_type=(
                stored_exception_type(content_type, result) if status == FAILURE else None
            ),
        )
        driver = self.driver(using)
        driver.retrying.store_task_results([row])
        return self.db_manager(driver.alias).get(task_id=task_id)


class GroupResultManager(ResultManager["GroupResult"]):
    """Manager for :class:`~.models.GroupResult` models."""

    def get_group(self, group_id: str) -> GroupResult:
        """Get result for group by ``group_id``; an unsaved row when there is none."""
        try:
            return self.get(group_id=group_id)
        except self.model.DoesNotExist:
            self.note_missing(group_id)
            return self.model(group_id=group_id)

    def store_group_result(
        self,
        content_type: str,
        content_encoding: str,
        group_id: str,
        result: str | None,
        using: str | None = None,
    ) -> GroupResult:
        """Store the result of a group, and return its row."""
        driver = self.driver(using)
        driver.retrying.store_group_result(group_id, content_type, content_encoding, result)
        return self.db_manager(driver.alias).get(group_id=group_id)


def _started_at(value: object) -> datetime | None:
    """Return the start time for a ``date_started`` argument (a datetime, or ``Now()``)."""
    if value is None:
        return None
    return value if isinstance(value, datetime) else timezone.now()
