"""The worker's history thread: a catch-up every ``HISTORY_INTERVAL`` seconds."""

from __future__ import annotations

import logging
import threading

from django.db import connections

from .rollup import catch_up

logger = logging.getLogger(__name__)


class Keeper(threading.Thread):
    """Catches the history up in the background of a worker's main process.

    Each catch-up may spend half the interval; one running elsewhere (another worker, a
    page being read) makes it skip its turn. A failure is logged and the next turn tries
    again: the rows wait, uncounted, and cleanup keeps them until they are counted.
    """

    def __init__(self, interval: float) -> None:
        super().__init__(name="django-celery-results-history", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        """Catch up, then wait, until stopped."""
        while not self.stopped.wait(self.interval):
            try:
                catch_up(budget=self.interval / 2)
            except Exception as exc:
                logger.warning("history: a catch-up failed, the next one retries: %r", exc)
            finally:
                connections.close_all()  # this thread's own connections

    def stop(self) -> None:
        """Stop after the catch-up under way, if any."""
        self.stopped.set()


_keeper: Keeper | None = None
_lock = threading.Lock()


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
