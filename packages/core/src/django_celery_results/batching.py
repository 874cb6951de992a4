"""Batched state updates (``BATCH_WRITES``): coalesce a process's writes, group-commit them.

With ``DJANGO_CELERY_RESULTS["BATCH_WRITES"]`` on, each process keeps one queue of task
rows per database alias:

- A non-terminal state (STARTED, RETRY, RECEIVED, a custom progress state) is queued and
  ``store_result`` returns at once. A later state of the same task replaces it in the
  queue by the same precedence rule the database applies, keeping what the database would
  keep (``date_started``, ``date_created``, names and args), so STARTED then SUCCESS is one
  row write.
- A terminal state (SUCCESS, FAILURE, REVOKED) is queued too, and its caller then waits
  until its row is committed: the caller that finds no write running writes the whole
  queue in one multi-row ``store_task_results``; callers arriving meanwhile queue their
  rows and are written together by the next one (group commit).
- A background thread writes queued non-terminal rows ``max_delay_ms`` after the oldest
  was queued, or as soon as ``max_rows`` are waiting.

Reads of a queued task id in the same process flush first. The queue is flushed at
interpreter exit and when a worker process shuts down; a forked child starts empty (the
life cycle of ``writers``, wired in ``AppConfig.ready()``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from . import losses
from .conf import BatchWrites, app_settings
from .drivers.base import BaseDriver
from .drivers.rows import TaskRow
from .states import is_terminal, may_overwrite
from .writers import IDLE, BackgroundWriter, close_connections


def merge(queued: TaskRow, new: TaskRow) -> TaskRow:
    """Return the one row that writes what writing ``queued`` then ``new`` would store.

    A ``new`` state the precedence rule refuses changes nothing. An accepted one keeps
    the queued row's ``date_started`` and ``date_created`` (its first write would have
    set them) and the descriptive columns it leaves out.
    """
    if not may_overwrite(queued.status, new.status):
        return queued
    # By position, in field order (not dataclasses.replace): it runs once per task.
    return TaskRow(
        new.task_id,
        new.status,
        new.content_type,
        new.content_encoding,
        new.result,
        new.date_done,
        new.traceback,
        new.meta,
        _first(new.periodic_task_name, queued.periodic_task_name),
        _first(new.task_name, queued.task_name),
        _first(new.task_args, queued.task_args),
        _first(new.task_kwargs, queued.task_kwargs),
        _first(new.worker, queued.worker),
        _first(new.retries, queued.retries),
        _first(new.queue, queued.queue),
        _first(queued.date_started, new.date_started),
        queued.date_created or queued.date_done,
        new.exception_type,
        new.lifeline,
    )


def _first(value: Any, otherwise: Any) -> Any:
    return otherwise if value is None else value


class _Ticket:
    """A terminal caller's claim: done once its row's batch was written."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None


