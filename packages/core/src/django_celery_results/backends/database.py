"""Celery database backend (``django-db``): results in Django's database, through its driver."""

from __future__ import annotations

import binascii
import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any, cast

from celery import maybe_signature, states
from celery._state import task_join_will_block
from celery.app.task import Context
from celery.backends.asynchronous import AsyncBackendMixin
from celery.backends.base import BaseDictBackend, get_current_task
from celery.exceptions import BackendStoreError, ChordError
from celery.result import AsyncResult, GroupResult, allow_join_result, result_from_tuple
from celery.utils.log import get_logger
from django.db import DatabaseError, InterfaceError
from django.utils import timezone
from django.utils.functional import cached_property
from kombu.exceptions import DecodeError

from .. import losses, pending, store
from ..cleanup import configured_steps, delete_dead_chord_counters
from ..cleanup import run as run_cleanup
from ..conf import STATE_MAX_LENGTH
from ..drivers import (
    BaseDriver,
    ListenerLost,
    NotificationsUnavailable,
    TaskRow,
    driver_for_model,
)
from ..drivers.manager import driver_for_alias
from ..drivers.rows import DescriptiveValues, task_meta_values
from ..models import ChordCounter, TaskResult
from ..models import GroupResult as GroupResultModel
from ..utils import DJANGO_TASK_HEADER
from .encoding import ContentEncoding
from .notify import NotifyResultConsumer

logger = get_logger(__name__)

#: Upstream's list of retryable errors, kept for code that imports it. What is retried
#: is now each driver's decision (``driver.ops.is_transient_error``).
EXCEPTIONS_TO_CATCH: tuple[type[BaseException], ...] = (InterfaceError,)


class InvalidTaskId(ValueError):
    """A task or group id does not fit the id column."""


class InvalidStateName(ValueError):
    """A state name (``update_state(state=…)``) does not fit the status column."""


