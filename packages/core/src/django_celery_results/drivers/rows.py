"""The rows drivers write and read: ``TaskRow``, a write's columns, and a poll's columns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

#: The values of :attr:`TaskRow.DESCRIPTIVE`, in that order.
DescriptiveValues = tuple[
    str | None, str | None, str | None, str | None, str | None, int | None, str | None
]


@dataclass(slots=True)
class TaskRow:
    """One state change of one task, as it is written to the ``TaskResult`` table.

    Every column is already encoded as the backend stores it (text, base64 for binary).
    Read-only by convention, not frozen: a frozen dataclass sets each of its 19 fields
    through ``object.__setattr__``, which costs every write more than a microsecond.
    """

    task_id: str
    status: str
    content_type: str
    content_encoding: str
    result: str | None
    #: When this state happened; stored as ``date_done`` (upstream's "last update").
    date_done: datetime
    traceback: str | None = None
    meta: str | None = None
    periodic_task_name: str | None = None
    task_name: str | None = None
    task_args: str | None = None
    task_kwargs: str | None = None
    worker: str | None = None
    #: How many times the task was retried (``request.retries``), with ``result_extended``.
    retries: int | None = None
    #: The routing key the task was delivered with (sent with, for PENDING rows).
    queue: str | None = None
    #: Set on STARTED writes; a stored ``date_started`` is never replaced.
    date_started: datetime | None = None
    #: ``date_created`` of a new row when it is not ``date_done``: the time of an earlier
    #: state this row was merged with (batched writes).
    date_created: datetime | None = None
    #: A FAILURE's exception (``module.Name``, builtins by name alone); None otherwise.
    #: Always replaced, so a later SUCCESS clears it.
    exception_type: str | None = None
    #: A registered worker's STARTED: its life's id and ``acks_late`` (``workers.life``);
    #: None on every other write, so only a running task carries it.
    lifeline: str | None = None

    #: The timestamps, last in :attr:`COLUMNS` (drivers adapt them apart from the text).
    DATE_COLUMNS: ClassVar[tuple[str, ...]] = ("date_created", "date_started", "date_done")
    #: The integer columns; every other column but the dates is text.
    INTEGER_COLUMNS: ClassVar[tuple[str, ...]] = ("retries",)
    #: Every column of a new row, in the order drivers write them (``values()``): the
    #: fields in their order, the dates last. Set below, from the fields.
    COLUMNS: ClassVar[tuple[str, ...]]
    #: Columns a write replaces on an existing row (all but the id and the dates).
    REPLACED: ClassVar[tuple[str, ...]]

    #: The ``result_extended`` columns, in field order: from ``periodic_task_name`` to
    #: ``queue``, between ``meta`` and ``date_started`` (a write passes them by position).
    DESCRIPTIVE: ClassVar[tuple[str, ...]] = (
        "periodic_task_name",
        "task_name",
        "task_args",
        "task_kwargs",
        "worker",
        "retries",
        "queue",
    )

    #: Descriptive columns a write without them (``None``) leaves as stored, so a write
    #: made without the task's request (a manual ``store_result``) keeps its name and args.
    KEPT_WHEN_NONE: ClassVar[frozenset[str]] = frozenset(DESCRIPTIVE)

    def replaced_values(self) -> dict[str, Any]:
        """Return the columns this write replaces on an existing row, by name."""
        values = {name: getattr(self, name) for name in self.REPLACED}
        return {
            name: value
            for name, value in values.items()
            if value is not None or name not in self.KEPT_WHEN_NONE
        }

    def values(self) -> tuple[Any, ...]:
        """Return a new row's values in :attr:`COLUMNS` order (created when it was done)."""
        return (
            self.task_id,
            self.status,
            self.content_type,
            self.content_encoding,
            self.result,
            self.traceback,
            self.meta,
            self.periodic_task_name,
            self.task_name,
            self.task_args,
            self.task_kwargs,
            self.worker,
            self.retries,
            self.queue,
            self.exception_type,
            self.lifeline,
            self.date_created or self.date_done,
            self.date_started,
            self.date_done,
        )

    def columns(self) -> dict[str, Any]:
        """Return every column of a new row, by name."""
        return dict(zip(self.COLUMNS, self.values(), strict=True))


TaskRow.COLUMNS = (
    *(f.name for f in fields(TaskRow) if f.name not in TaskRow.DATE_COLUMNS),
    *TaskRow.DATE_COLUMNS,
)
TaskRow.REPLACED = tuple(
    name for name in TaskRow.COLUMNS if name != "task_id" and name not in TaskRow.DATE_COLUMNS
)


#: The columns a poll reads (:meth:`BaseOperations.get_task_meta_values`), in order.
TASK_META_COLUMNS = (
    "task_id",
    "status",
    "result",
    "date_done",
    "traceback",
    "meta",
    "content_encoding",
    # The result_extended columns but the periodic task's name, which Celery's meta lacks.
    *TaskRow.DESCRIPTIVE[1:],
)


def task_meta_values(obj: Any) -> tuple[Any, ...]:
    """Return a stored row's :data:`TASK_META_COLUMNS` values, from its model instance."""
    return tuple(getattr(obj, column) for column in TASK_META_COLUMNS)
