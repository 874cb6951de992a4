"""Celery database backend (``django-db``): results in Django's database, through its driver."""

from __future__ import annotations

import binascii
import contextlib
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from celery import maybe_signature, states
from celery.backends.base import BaseDictBackend, get_current_task
from celery.exceptions import BackendStoreError, ChordError
from celery.result import AsyncResult, GroupResult, allow_join_result, result_from_tuple
from celery.utils.log import get_logger
from django.db import DatabaseError, InterfaceError
from django.utils import timezone
from kombu.exceptions import DecodeError

from .. import losses, store
from ..cleanup import configured_steps, delete_dead_chord_counters
from ..cleanup import run as run_cleanup
from ..conf import app_settings
from ..drivers import BaseDriver, TaskRow, driver_for
from ..drivers.rows import task_meta_values
from ..failures import exception_type_of
from ..models import ChordCounter, TaskResult
from ..models import GroupResult as GroupResultModel
from ..operations import calls
from ..task_requests import ignore_flag, result_ignored, text
from ..workers import cleanup_duty, life
from .notify import NotifyWaits
from .rows import (
    InvalidStateName,
    InvalidTaskId,
    TaskRows,
    check_id_length,
    check_state_length,
    column_length,
    fit_descriptive_columns,
)

__all__ = [
    "EXCEPTIONS_TO_CATCH",
    "DatabaseBackend",
    "InvalidStateName",
    "InvalidTaskId",
    "check_id_length",
    "column_length",
    "fit_descriptive_columns",
    "trigger_callback",
]

logger = get_logger(__name__)

#: Upstream's list of retryable errors, kept for code that imports it. What is retried
#: is now each driver's decision (``driver.ops.is_transient_error``).
EXCEPTIONS_TO_CATCH: tuple[type[BaseException], ...] = (InterfaceError,)


