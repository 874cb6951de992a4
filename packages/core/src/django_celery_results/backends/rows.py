"""From a worker's request, or a message being sent, to the ``TaskRow`` the backend writes.

:class:`TaskRows` is the part of :class:`~.database.DatabaseBackend` that turns Celery's
request into the row's ``result_extended`` columns, and a message being sent into its
PENDING row (:func:`record_pending` queues it, on Celery's ``before_task_publish``); the
functions fit ids and names to their columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from celery import current_app, states
from celery.utils.log import get_logger
from django.utils import timezone

from .. import pending
from ..conf import app_settings
from ..drivers import TaskRow
from ..drivers.rows import DescriptiveValues
from ..models import TaskResult
from ..task_requests import plain, result_ignored, routing_key, text
from ..utils import DJANGO_TASK_HEADER
from .encoding import ContentEncoding

logger = get_logger(__name__)


class InvalidTaskId(ValueError):
    """A task or group id does not fit the id column."""


class InvalidStateName(ValueError):
    """A state name (``update_state(state=…)``) does not fit the status column."""


class TaskRows(ContentEncoding):
    """The row-building methods of :class:`~.database.DatabaseBackend` (a Celery backend).

    Needs the backend's ``app`` and its encoding (:class:`ContentEncoding`), and a
    ``_last_extended`` attribute (None to start).
    """

    app: Any
    #: The request and traceback of the last write, and its fitted extended columns.
    _last_extended: tuple[Any, str | None, DescriptiveValues] | None

    def _get_extended_properties(self, request: Any, traceback: str | None) -> dict[str, Any]:
        """Return the ``result_extended`` columns: name, args, kwargs, worker, periodic name."""
        # A django.tasks task is always stored in full: its TaskResult needs every column.
        django_task = text(getattr(request, DJANGO_TASK_HEADER, None)) if request else None
        if not (request and (self.app.conf.result_extended or django_task)):
            return dict.fromkeys(TaskRow.DESCRIPTIVE)  # all None: not extended
        if django_task:  # JSON values by Django's contract: stored as they are
            task_args, task_kwargs = request.args, request.kwargs
        else:
            # Protocol 2 sends reprs (argsrepr/kwargsrepr); protocol 1 only the values.
            task_args = text(getattr(request, "argsrepr", None))
            if task_args is None:
                task_args = plain(getattr(request, "args", None), list | tuple)
            task_kwargs = text(getattr(request, "kwargsrepr", None))
            if task_kwargs is None:
                task_kwargs = plain(getattr(request, "kwargs", None), dict)
        # A request may be anything that stands in for one (a custom Task.Request, a
        # test double): a value goes into a column only when it has the column's type.
        retries = getattr(request, "retries", None)
        return {
            "periodic_task_name": text(getattr(request, "periodic_task_name", None)),
            "task_args": self._encoded_or_none(task_args),
            "task_kwargs": self._encoded_or_none(task_kwargs),
            "task_name": django_task or text(getattr(request, "task", None)),
            "worker": text(getattr(request, "hostname", None)),
            "retries": retries if type(retries) is int else None,
            "queue": routing_key(request),
        }

    def _encoded_or_none(self, value: Any) -> str | None:
        """``value`` encoded as the result is, or None when it cannot be."""
        if value is None:
            return None
        try:
            return self._encode_value(value)
        except Exception:  # an args value the serializer refuses: the result still counts
            return None

    def _extended_columns(self, request: Any, traceback: str | None) -> DescriptiveValues:
        """Return the fitted ``result_extended`` columns of a write, once per request.

        In :attr:`TaskRow.DESCRIPTIVE` order. A worker stores a task's STARTED, its
        progress and its outcome with one request object: the writes after the first
        reuse its columns.
        """
        last = self._last_extended
        if last is not None and last[0] is request and last[1] is traceback:
            return last[2]
        props = fit_descriptive_columns(self._get_extended_properties(request, traceback))
        columns = cast(DescriptiveValues, tuple(props[name] for name in TaskRow.DESCRIPTIVE))
        if request is not None:
            # Held, not weakly referenced: the identity test needs the request alive.
            self._last_extended = (request, traceback, columns)
        return columns

    def pending_row(
        self, task_id: str, headers: Any, body: Any, routing_key: str | None = None
    ) -> TaskRow:
        """Return the PENDING row of a task being sent, encoded as the worker encodes it.

        ``task_name`` and ``queue`` (the routing key it is sent with) always; with
        ``result_extended`` also args, kwargs (from the message's
        ``argsrepr``/``kwargsrepr``, as the worker stores them) and
        ``periodic_task_name``; a ``django.tasks`` task (:data:`DJANGO_TASK_HEADER`) is
        stored under its own name, in full, with its real args. The worker is not known yet.
        """
        django_task = headers.get(DJANGO_TASK_HEADER)
        columns: dict[str, Any] = {
            "task_name": django_task or headers.get("task"),
            "queue": routing_key or None,
        }
        if self.app.conf.result_extended or django_task:
            # A django.tasks task's real values come from the body, never its reprs.
            args = None if django_task else headers.get("argsrepr")
            kwargs = None if django_task else headers.get("kwargsrepr")
            if (args is None or kwargs is None) and isinstance(body, tuple | list):
                # Protocol 2 without reprs: the body is (args, kwargs, embed).
                args = body[0] if args is None else args
                kwargs = body[1] if kwargs is None and len(body) > 1 else kwargs
            columns.update(
                task_args=None if args is None else self._encode_value(args),
                task_kwargs=None if kwargs is None else self._encode_value(kwargs),
                periodic_task_name=headers.get("periodic_task_name"),
            )
        key = (self.serializer, "none")
        encoded = self._encoded_constants.get(key)
        if encoded is None:
            encoded = self._encoded_constants[key] = self.encode_content(None)[2]
        return TaskRow(
            task_id=task_id,
            status=states.PENDING,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            result=encoded,
            date_done=timezone.now(),
            **fit_descriptive_columns(columns),
        )


def check_id_length(value: str, model: type[Any], field: str) -> None:
    """Refuse an empty id, one with a NUL, or one longer than its column, saying why."""
    if not value or not isinstance(value, str):
        raise InvalidTaskId(f"{field} must be a non-empty string, not {value!r}.")
    if "\x00" in value:
        raise InvalidTaskId(
            f"{field} {value[:40]!r} holds a NUL character, which no database stores in "
            "text: use ids of printable characters (Celery's default is a UUID)."
        )
    max_length = column_length(model, field)
    if len(value) > max_length:
        raise InvalidTaskId(
            f"{field} {value[:40]!r}… is {len(value)} characters, but the {field} column "
            f"holds {max_length}. Use shorter ids, or raise "
            "DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH and migrate the column."
        )


def check_state_length(state: str) -> None:
    """Refuse a state name longer than the status column, saying why."""
    max_length = column_length(TaskResult, "status")
    if len(state) > max_length:
        raise InvalidStateName(
            f"The state {state[:60]!r}… is {len(state)} characters, but the status column "
            f"holds {max_length}: give update_state() a shorter state name."
        )


#: Names already logged as cut to their column, so each is logged once per process.
_cut_names: set[tuple[str, str]] = set()
#: Most names remembered in :data:`_cut_names` (a flood of unique names logs again).
MAX_CUT_NAMES = 1000


def fit_descriptive_columns(props: dict[str, Any]) -> dict[str, Any]:
    """Cut worker and task names to their columns: a long hostname must not lose a result.

    Each name that is cut is logged once (a WARNING naming the column and its length).
    """
    for name in ("task_name", "worker", "periodic_task_name", "queue"):
        value = props.get(name)
        if isinstance(value, str):
            length = column_length(TaskResult, name)
            if len(value) > length:
                props[name] = value[:length]
                if (name, value) not in _cut_names:
                    if len(_cut_names) >= MAX_CUT_NAMES:
                        _cut_names.clear()
                    _cut_names.add((name, value))
                    logger.warning(
                        "The %s %r… is %d characters; it is stored cut to the column's %d.",
                        name,
                        value[:60],
                        len(value),
                        length,
                    )
    return props


#: Column lengths by (model, field): they are fixed once the model is defined.
_column_lengths: dict[tuple[type[Any], str], int] = {}


def column_length(model: type[Any], field: str) -> int:
    """Return the ``max_length`` of a text column."""
    length = _column_lengths.get((model, field))
    if length is None:
        length = _column_lengths[model, field] = int(model._meta.get_field(field).max_length)
    return length


def record_pending(
    sender: str | None = None,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Queue a PENDING row for the task being sent, when ``TRACK_PENDING`` is on.

    Celery's ``before_task_publish`` handler (wired by ``lifecycle``). Only apps whose
    result backend is ``django-db`` (a :class:`TaskRows`) build PENDING rows.
    """
    if not app_settings().TRACK_PENDING:
        return
    headers = headers or {}
    task_id = headers.get("id") or (body.get("id") if isinstance(body, dict) else None)
    app = current_app._get_current_object()
    backend = app.backend
    if not task_id or not isinstance(backend, TaskRows) or ignores_result(app, headers):
        return
    if headers.get(DJANGO_TASK_HEADER):
        return  # the django.tasks backend wrote its row before sending
    if "task" not in headers and isinstance(body, dict):  # protocol 1
        headers = {**headers, "task": body.get("task")}
    row = backend.pending_row(task_id, headers, body, routing_key=kwargs.get("routing_key"))
    pending.writer().add(row)


def ignores_result(app: Any, headers: Mapping[str, Any]) -> bool:
    """Return True when the task being sent stores no result (``ignore_result``)."""
    return result_ignored(app, headers.get("ignore_result"), headers.get("task"))
