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
from . import registry
from .registry import WorkerInfo


class Heartbeat(threading.Thread):
    """Registers the worker, then beats every ``interval`` seconds until stopped."""

    def __init__(self, info: WorkerInfo, interval: float) -> None:
        super().__init__(name="django-celery-results-heartbeat", daemon=True)
        self.info = info
        self.interval = interval
        self.alias = router.db_for_write(Worker) or "default"
        self.stopped = threading.Event()

    def run(self) -> None:
        """Register, then beat, until stopped."""
        guarded(lambda: registry.register(self.info, self.alias), "worker registry: registering")
        while not self.stopped.wait(self.interval):
            guarded(lambda: registry.beat(self.info, self.alias), "worker registry: a heartbeat")

    def stop(self, *, stopped: bool) -> None:
        """Stop beating; with ``stopped``, mark the worker stopped (a warm shutdown)."""
        self.stopped.set()
        self.join(timeout=self.interval + 10)
        if stopped:
            guarded(lambda: registry.stop(self.info, self.alias), "worker registry: stopping")


def info_of(worker: Any) -> WorkerInfo:
    """What the registry keeps of a starting worker (a ``WorkController``)."""
    pool = worker.pool_cls
    pool_name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__name__}"
    concurrency = getattr(worker, "max_concurrency", None) or worker.concurrency
    queues = tuple(worker.app.amqp.queues.consume_from)
    software = {
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "django": django.get_version(),
        "django-celery-results": __version__,
        "python": sys.version.split()[0],
    }
    return WorkerInfo(
        worker.hostname, socket.gethostname(), os.getpid(), pool_name, concurrency, queues,
        software,
    )  # fmt: skip


class HeartbeatStep(bootsteps.StartStopStep):
    """The worker registry's bootstep: start beating once the pool runs, stop at shutdown."""

    label = "django-celery-results heartbeat"
    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.thread: Heartbeat | None = None

    def start(self, worker: Any) -> None:
        """Register the worker and start its heartbeats."""
        self.thread = Heartbeat(info_of(worker), app_settings().WORKER_HEARTBEAT)
        self.thread.start()

    def stop(self, worker: Any) -> None:
        """A warm shutdown: stop beating and mark the worker stopped."""
        self._end(stopped=True)

    def terminate(self, worker: Any) -> None:
        """A cold shutdown: stop beating; the heartbeats age as a lost worker's would."""
        self._end(stopped=False)

    def _end(self, *, stopped: bool) -> None:
        if self.thread is not None:
            self.thread.stop(stopped=stopped)
            self.thread = None
