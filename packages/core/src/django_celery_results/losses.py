"""Lost and retried writes: an ERROR line per lost result, and this process's counts.

A write is lost when the database refused it after every retry (or at once, for an
error that is not transient). Celery logs such a failure once per process, without the
task's id; here each loss is one log line with the task id, the state, the database
alias, the error and the attempts made. :data:`COUNTS` is what this process retried and
lost so far: the seam the worker registry's heartbeats read.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: The attribute :func:`note_attempts` sets on the error that ended a retried operation.
_ATTEMPTS = "_django_celery_results_attempts"


@dataclass
class WriteCounts:
    """How many operations this process retried, and how many writes it lost."""

    retried: int = 0
    lost: int = 0


#: This process's counts (a forked child starts from its parent's; read differences).
COUNTS = WriteCounts()
_lock = threading.Lock()


def note_retry() -> None:
    """Count one retry of an operation after a transient error."""
    with _lock:
        COUNTS.retried += 1


def note_attempts(error: BaseException, attempts: int) -> None:
    """Remember on ``error`` how many attempts the operation it ended made."""
    with contextlib.suppress(AttributeError):  # an error type with __slots__: unknown
        setattr(error, _ATTEMPTS, attempts)


def attempts_of(error: BaseException) -> int:
    """The attempts made by the operation ``error`` ended (1 when it was not retried)."""
    return int(getattr(error, _ATTEMPTS, 1))


def note_lost(task_id: str, state: str, alias: str, error: BaseException) -> None:
    """Log a lost write with everything needed to find and redo it, and count it."""
    with _lock:
        COUNTS.lost += 1
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
