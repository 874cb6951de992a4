"""Publish-time PENDING rows: the writer that stores them, many rows per statement.

With ``DJANGO_CELERY_RESULTS["TRACK_PENDING"]`` on, every task a process sends through an
app whose result backend is ``django-db`` gets a PENDING row stamped with the send time.
The publishing thread only builds the row (``backends.rows.record_pending``, Celery's
``before_task_publish`` handler) and queues it here; a background thread writes the
queue with the driver's ``store_pending_results``, many rows per statement, so sending a
group of 1,000 tasks costs a handful of statements and the publisher never waits for the
database. Writes go through their own connection, outside any transaction of the sender.
"""

from __future__ import annotations

import threading

from . import losses
from .drivers import TaskRow
from .writers import IDLE, BackgroundWriter, close_connections

#: Longest a queued row waits for company before it is written, in seconds: long enough
#: that a group being sent goes out in a few statements, short beside a task's queue time.
LINGER = 0.01
#: Rows per write; more wait for the next one.
MAX_ROWS = 1000


class PendingWriter:
    """Writes queued PENDING rows from one background thread, many per statement."""

    def __init__(self) -> None:
        self._rows: list[TaskRow] = []
        self._busy = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._release = False
        self._flushing = 0

    def add(self, row: TaskRow) -> None:
        """Queue ``row``; it is written within a few milliseconds."""
        with self._condition:
            self._rows.append(row)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="django-celery-results-pending", daemon=True
                )
                self._thread.start()
            self._condition.notify_all()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Write every queued row now and wait for it; return False on timeout."""
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                return self._condition.wait_for(lambda: not self._rows and not self._busy, timeout)
            finally:
                self._flushing -= 1

    def release(self, timeout: float | None = 10.0) -> bool:
        """Write what is queued, then close the writer's database connections."""
        with self._condition:
            if self._thread is None:
                return True  # nothing was ever written: no connection to close
            self._release = True
            self._condition.notify_all()
            return self._condition.wait_for(
                lambda: not self._rows and not self._busy and not self._release, timeout
            )

    def _run(self) -> None:
        while True:
            with self._condition:
                idle = not self._condition.wait_for(
                    lambda: bool(self._rows) or self._release, IDLE
                )
                if idle or (self._release and not self._rows):
                    # Nothing sent for a while (or asked to): give the connection back.
                    self._release = False
                    close_connections(self._condition)
                    self._condition.notify_all()
                    continue
                if len(self._rows) < MAX_ROWS:
                    # Let the rest of a group being sent join this write.
                    self._condition.wait_for(
                        lambda: len(self._rows) >= MAX_ROWS or self._flushing > 0, LINGER
                    )
                rows, self._rows = self._rows[:MAX_ROWS], self._rows[MAX_ROWS:]
                self._busy = True
            try:
                write(rows)
            finally:
                with self._condition:
                    self._busy = False
                    self._condition.notify_all()


def write(rows: list[TaskRow]) -> None:
    """Write ``rows`` through the driver; log (never raise) what could not be written.

    Many rows go in one statement. When it fails for a reason that is not transient
    (already retried), each row is written on its own: one bad row loses only itself,
    logged with its task id. A lost PENDING row loses nothing a user relies on: the
    worker's own writes create the row, and reading an unknown id already answers PENDING.
    """
    from .drivers import driver_for_model
    from .models import TaskResult

    try:
        driver = driver_for_model(TaskResult)
    except Exception as exc:  # no database to write to at all
        for row in rows:
            losses.note_lost(row.task_id, row.status, "?", exc)
        return
    try:
        driver.retrying.store_pending_results(rows)
        return
    except Exception as exc:
        if len(rows) == 1 or driver.ops.is_transient_error(exc):
            for row in rows:
                losses.note_lost(row.task_id, row.status, driver.alias, exc)
            return
    for row in rows:
        try:
            driver.retrying.store_pending_results([row])
        except Exception as exc:
            losses.note_lost(row.task_id, row.status, driver.alias, exc)


_writer: PendingWriter | None = None
_writer_lock = threading.Lock()


def writer() -> PendingWriter:
    """Return this process's writer (a forked child starts with an empty one)."""
    global _writer
    if _writer is None:
        with _writer_lock:
            if _writer is None:
                _writer = PendingWriter()
    return _writer


def flush(timeout: float | None = 10.0) -> bool:
    """Wait until this process's queued PENDING rows are written (tests, shutdown)."""
    return True if _writer is None else _writer.flush(timeout)


def release(timeout: float | None = 10.0) -> bool:
    """Write what is queued and close the writer's connections (tests, shutdown)."""
    return True if _writer is None else _writer.release(timeout)


def forget_in_child() -> None:
    """Start a forked child with an empty queue (``writers`` calls it after a fork)."""
    global _writer, _writer_lock
    _writer = None
    _writer_lock = threading.Lock()


#: What ``lifecycle`` hands to :func:`writers.register`.
WRITER = BackgroundWriter("pending", flush, forget_in_child)
