"""The fork guard of the worker's background threads: a fork never lands mid-query.

A prefork pool forks a new process whenever one ends (a terminated task, a memory limit).
A child forked while a thread of the main process is inside the database library
inherits that library's locks held, by a thread it does not have, and hangs on its first
query (SQLite's mutexes did, in CI); one forked while a connection is open may close it
under the parent. So each database step of those threads (the history's catch-ups, the
registry's heartbeats) runs through :func:`guarded`: it holds a lock that every fork waits
for (``lifecycle`` registers the hooks below) and closes the thread's connections before
letting go. A fork waits for one step at most.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Held by a guarded step and by every fork of this process.
_step = threading.Lock()


def guarded(step: Callable[[], T], what: str) -> T | None:
    """Run one step holding the guard, its connections closed after; log a failure."""
    with _step:
        try:
            return step()
        except Exception as exc:
            logger.warning("%s failed, the next turn retries: %r", what, exc)
            return None
        finally:
            connections.close_all()  # this thread's own connections


def before_fork() -> None:
    """Wait for the step under way, and hold the guard until the fork is done."""
    _step.acquire()


def after_fork_in_parent() -> None:
    """Let the next step run."""
    _step.release()


def after_fork_in_child() -> None:
    """The child's copy of the guard is held: a new one (no thread of the parent runs here)."""
    global _step
    _step = threading.Lock()