class DatabaseBackend(ContentEncoding, BaseDictBackend):
    """The Django database backend, using models to store task state."""

    TaskModel = TaskResult
    GroupModel = GroupResultModel
    subpolling_interval = 0.5
    #: Group joins read every pending result in one query per poll (see :meth:`get_many`).
    supports_native_join = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoded_constants: dict[tuple[str, str], str] = {}
        #: The request and traceback of the last write, and its fitted extended columns.
        self._last_extended: tuple[Any, str | None, DescriptiveValues] | None = None
        #: Set when notifications proved unable to reach this process: poll from then on.
        self._notify_broken = False
        #: Whether polls must warn that eager mode stores nothing (None: not read yet).
        self._warn_eager: bool | None = None

    # -- drivers -------------------------------------------------------------------------

    def _driver(
        self, model: type[Any], using: str | None = None, write: bool = True
    ) -> BaseDriver:
        if using:
            return driver_for_alias(using)
        return driver_for_model(model, write=write)

    def exception_safe_to_retry(self, exc: BaseException) -> bool:
        """Return True for errors the result database's driver calls transient.

        Used by Celery's own retry (``result_backend_always_retry``), on top of ours. The
        connection of that database (not always ``default``) is closed before the retry.
        """
        driver = self._driver(self.TaskModel)
        if not driver.ops.is_transient_error(exc):
            return False
        with contextlib.suppress(DatabaseError):
            driver.connection.close()
        return True

    # -- waiting by notification (NOTIFY) -------------------------------------------------

    @cached_property
    def result_consumer(self) -> NotifyResultConsumer:
        """Celery's async result consumer, fed by the driver's notifications."""
        return NotifyResultConsumer(
            self, self.app, self.accept, self._pending_results, self._pending_messages
        )

    def notifying_driver(self) -> BaseDriver:
        """The driver of the database workers write (and so notify) results on."""
        return self._driver(self.TaskModel)

    def _notifying(self) -> bool:
        """Do waits here go through notifications rather than polls?

        With ``NOTIFY`` on a driver that can, outside tasks (a chord join inside a worker
        keeps polling), once the process's listener has proved that notices reach it.
        Where they cannot (a transaction-mode pooler), clients poll; the hub logs why,
        once. Never raises: sending a task must not fail because of notifications.
        """
        if self._notify_broken or task_join_will_block():
            return False
        try:
            if not self.notifying_driver().notify:
                return False
            self.result_consumer.listen()
        except NotificationsUnavailable:
            self._notify_broken = True
            return False
        except (ListenerLost, DatabaseError) as exc:
            logger.debug("result notifications: cannot listen now (%s); polling", exc)
            return False
        except Exception:
            logger.exception("result notifications failed; polling")
            self._notify_broken = True
            return False
        return True

    @property
    def is_async(self) -> bool:
        """True while waits go through notifications (see :meth:`_notifying`)."""
        return self._notifying()

    def on_task_call(self, producer: Any, task_id: str) -> dict[str, Any]:
        """Refuse an id no row can hold, then subscribe to the task before it is sent.

        Celery asks this while the caller is still sending (``apply_async``), so a bad id
        is an :class:`InvalidTaskId` there, not a lost result later. With notifications
        on, subscribing first means its result cannot arrive unheard.
        """
        check_id_length(task_id, self.TaskModel, "task_id")
        if self._notifying():
            self.result_consumer.consume_from(task_id)
        return {}

    def add_pending_result(
        self, result: Any, weak: bool = False, start_drainer: bool = True
    ) -> Any:
        """Register a result being waited on (with notifications: subscribe to it)."""
        if self._notifying():
            return AsyncBackendMixin.add_pending_result(
                self, result, weak=weak, start_drainer=start_drainer
            )
        return super().add_pending_result(result, weak=weak)

    def add_pending_results(self, results: Any, weak: bool = False) -> Any:
        """Register results being waited on (with notifications: subscribe to them)."""
        if self._notifying():
            return AsyncBackendMixin.add_pending_results(self, results, weak=weak)
        return super().add_pending_results(results, weak=weak)

    def remove_pending_result(self, result: Any) -> Any:
        """Stop waiting on a result.

        ``AsyncResult.__del__`` calls it, whenever the garbage collector runs, even in the
        middle of a lookup holding a lock: so it looks nothing up and connects nowhere.
        """
        consumer = self.__dict__.get("result_consumer")  # only if it was ever made
        if consumer is not None and consumer.listening and not self._notify_broken:
            return AsyncBackendMixin.remove_pending_result(self, result)
        return super().remove_pending_result(result)

    def on_result_fulfilled(self, result: Any) -> None:
        """Unsubscribe from a result that arrived."""
        self.result_consumer.cancel_for(result.id)

    def _collect_into(self, result: Any, bucket: Any) -> None:
        AsyncBackendMixin._collect_into(self, result, bucket)

    def _maybe_resolve_from_buffer(self, result: Any) -> None:
        AsyncBackendMixin._maybe_resolve_from_buffer(self, result)

    def _add_pending_result(self, task_id: str, result: Any, weak: bool = False) -> None:
        AsyncBackendMixin._add_pending_result(self, task_id, result, weak=weak)

    def _remove_pending_result(self, result: Any) -> Any:
        return AsyncBackendMixin._remove_pending_result(self, result)

    def _wait_for_pending(self, result: Any, **kwargs: Any) -> Any:
        return AsyncBackendMixin._wait_for_pending(self, result, **kwargs)

    def wait_for_pending(
        self, result: Any, callback: Any = None, propagate: bool = True, **kwargs: Any
    ) -> Any:
        """Wait for a result: woken by notifications, or polling every ``interval``."""
        if self._notifying():
            kwargs.pop("interval", None)  # notices, not polls: no interval to keep
            return AsyncBackendMixin.wait_for_pending(
                self, result, callback=callback, propagate=propagate, **kwargs
            )
        return super().wait_for_pending(result, callback=callback, propagate=propagate, **kwargs)

    def iter_native(self, result: Any, *args: Any, **kwargs: Any) -> Any:
        """Yield a group's results as they arrive (``GroupResult.join_native``)."""
        if self._notifying():
            kwargs.pop("interval", None)
            return AsyncBackendMixin.iter_native(self, result, *args, **kwargs)
        return super().iter_native(result, *args, **kwargs)

    # -- tasks ---------------------------------------------------------------------------

    def _get_extended_properties(self, request: Any, traceback: str | None) -> dict[str, Any]:
        """Return the ``result_extended`` columns: name, args, kwargs, worker, periodic name."""
        # A django.tasks task is always stored in full: its TaskResult needs every column.
        django_task = _text(getattr(request, DJANGO_TASK_HEADER, None)) if request else None
        if not (request and (self.app.conf.result_extended or django_task)):
            return dict.fromkeys(TaskRow.DESCRIPTIVE)  # all None: not extended
        if django_task:  # JSON values by Django's contract: stored as they are
            task_args, task_kwargs = request.args, request.kwargs
        else:
            # Protocol 2 sends reprs (argsrepr/kwargsrepr); protocol 1 only the values.
            task_args = _text(getattr(request, "argsrepr", None))
            if task_args is None:
                task_args = _plain(getattr(request, "args", None), list | tuple)
            task_kwargs = _text(getattr(request, "kwargsrepr", None))
            if task_kwargs is None:
                task_kwargs = _plain(getattr(request, "kwargs", None), dict)
        # A request may be anything that stands in for one (a custom Task.Request, a
        # test double): a value goes into a column only when it has the column's type.
        retries = getattr(request, "retries", None)
        return {
            "periodic_task_name": _text(getattr(request, "periodic_task_name", None)),
            "task_args": self._encoded_or_none(task_args),
            "task_kwargs": self._encoded_or_none(task_kwargs),
            "task_name": django_task or _text(getattr(request, "task", None)),
            "worker": _text(getattr(request, "hostname", None)),
            "retries": retries if type(retries) is int else None,
            "queue": _routing_key(request),
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

    def _get_meta_from_request(self, request: Any = None) -> dict[str, Any]:
        """Return ``request.meta``: arbitrary data a task injects into its stored meta."""
        request = request or getattr(get_current_task(), "request", None)
        meta = getattr(request, "meta", None)
        return meta if isinstance(meta, dict) else {}

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str | None = None,
        traceback: str | None = None,
        request: Any = None,
        using: str | None = None,
        *,
        status: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Store return value and state of a task.

        Celery passes the state by position (5.7.0 and older) or as ``state=`` (later);
        upstream called it ``status=``. All three work.
        """
        state = state if state is not None else status
        if state is None:
            raise TypeError("_store_result() needs the task's state (state=…)")
        check_id_length(task_id, self.TaskModel, "task_id")
        if len(state) > STATE_MAX_LENGTH:
            raise InvalidStateName(
                f"The state {state[:60]!r}… is {len(state)} characters, but the status column "
                f"holds {STATE_MAX_LENGTH}: give update_state() a shorter state name."
            )
        content_type, content_encoding, encoded = self.encode_content(result)
        meta = {
            **self._get_meta_from_request(request),
            "children": self.current_task_children(request),
        }
        happened = timezone.now()
        # By position, in field order: keywords cost every write a microsecond.
        row = TaskRow(
            task_id,
            state,
            content_type,
            content_encoding,
            encoded,
            happened,
            traceback,
            self._encode_meta(meta),
            *self._extended_columns(request, traceback),
            happened if state == states.STARTED else None,  # date_started
        )
        store.store_task_row(self._driver(self.TaskModel, using), row)
        return encoded

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Celery's ``store_result``; a write the database refused for good is logged.

        Logged here, around Celery's own retry (``result_backend_always_retry``), so an
        attempt that a later one makes good is never reported lost.
        """
        try:
            return super().store_result(task_id, result, state, traceback, request, **kwargs)
        except (DatabaseError, BackendStoreError) as exc:
            alias = self._driver(self.TaskModel, kwargs.get("using")).alias
            losses.note_lost(task_id, state, alias, _database_error(exc))
            raise

    def save_group(self, group_id: str, result: Any) -> Any:
        """Celery's ``save_group``; a group the database refused for good is logged."""
        try:
            return super().save_group(group_id, result)
        except (DatabaseError, BackendStoreError) as exc:
            alias = self._driver(self.GroupModel).alias
            losses.note_lost(group_id, "group result", alias, _database_error(exc))
            raise

    def _meta_from_row(self, obj: TaskResult) -> dict[str, Any]:
        """Turn a stored row into Celery's result meta (upstream's keys and decoding)."""
        return self._meta_from_values(task_meta_values(obj))

    def _meta_from_values(self, values: tuple[Any, ...]) -> dict[str, Any]:
        """Turn a row's :data:`TASK_META_COLUMNS` values into Celery's result meta."""
        (
            task_id,
            status,
            result,
            date_done,
            traceback,
            meta,
            encoding,
            task_name,
            task_args,
            task_kwargs,
            worker,
            retries,
            queue,
        ) = values
        decode = self.decode_column
        res: dict[str, Any] = {
            "task_id": task_id,
            "task_name": task_name,
            "task_args": task_args,
            "task_kwargs": task_kwargs,
            "status": status,
            "result": result,
            "date_done": date_done,
            "traceback": traceback,
            "worker": worker,
        }
        meta = decode(encoding, meta) or {}
        result = decode(encoding, result)
        try:
            task_args = decode(encoding, task_args)
            task_kwargs = decode(encoding, task_kwargs)
        except (DecodeError, binascii.Error):
            pass  # rows written before 2.0 hold str(args), not an encoding
        # the right names are args/kwargs, not task_args/task_kwargs: keep both
        res.update(
            meta,
            result=result,
            task_args=task_args,
            task_kwargs=task_kwargs,
            args=task_args,
            kwargs=task_kwargs,
            retries=retries,
            queue=queue,
        )
        return self.meta_from_decoded(res)  # type: ignore[no-any-return]

    def stored_row(self, task_id: str) -> TaskResult | None:
        """Return the stored row of ``task_id``, or None; states queued here are written first."""
        driver = self._driver(self.TaskModel, write=False)
        return store.read_task_results(driver, (task_id,)).get(task_id)

    def store_pending_row(self, row: TaskRow) -> None:
        """Write a PENDING row now, in the caller's thread and transaction (not queued)."""
        self._driver(self.TaskModel).retrying.store_pending_results([row])

    def _ensure_not_eager(self) -> None:
        """Celery's warning that eager tasks store no result, its two settings read once.

        Every poll asks; reading them through Celery's configuration view each time was
        a tenth of a poll's Python. Read again while they call for the warning, so turning
        eager mode off is seen at once; turned on after the first poll, it goes unwarned.
        """
        if self._warn_eager is not False:
            conf = self.app.conf
            self._warn_eager = bool(conf.task_always_eager and not conf.task_store_eager_result)
            if self._warn_eager:
                super()._ensure_not_eager()

    def _get_task_meta_for(self, task_id: str) -> dict[str, Any]:
        """Get task metadata for a task by id (PENDING when there is no row).

        Every poll comes here: the row's values go straight into the meta (no model
        instance), read with a statement built once.
        """
        driver = self._driver(self.TaskModel, write=False)
        values = store.read_task_meta_values(driver, task_id)
        if values is None:
            self.TaskModel._default_manager.note_missing(task_id)
            return self._meta_from_row(self.TaskModel(task_id=task_id))
        return self._meta_from_values(values)

    def task_result_exists(self, task_id: str) -> bool:
        """Return True when a result of ``task_id`` is stored, PENDING included.

        What ``AsyncResult.exists()`` asks (Celery 5.7). With ``TRACK_PENDING`` a task
        that was sent has a row before any worker runs it, so it exists; an id never sent,
        forgotten or cleaned up has none. One indexed query; nothing is decoded. Rows this
        process queued (batched states, PENDING rows being sent) are written first.
        """
        return store.task_result_exists(self._driver(self.TaskModel, write=False), task_id)

    def get_many(
        self,
        task_ids: Iterable[str],
        timeout: float | None = None,
        interval: float = 0.5,
        no_ack: bool = True,
        on_message: Any = None,
        on_interval: Any = None,
        max_iterations: int | None = None,
        READY_STATES: frozenset[str] = states.READY_STATES,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(task_id, meta)`` as tasks finish, reading all pending ids per poll.

        This is what ``GroupResult.join_native()`` and chord callbacks use: one query per
        poll for the whole group, instead of one per task.
        """
        interval = 0.5 if interval is None else interval
        pending = set(task_ids)
        for task_id in list(pending):
            cached = self._cache.get(task_id)
            if cached is not None and cached["status"] in READY_STATES:
                pending.discard(task_id)
                yield task_id, cached
        driver = self._driver(self.TaskModel, write=False)
        iterations = 0
        elapsed = 0.0
        while pending:
            rows = store.read_task_results(driver, sorted(pending))
            for task_id, obj in rows.items():
                if obj.status not in READY_STATES:
                    continue
                meta = self._meta_from_row(obj)
                self._cache[task_id] = meta
                pending.discard(task_id)
                if on_message is not None:
                    on_message(meta)
                yield task_id, meta
            iterations += 1
            if not pending or (max_iterations and iterations >= max_iterations):
                break  # no sleep after the last read: nobody waits for it
            if timeout is not None and elapsed >= timeout:
                raise TimeoutError(f"Operation timed out ({timeout})")
            if on_interval:
                on_interval()
            nap = interval if timeout is None else min(interval, timeout - elapsed)
            time.sleep(nap)
            elapsed += nap

    def _forget(self, task_id: str) -> None:
        store.delete_task_result(self._driver(self.TaskModel), task_id)

    def cleanup(self) -> None:
        """Delete expired results: by ``RETENTION``'s rules, ``result_expires`` for the rest.

        What beat's daily ``celery.backend_cleanup`` runs. ``result_expires`` of ``None``
        or 0 keeps every row no rule expires. Counters of dead chords go first, while
        their header results still show that the chord is over. While a setting that
        decides what is deleted is invalid, nothing is: an ERROR line per problem is
        logged and :class:`~django_celery_results.cleanup.CleanupRefused` raised.
        """
        delete_dead_chord_counters(self.expires)
        run_cleanup(configured_steps(self.expires))

    # -- groups --------------------------------------------------------------------------

    def _restore_group(self, group_id: str) -> dict[str, Any]:
        """Return the stored group meta; its ``result`` is ``None`` when there is none."""
        driver = self._driver(self.GroupModel, write=False)
        obj = driver.retrying.get_group_result(group_id)
        if obj is None:
            obj = self.GroupModel(group_id=group_id)
        res = obj.as_dict()
        decoded_result = self.decode_content(obj, res["result"])
        res["result"] = result_from_tuple(decoded_result, app=self.app) if decoded_result else None
        return res

    def _save_group(self, group_id: str, result: Any = None, group_result: Any = None) -> Any:
        """Store a group, given by position, as ``result=`` or (upstream) ``group_result=``."""
        group_result = result if result is not None else group_result
        check_id_length(group_id, self.GroupModel, "group_id")
        content_type, content_encoding, encoded = self.encode_content(group_result.as_tuple())
        driver = self._driver(self.GroupModel)
        driver.retrying.store_group_result(group_id, content_type, content_encoding, encoded)
        return group_result

    def _delete_group(self, group_id: str) -> None:
        driver = self._driver(self.GroupModel)
        driver.retrying.delete_group_result(group_id)

    # -- chords --------------------------------------------------------------------------

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Add a ChordCounter with the expected number of results."""
        if isinstance(header_result_args, GroupResult):
            header_result = header_result_args  # Celery < 5.1
        else:
            header_result = self.app.GroupResult(*header_result_args)
        results = [r.as_tuple() for r in header_result]
        chord_size = body.get("chord_size", None) or len(results)
        driver = self._driver(ChordCounter)
        driver.retrying.create_chord_counter(
            header_result.id,
            json.dumps(results),
            chord_size,
        )

    def on_chord_part_return(self, request: Any, state: str, result: Any, **kwargs: Any) -> None:
        """Count a finished header task; the part that completes the chord fires the callback.

        The counter never goes below zero, and the callback fires only when every header
        result is ready and this call deleted the counter, so it fires exactly once even
        when a header task runs twice.
        """
        tid, gid = request.id, request.group
        if not gid or not tid:
            return
        driver = self._driver(ChordCounter)
        remaining = driver.retrying.chord_part_return(gid)
        if remaining is None:
            logger.warning("Can't find ChordCounter for Group %s", gid)
            return
        if remaining > 0:
            return
        sub_tasks = driver.retrying.get_chord_sub_tasks(gid)
        if sub_tasks is None:
            return  # another part fired the callback
        deps = GroupResult(
            gid, [result_from_tuple(r, app=self.app) for r in json.loads(sub_tasks)], app=self.app
        )
        if not self._all_ready(deps):
            if pending.result_ignored(
                self.app, _ignore_flag(request), _text(getattr(request, "task", None))
            ):
                self._drop_unfinishable_chord(driver, gid, request)
                return
            # A header task ran twice and counted twice: the last real part fires.
            logger.info(
                "Chord %s counted down, but not all header tasks are ready yet (a header "
                "task ran twice, or some header tasks ignore their results).",
                gid,
            )
            return
        if driver.retrying.claim_chord(gid):
            callback = maybe_signature(request.chord, app=self.app)
            trigger_callback(app=self.app, callback=callback, group_result=deps)

    def _drop_unfinishable_chord(self, driver: BaseDriver, gid: str, request: Any) -> None:
        """Remove the counter of a chord whose last part stored no result (upstream's way).

        Its result was not stored (``ignore_result``), so the header rows cannot show
        that every part finished, and no other part is left to count: the counter would
        stay forever. The callback can only fire when every header result is ready.
        """
        if driver.retrying.claim_chord(gid):
            logger.warning(
                "Chord %s: its callback can't fire. The last header task (%s) counted "
                "down the chord, but not every header result is stored and ready: header "
                "tasks that ignore their results (ignore_result=True) leave nothing to "
                "join. The chord's counter is removed; store the header tasks' results "
                "for the callback to run.",
                gid,
                request.id,
            )

    def _all_ready(self, deps: GroupResult) -> bool:
        """Return True when every header result is in a ready state (one query)."""
        # A nested group in the header has its own ready(); plain results are read here.
        # (Not ``r.children``: that property fetches each result's row, one query each.)
        if not all(isinstance(r, AsyncResult) for r in deps.results):
            return bool(deps.ready())
        ids = [r.id for r in deps.results]
        rows = store.read_task_results(self._driver(self.TaskModel, write=False), ids)
        return all(
            task_id in rows and rows[task_id].status in states.READY_STATES for task_id in ids
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


def _routing_key(request: Any) -> str | None:
    """Return the routing key a worker's request was delivered with (Celery's ``queue``)."""
    delivery_info = getattr(request, "delivery_info", None)
    if not isinstance(delivery_info, dict):
        return None
    key = delivery_info.get("routing_key")
    return key if isinstance(key, str) and key else None


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


def _database_error(exc: BaseException) -> BaseException:
    """The database's error behind ``exc`` (Celery's ``BackendStoreError`` wraps it)."""
    cause = exc.__cause__ or exc.__context__
    return cause if isinstance(exc, BackendStoreError) and cause is not None else exc


def _ignore_flag(request: Any) -> bool | None:
    """The request's own ``ignore_result``, as Celery's ``mark_as_done`` read it.

    A worker's ``Context`` keeps a class-level default (False) that is not the message's
    flag: only a value set on the request counts there. Anything standing in for a
    request (a custom class, a test double) is asked as Celery asks it.
    """
    if isinstance(request, Context):
        flag = vars(request).get("ignore_result")
    else:
        flag = getattr(request, "ignore_result", None)
    return None if flag is None else bool(flag)


def _text(value: Any) -> str | None:
    """``value`` when it is text, else None (a request's attribute of another type)."""
    return value if isinstance(value, str) else None


def _plain(value: Any, kinds: Any) -> Any:
    """``value`` when it is one of ``kinds`` (lists, tuples, dicts), else None."""
    return value if isinstance(value, kinds) else None


#: Column lengths by (model, field): they are fixed once the model is defined.
_column_lengths: dict[tuple[type[Any], str], int] = {}


def column_length(model: type[Any], field: str) -> int:
    """Return the ``max_length`` of a text column."""
    length = _column_lengths.get((model, field))
    if length is None:
        length = _column_lengths[model, field] = int(model._meta.get_field(field).max_length)
    return length


def trigger_callback(app: Any, callback: Any, group_result: GroupResult) -> None:
    """Add the callback to the queue or mark the callback as failed.

    Implementation borrowed from ``celery.app.builtins.unlock_chord``.
    """
    j = group_result.join_native if group_result.supports_native_join else group_result.join
    try:
        with allow_join_result():
            ret = j(timeout=app.conf.result_chord_join_timeout, propagate=True)
    except Exception as exc:
        # Celery's own report only sees cached results, and result_cache_max is off by
        # default, so ask each result (this is the failure path; it may cost a query each).
        culprit = next((r for r in group_result.results if r.failed()), None)
        reason = repr(exc) if culprit is None else f"Dependency {culprit.id} raised {exc!r}"
        logger.exception("Chord %r raised: %r", group_result.id, exc)
        app.backend.chord_error_from_stack(callback, ChordError(reason))
    else:
        try:
            callback.delay(ret)
        except Exception as exc:
            logger.exception("Chord %r raised: %r", group_result.id, exc)
            app.backend.chord_error_from_stack(
                callback, exc=ChordError(f"Callback error: {exc!r}")
            )
