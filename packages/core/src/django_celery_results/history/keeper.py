"""The worker's history thread: catch-ups every ``HISTORY_INTERVAL`` s, backlog samples."""

from __future__ import annotations

import threading
import time

from django.db import router

from ..forkguard import guarded
from ..models import TaskResult
from . import backlog
from .rollup import catch_up


class Keeper(threading.Thread):
    """Catches the history up in the background of a worker's main process.

    Each turn counts a chunk at a time for up to half the interval; a catch-up running
    elsewhere (another worker, a page being read) makes it skip its turn. A failure is
    logged and the next turn tries again: the rows wait, uncounted, and cleanup keeps them
    until they are counted. Then it samples the backlog (once a minute among workers).

    Each chunk runs through :func:`forkguard.guarded`, so a fork of the process never
    lands inside it.
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
            progress = guarded(lambda: catch_up(alias, budget=0), "history: a catch-up")
            if progress is None or not progress.remaining or time.monotonic() >= deadline:
                break
        guarded(lambda: backlog.sample(alias), "history: a backlog sample")

    def stop(self) -> None:
        """Stop after the catch-up under way, if any."""
        self.stopped.set()


_keeper: Keeper | None = None
_lock = threading.Lock()


def after_fork_in_child() -> None:
    """No keeper runs in the child, and its copy of the lock may be held: a new one."""
    global _keeper, _lock
    _keeper, _lock = None, threading.Lock()


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
