"""Lost and retried writes: an ERROR line per lost result, and the worker's counts.

A write is lost when the database refused it after every retry (or at once, for an
error that is not transient). Celery logs such a failure once per process, without the
task's id; here each loss is one log line with the task id, the state, the database
alias, the error and the attempts made. :data:`COUNTS` is what was retried and lost so
far, in memory shared with every process forked from this one (a prefork pool's
children count into their worker's): the worker registry's heartbeats carry it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from typing import Any

logger = logging.getLogger(__name__)

#: The attribute :func:`note_attempts` sets on the error that ended a retried operation.
_ATTEMPTS = "_django_celery_results_attempts"


class WriteCounts:
    """Operations retried and writes lost, by this process and the processes it forked.

    In shared memory (an anonymous mapping survives a fork as the same memory) where the
    system has it; in this process's memory where it does not (no ``/dev/shm``, as on
    AWS Lambda). A lock is never waited on for long: a process killed while holding it
    (a hard time limit, the OOM killer) must not stop the heartbeat that reads the counts.
    """

    def __init__(self) -> None:
        self._retried: Any
        self._lost: Any
        try:
            self._retried = multiprocessing.Value("q", 0)
            self._lost = multiprocessing.Value("q", 0)
        except OSError:  # no shared memory or semaphores here: this process's counts
            self._retried, self._lost = _Local(), _Local()

    @property
    def retried(self) -> int:
        """Operations retried after a transient error."""
        # The raw value: an aligned 64-bit read is whole without the lock (``.value``
        # would wait on it).
        return int(self._retried.get_obj().value)

    @property
    def lost(self) -> int:
        """Writes the database refused for good."""
        return int(self._lost.get_obj().value)

    def add(self, *, retried: int = 0, lost: int = 0) -> None:
        """Count retries or losses."""
        for counter, amount in ((self._retried, retried), (self._lost, lost)):
            if not amount:
                continue
            lock = counter.get_lock()
            taken = lock.acquire(timeout=LOCK_WAIT)
            try:
                counter.get_obj().value += amount  # a lock never given back: count anyway
            finally:
                if taken:
                    lock.release()


class _Local:
    """A counter of this process only, shaped as a ``multiprocessing.Value``."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def get_lock(self) -> threading.Lock:
        return self._lock

    def get_obj(self) -> _Local:
        return self


#: Longest wait for a counter's lock, in seconds.
LOCK_WAIT = 0.5


#: The counts of this process and every process forked from it.
COUNTS = WriteCounts()


def note_retry() -> None:
    """Count one retry of an operation after a transient error."""
    COUNTS.add(retried=1)


def note_attempts(error: BaseException, attempts: int) -> None:
    """Remember on ``error`` how many attempts the operation it ended made."""
    with contextlib.suppress(AttributeError):  # an error type with __slots__: unknown
        setattr(error, _ATTEMPTS, attempts)


def attempts_of(error: BaseException) -> int:
    """The attempts made by the operation ``error`` ended (1 when it was not retried)."""
    return int(getattr(error, _ATTEMPTS, 1))


def note_lost(task_id: str, state: str, alias: str, error: BaseException) -> None:
    """Log a lost write with everything needed to find and redo it, and count it."""
    COUNTS.add(lost=1)
    attempts = attempts_of(error)
    logger.error(
        "Lost the %s state of task %s: database %r refused the write after %d attempt%s: %s: %s",
        state,
        task_id,
        alias,
        attempts,
        "" if attempts == 1 else "s",
        type(error).__name__,
        error,
    )