class DatabaseBackend(NotifyWaits, TaskRows, BaseDictBackend):
    """The Django database backend, using models to store task state.

    Celery's backend API: writes, polls, groups, chords and cleanup. How a client waits
    (notifications or polls) is :class:`~.notify.NotifyWaits`; how a request becomes a
    row is :class:`~.rows.TaskRows`; each call reaches the database through the driver
    of the alias Django's routers pick.
    """

    TaskModel = TaskResult
    GroupModel = GroupResultModel
    subpolling_interval = 0.5
    #: Group joins read every pending result in one query per poll (see :meth:`get_many`).
    supports_native_join = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoded_constants: dict[tuple[str, str], str] = {}
        #: The request and traceback of the last write, and its fitted extended columns.
        self._last_extended = None
        #: Whether polls must warn that eager mode stores nothing (None: not read yet).
        self._warn_eager: bool | None = None

    def exception_safe_to_retry(self, exc: BaseException) -> bool:
        """Return True for errors the result database's driver calls transient.

        Used by Celery's own retry (``result_backend_always_retry``), on top of ours. The
        connection of that database (not always ``default``) is closed before the retry.
        """
        driver = driver_for(self.TaskModel)
        if not driver.ops.is_transient_error(exc):
            return False
        with contextlib.suppress(DatabaseError):
            driver.connection.close()
        return True

    def on_task_call(self, producer: Any, task_id: str) -> dict[str, Any]:
        """Refuse an id no row can hold, then subscribe to the task before it is sent.

        Celery asks this while the caller is still sending (``apply_async``), so a bad id
        is an :class:`InvalidTaskId` there, not a lost result later. With notifications
        on, subscribing first means its result cannot arrive unheard.
        """
        check_id_length(task_id, self.TaskModel, "task_id")
        if self.notifying():
            self.result_consumer.consume_from(task_id)
        return {}

    # -- tasks ---------------------------------------------------------------------------

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
        check_state_length(state)
        content_type, content_encoding, encoded = self.encode_content(result)
        meta = {
            **self._get_meta_from_request(request),
            "children": self.current_task_children(request),
        }
        # Celery's own backends store these too: the admin links a task to its group
        # and its parent. A task sent on its own has neither (the usual, constant meta).
        if request is not None:
            group, parent = getattr(request, "group", None), getattr(request, "parent_id", None)
            if group and isinstance(group, str):  # not a test's mock request's attribute
                meta["group_id"] = group
            if parent and isinstance(parent, str):
                meta["parent_id"] = parent
            call = calls.encode(self.app, request) if app_settings().STORE_CALLS else None
            if call is not None:
                meta[calls.META_KEY] = call
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
            None,  # date_created: the write's own time
            exception_type_of(result, state),
            # A running task's states: STARTED, and the project's own (``PROGRESS``).
            life.marker(self.app, request)
            if state == states.STARTED or state not in states.ALL_STATES
            else None,
        )
        store.store_task_row(driver_for(self.TaskModel, using), row)
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
            alias = driver_for(self.TaskModel, kwargs.get("using")).alias
            losses.note_lost(task_id, state, alias, _database_error(exc))
            raise

    def save_group(self, group_id: str, result: Any) -> Any:
        """Celery's ``save_group``; a group the database refused for good is logged."""
        try:
            return super().save_group(group_id, result)
        except (DatabaseError, BackendStoreError) as exc:
            alias = driver_for(self.GroupModel).alias
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
        if calls.META_KEY in meta:  # the admin's, not Celery's
            meta = {key: value for key, value in meta.items() if key != calls.META_KEY}
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

    def ready_results(
        self,
        task_ids: Iterable[str],
        driver: BaseDriver | None = None,
        ready_states: frozenset[str] = states.READY_STATES,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(task_id, meta)`` of the ready results among ``task_ids``, read in one query.

        Each meta is decoded as it is yielded: a row that cannot be decoded raises after
        the rows before it were handed on.
        """
        driver = driver or driver_for(self.TaskModel, write=False)
        for task_id, row in store.read_task_results(driver, task_ids).items():
            if row.status in ready_states:
                yield task_id, self._meta_from_row(row)

    def stored_row(self, task_id: str) -> TaskResult | None:
        """Return the stored row of ``task_id``, or None; states queued here are written first."""
        driver = driver_for(self.TaskModel, write=False)
        return store.read_task_results(driver, (task_id,)).get(task_id)

    def store_pending_row(self, row: TaskRow) -> None:
        """Write a PENDING row now, in the caller's thread and transaction (not queued)."""
        driver_for(self.TaskModel).retrying.store_pending_results([row])

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
        driver = driver_for(self.TaskModel, write=False)
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
        return store.task_result_exists(driver_for(self.TaskModel, write=False), task_id)

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
        driver = driver_for(self.TaskModel, write=False)
        iterations = 0
        elapsed = 0.0
        while pending:
            for task_id, meta in self.ready_results(sorted(pending), driver, READY_STATES):
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
        store.delete_task_result(driver_for(self.TaskModel), task_id)

    def cleanup(self) -> None:
        """Delete expired results: by ``RETENTION``'s rules, ``result_expires`` for the rest.

        What beat's daily ``celery.backend_cleanup`` runs. ``result_expires`` of ``None``
        or 0 keeps every row no rule expires. Counters of dead chords go first, while
        their header results still show that the chord is over. While a setting that
        decides what is deleted is invalid, nothing is: an ERROR line per problem is
        logged and :class:`~django_celery_results.cleanup.CleanupRefused` raised. One
        run per period for the cluster, however many beats send it
        (:mod:`~django_celery_results.workers.cleanup_duty`).
        """
        steps = configured_steps(self.expires)  # refused first: a fixed setting runs
        with cleanup_duty.elected(self.app) as chosen:
            if chosen:
                delete_dead_chord_counters(self.expires)
                run_cleanup(steps)

    # -- groups --------------------------------------------------------------------------

    def _restore_group(self, group_id: str) -> dict[str, Any]:
        """Return the stored group meta; its ``result`` is ``None`` when there is none."""
        driver = driver_for(self.GroupModel, write=False)
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
        driver = driver_for(self.GroupModel)
        driver.retrying.store_group_result(group_id, content_type, content_encoding, encoded)
        return group_result

    def _delete_group(self, group_id: str) -> None:
        driver = driver_for(self.GroupModel)
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
        driver = driver_for(ChordCounter)
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
        driver = driver_for(ChordCounter)
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
            if result_ignored(
                self.app, ignore_flag(request), text(getattr(request, "task", None))
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
        rows = store.read_task_results(driver_for(self.TaskModel, write=False), ids)
        return all(
            task_id in rows and rows[task_id].status in states.READY_STATES for task_id in ids
        )


def _database_error(exc: BaseException) -> BaseException:
    """The database's error behind ``exc`` (Celery's ``BackendStoreError`` wraps it)."""
    cause = exc.__cause__ or exc.__context__
    return cause if isinstance(exc, BackendStoreError) and cause is not None else exc


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
