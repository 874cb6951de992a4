"""The worker's history thread: catch-ups every ``HISTORY_INTERVAL`` s, backlog samples."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connections, router

from ..models import TaskResult
from . import backlog
from .rollup import catch_up

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Keeper(threading.Thread):
    """Catches the history up in the background of a worker's main process.

    Each turn counts a chunk at a time for up to half the interval; a catch-up running
    elsewhere (another worker, a page being read) makes it skip its turn. A failure is
    logged and the next turn tries again: the rows wait, uncounted, and cleanup keeps them
    until they are counted. Then it samples the backlog (once a minute among workers).

    A prefork pool forks a new process whenever one ends (a terminated task, a memory
    limit). A child forked while this thread is inside the database library inherits its
    locks held, by a thread it does not have, and hangs on its first query (SQLite's
    mutexes); one forked while a connection is open may close it under the parent. So
    each chunk holds ``_turn``, which every fork waits for (``lifecycle`` registers
    :func:`before_fork`), and closes its connections before it lets go: a fork waits for
    one chunk at most.
    """

    def __init__(self, interval: float) -> None:
        super().__init__(name="django-celery-results-history", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        """Catch up, then wait, until stopped."""
        while not self.stopped.wait(self.interval):
            self.turn()

    def turn(self) -> None:
        """Count a chunk at a time for up to half the interval, then sample the backlog."""
        deadline = time.monotonic() + self.interval / 2
        alias = router.db_for_write(TaskResult) or "default"
        while not self.stopped.is_set():
            progress = _guarded(lambda: catch_up(alias, budget=0), "a catch-up")
            if progress is None or not progress.remaining or time.monotonic() >= deadline:
                break
        _guarded(lambda: backlog.sample(alias), "a backlog sample")

    def stop(self) -> None:
        """Stop after the catch-up under way, if any."""
        self.stopped.set()


def _guarded(step: Callable[[], T], what: str) -> T | None:
    """Run one step holding ``_turn``, its connections closed after; log a failure."""
    with _turn:
        try:
            return step()
        except Exception as exc:
            logger.warning("history: %s failed, the next turn retries: %r", what, exc)
            return None
        finally:
            connections.close_all()  # this thread's own connections


_keeper: Keeper | None = None
_lock = threading.Lock()
#: Held by a keeper's turn and by every fork of this process (see ``Keeper``).
_turn = threading.Lock()


def before_fork() -> None:
    """Wait for the turn under way, and hold it until the fork is done."""
    _turn.acquire()


def after_fork_in_parent() -> None:
    """Let the next turn run."""
    _turn.release()


def after_fork_in_child() -> None:
    """No keeper runs in the child, and its copies of the locks are taken: new ones."""
    global _keeper, _lock, _turn
    _keeper, _lock, _turn = None, threading.Lock(), threading.Lock()


def start(interval: float) -> Keeper | None:
    """Start this process's keeper (once); None when ``interval`` is 0."""
    global _keeper
    with _lock:
        if _keeper is None and interval > 0:
            _keeper = Keeper(interval)
            _keeper.start()
        return _keeper


def stop() -> None:
    """Stop this process's keeper, if it runs."""
    global _keeper
    with _lock:
        keeper, _keeper = _keeper, None
    if keeper is not None:
        keeper.stop()
