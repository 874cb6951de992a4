"""A worker's heartbeats: a bootstep that registers the worker and beats in a thread.

``lifecycle`` adds :class:`HeartbeatStep` to a worker whose app stores results with
``django-db`` (``WORKER_HEARTBEAT`` above 0). The database writes run in a thread of the
main process, not in the worker's event loop (a slow database must not hold up
consuming), each through the fork guard. A warm shutdown marks the worker stopped; a cold
one (or a kill) leaves its heartbeats to age.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any

import celery
import django
import kombu
from celery import bootsteps
from django.db import router

from .. import __version__
from ..conf import app_settings
from ..forkguard import guarded
from ..models import Worker
from . import life, lifeline, registry
from .registry import WorkerInfo


class Heartbeat(threading.Thread):
    """Registers the worker, then beats and sweeps every ``interval`` seconds until stopped."""

    def __init__(self, app: Any, info: WorkerInfo, interval: float) -> None:
        super().__init__(name="django-celery-results-heartbeat", daemon=True)
        self.app = app
        self.info = info
        self.interval = interval
        self.alias = router.db_for_write(Worker) or "default"
        self.stopped = threading.Event()
        #: Who holds the lifeline's duty when this worker does.
        self.holder = f"{info.hostname} {info.boot}"
        #: When this worker's last heartbeat was written, and since when it has beaten
        #: without a gap (``time.monotonic()``; None before it registered).
        self.last_beat: float | None = None
        self.connected_since: float | None = None

    def run(self) -> None:
        """Register (settling earlier lives' orphans), then beat and sweep, until stopped."""
        guarded(self.register, "worker registry: registering")
        while not self.stopped.wait(self.interval):
            # A sweep only after this turn's heartbeat was written: a worker that cannot
            # reach the database judges no one by heartbeats it could not read either.
            if guarded(self.beat, "worker registry: a heartbeat"):
                guarded(self.sweep, "lifeline: a sweep")

    def register(self) -> None:
        """Register this life; settle the orphans of earlier lives that certainly ended."""
        ended = registry.register(self.info, self.alias)
        self.reached_database()
        if ended and app_settings().LIFELINE_GRACE and not lifeline.refused():
            lifeline.settle_lives(self.app, self.alias, {row.boot: row for row in ended})

    def beat(self) -> bool:
        """One heartbeat (registering again if the row was lost); True once written."""
        registry.beat(self.info, self.alias)
        self.reached_database()
        return True

    def reached_database(self) -> None:
        """Note a written heartbeat; one after a gap starts a new connected stretch."""
        now = time.monotonic()
        if self.last_beat is None or now - self.last_beat > 2 * self.interval:
            self.connected_since = now
        self.last_beat = now

    def sweep(self) -> None:
        """The lifeline's sweep, if this worker is elected and has beaten for a grace.

        A worker cut off from the database (or stalled) saw no one's heartbeats either:
        until it has beaten without a gap for ``LIFELINE_GRACE``, the others it finds
        silent may only have been cut off with it, and their heartbeats resume meanwhile.
        """
        grace = app_settings().LIFELINE_GRACE.total_seconds()
        since = self.connected_since
        if since is None or time.monotonic() - since < grace:
            return
        lifeline.sweep(self.app, self.alias, self.holder)

    def stop(self, *, stopped: bool) -> None:
        """Stop beating; with ``stopped``, mark the worker stopped (a warm shutdown)."""
        self.stopped.set()
        self.join(timeout=self.interval + 10)
        if stopped:
            guarded(lambda: registry.stop(self.info, self.alias), "worker registry: stopping")


#: The heartbeats of this process's worker, while it runs.
_running: Heartbeat | None = None


def stop_after_shutdown(**kwargs: Any) -> None:
    """Celery's ``worker_shutdown`` (a warm one, once the pool ran its tasks): mark stopped.

    Not the step's ``stop``: Celery stops the steps before the pool it depends on has
    finished its tasks, and a worker marked stopped must have nothing left running.
    """
    _end(stopped=True)


def _end(*, stopped: bool) -> None:
    global _running
    running, _running = _running, None
    if running is not None:
        running.stop(stopped=stopped)


def info_of(worker: Any) -> WorkerInfo:
    """What the registry keeps of a starting worker (a ``WorkController``)."""
    pool = worker.pool_cls
    pool_name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__name__}"
    concurrency = getattr(worker, "max_concurrency", None) or worker.concurrency
    queues = tuple(
        binding for queue in worker.app.amqp.queues.consume_from.values()
        for binding in bindings_of(queue)
    )  # fmt: skip
    software = {
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "django": django.get_version(),
        "django-celery-results": __version__,
        "python": sys.version.split()[0],
    }
    return WorkerInfo(
        worker.hostname, socket.gethostname(), os.getpid(), pool_name, concurrency, queues,
        software, life.BOOT or life.begin(), app_settings().WORKER_HEARTBEAT,
    )  # fmt: skip


def bindings_of(queue: Any) -> list[dict[str, str]]:
    """How a kombu ``Queue`` is bound: its exchange, the exchange's type, the routing key.

    A queue bound several times (``bindings``) gives one entry per binding.
    """
    links = list(getattr(queue, "bindings", None) or ()) or [queue]
    entries = []
    for link in links:
        exchange = getattr(link, "exchange", None)
        entries.append({
            "queue": str(queue.name),
            "exchange": str(getattr(exchange, "name", "") or ""),
            "type": str(getattr(exchange, "type", "") or "direct"),
            "routing_key": str(getattr(link, "routing_key", "") or ""),
        })  # fmt: skip
    return entries


class HeartbeatStep(bootsteps.StartStopStep):
    """The worker registry's bootstep: beat once the pool runs, until the worker ends.

    A warm shutdown keeps beating while the pool finishes its tasks and marks the worker
    stopped after (:func:`stop_after_shutdown`); a cold one stops beating at once, and
    the heartbeats age as a lost worker's would.
    """

    label = "django-celery-results heartbeat"
    requires = ("celery.worker.components:Pool",)

    def start(self, worker: Any) -> None:
        """Register the worker and start its heartbeats."""
        global _running
        _end(stopped=False)
        _running = Heartbeat(worker.app, info_of(worker), app_settings().WORKER_HEARTBEAT)
        _running.start()

    def stop(self, worker: Any) -> None:
        """A warm shutdown: keep beating until the pool is done (``worker_shutdown``)."""

    def terminate(self, worker: Any) -> None:
        """A cold shutdown: stop beating, without marking the worker stopped."""
        _end(stopped=False)