class Batcher:
    """The queue of one database alias in one process, and its group commits."""

    def __init__(self, driver: BaseDriver, settings: BatchWrites) -> None:
        self.driver = driver
        self.settings = settings
        self.max_delay = settings.max_delay_ms / 1000
        self.max_rows = settings.max_rows
        lock = threading.Lock()
        #: Waiters for a write to finish (terminal callers, flushes).
        self._condition = threading.Condition(lock)
        #: Wakes the flusher thread only: were it woken by every finished write, it
        #: would take the GIL once per task for nothing.
        self._wakeup = threading.Condition(lock)
        self._rows: dict[str, TaskRow] = {}
        self._tickets: dict[str, list[_Ticket]] = {}
        #: When the oldest queued row was queued (``time.monotonic()``).
        self._oldest = 0.0
        #: Rows being written by the running flush, by task id (empty when none runs).
        self._writing: dict[str, TaskRow] = {}
        self._flushing = False
        #: Batches taken from the queue, and batches finished: both only grow.
        self._taken = 0
        self._finished = 0
        self._thread: threading.Thread | None = None
        self._flusher_asleep = False
        #: Callers waiting for the flusher thread to write for them (see :meth:`flush`).
        self._urgent = 0
        self._stopping = False

    # -- callers ---------------------------------------------------------------------------

    def store(self, row: TaskRow) -> None:
        """Queue ``row``; a terminal one returns only once it is committed (or raises)."""
        with self._condition:
            self._queue(row)
            if not is_terminal(row.status):
                if self._flusher_asleep or len(self._rows) >= self.max_rows:
                    # One wake-up is enough (the flusher then looks at the queue): a
                    # notify per queued row would keep it contending for the lock.
                    self._flusher_asleep = False
                    self._wakeup.notify()
                if self._thread is None:
                    self._start_flusher()
                return
            ticket = _Ticket()
            self._tickets.setdefault(row.task_id, []).append(ticket)
            while not ticket.done:
                if self._flushing:
                    self._condition.wait()
                else:
                    self._lead()
        if ticket.error is not None:
            raise ticket.error

    @property
    def flusher_asleep(self) -> bool:
        """Is the flusher thread asleep until the next queued row (nothing to write)?"""
        return self._flusher_asleep

    def waiting_callers(self) -> int:
        """How many callers wait for their terminal row to be committed."""
        with self._condition:
            return sum(map(len, self._tickets.values()))

    def holds(self, task_ids: Iterable[str]) -> bool:
        """Return True when a row of any of ``task_ids`` is queued or being written."""
        with self._condition:
            return any(t in self._rows or t in self._writing for t in task_ids)

    def flush_ids(self, task_ids: Iterable[str]) -> None:
        """Flush when a row of any of ``task_ids`` is queued or being written."""
        if self.holds(task_ids):
            self.flush()

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued before this call; return False on timeout.

        Rows a flush could not write are logged by it, not raised here.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # Inside a transaction the write would join it (and its rollback): the flusher
        # thread writes instead, on its own connection.
        delegate = self.driver.connection.in_atomic_block
        with self._condition:
            target = self._taken + (1 if self._rows else 0)
            if delegate:
                self._urgent += 1
                if self._thread is None:
                    self._start_flusher()
                self._wakeup.notify()
            try:
                while self._finished < target:
                    if not self._flushing and not delegate:
                        self._lead()
                        continue
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._condition.wait(remaining)
            finally:
                if delegate:
                    self._urgent -= 1
        return True

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Write what is queued, then end the flusher thread and close its connections."""
        with self._condition:
            thread = self._thread
            if thread is None:
                return True
            self._stopping = True
            self._wakeup.notify()
        thread.join(timeout)
        return not thread.is_alive()

    # -- the queue (lock held) -------------------------------------------------------------

    def _queue(self, row: TaskRow) -> None:
        if not self._rows:
            self._oldest = time.monotonic()
        queued = self._rows.get(row.task_id)
        self._rows[row.task_id] = row if queued is None else merge(queued, row)

    def _lead(self) -> None:
        """Write the whole queue as one batch; the lock is released while it is written."""
        taken, tickets = self._rows, self._tickets
        self._rows, self._tickets = {}, {}
        rows = list(taken.values())
        if len(rows) > 1:
            rows.sort(key=_task_id)  # one lock order for every writer
        self._taken += 1
        self._flushing = True
        self._writing = taken
        failures: dict[str, BaseException] = {}
        self._condition.release()
        try:
            failures = self._write(rows)
        except BaseException as exc:  # e.g. KeyboardInterrupt: no waiter may hang
            failures = {row.task_id: exc for row in rows}
            raise
        finally:
            self._condition.acquire()
            self._flushing = False
            self._writing = {}
            self._finished += 1
            for task_id, waiting in tickets.items():
                for ticket in waiting:
                    ticket.done = True
                    ticket.error = failures.get(task_id)
            self._condition.notify_all()

    # -- writing (lock not held) -----------------------------------------------------------

    def _write(self, rows: list[TaskRow]) -> dict[str, BaseException]:
        """Write ``rows``; return the error of each row that could not be written.

        Transient errors are retried (core's retry). When a batch fails for another
        reason, each row is written on its own, so one bad row fails only its own task.
        """
        if not rows:
            return {}
        driver = self.driver
        try:
            if len(rows) <= self.max_rows:
                driver.retrying.store_task_results(rows)
            else:
                for start in range(0, len(rows), self.max_rows):
                    chunk = rows[start : start + self.max_rows]
                    driver.retrying.store_task_results(chunk)
            return {}
        except Exception as exc:
            if len(rows) == 1 or driver.ops.is_transient_error(exc):
                failures: dict[str, BaseException] = {row.task_id: exc for row in rows}
            else:
                failures = {}
                for row in rows:
                    try:
                        driver.retrying.store_task_results([row])
                    except Exception as row_exc:
                        failures[row.task_id] = row_exc
        # Terminal callers get their error raised; nobody waits for the others: log them.
        for row in rows:
            if row.task_id in failures and not is_terminal(row.status):
                losses.note_lost(row.task_id, row.status, driver.alias, failures[row.task_id])
        return failures

    # -- the flusher thread ----------------------------------------------------------------

    def _start_flusher(self) -> None:
        self._thread = threading.Thread(
            target=self._flush_periodically,
            name=f"django-celery-results-batch-{self.driver.alias}",
            daemon=True,
        )
        self._thread.start()

    def _flush_periodically(self) -> None:
        """Write non-terminal rows ``max_delay`` after the oldest was queued."""
        idle_since = time.monotonic()
        with self._condition:
            while True:
                now = time.monotonic()
                if self._stopping and not self._rows:
                    if self._flushing:  # another thread's write: let it finish first
                        self._condition.wait()
                        continue
                    self._stopping = False
                    self._thread = None
                    close_connections(self._condition)
                    return
                if not self._rows:
                    if (now - idle_since < IDLE or self._urgent) and not self._stopping:
                        self._wakeup.wait(self.max_delay)
                        continue
                    # Nothing queued for a while: give the connection back.
                    close_connections(self._condition)
                    if not self._rows and not self._stopping:
                        self._flusher_asleep = True  # the next queued row wakes us
                        self._wakeup.wait()
                        self._flusher_asleep = False
                    continue
                idle_since = now
                due = self._oldest + self.max_delay
                urgent = self._urgent or self._stopping
                if now < due and len(self._rows) < self.max_rows and not urgent:
                    self._wakeup.wait(due - now)
                elif self._flushing:
                    self._condition.wait()
                else:
                    self._lead()


def _task_id(row: TaskRow) -> str:
    return row.task_id


_batchers: dict[str, Batcher] = {}
_batchers_lock = threading.Lock()


def batchers() -> dict[str, Batcher]:
    """This process's batchers by database alias (a copy): those that queued a row."""
    with _batchers_lock:
        return dict(_batchers)


def batcher_for(driver: BaseDriver) -> Batcher | None:
    """Return the process's batcher of ``driver``'s alias, or None when batching is off."""
    batch = app_settings().BATCH_WRITES
    if batch is None:
        return None
    batcher = _batchers.get(driver.alias)
    if batcher is None or batcher.settings is not batch:
        with _batchers_lock:
            batcher = _batchers.get(driver.alias)
            if batcher is None or batcher.settings is not batch:
                if batcher is not None:  # the setting changed (tests): write the old queue
                    batcher.stop()
                batcher = _batchers[driver.alias] = Batcher(driver, batch)
    return batcher


def flush_task_ids(task_ids: Iterable[str]) -> None:
    """Flush every queue that holds one of ``task_ids`` (a read must see its own writes)."""
    if not _batchers:
        return
    task_ids = list(task_ids)
    for batcher in list(_batchers.values()):
        batcher.flush_ids(task_ids)


def flush(timeout: float | None = 10.0) -> bool:
    """Write every queued row of this process; return False when one queue timed out."""
    return all([batcher.flush(timeout) for batcher in list(_batchers.values())])


def release(timeout: float | None = 10.0) -> bool:
    """Write every queue and end the flusher threads, closing their connections (tests)."""
    with _batchers_lock:
        batchers = list(_batchers.values())
        _batchers.clear()
    return all([batcher.stop(timeout) for batcher in batchers])


def forget_in_child() -> None:
    """Start a forked child with no queues (``writers`` calls it after a fork)."""
    global _batchers_lock
    _batchers.clear()
    _batchers_lock = threading.Lock()


#: What ``lifecycle`` hands to :func:`writers.register`.
WRITER = BackgroundWriter("batching", flush, forget_in_child)
