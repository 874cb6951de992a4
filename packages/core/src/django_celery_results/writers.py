"""The life cycle the background writers share: a fork, the interpreter's exit, a worker's.

Two modules keep rows in memory and write them from a background thread: ``batching``
(batched task states) and ``pending`` (publish-time PENDING rows). Each hands this module
its ``flush`` and its ``forget_in_child``; :func:`install`, called once from
``AppConfig.ready()``, wires them to the events of the process: a forked child forgets
its parent's queues, and what is queued is written at interpreter exit and when a prefork
worker child shuts down (it leaves with ``os._exit``, past ``atexit``).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from typing import Any

from celery.signals import worker_process_shutdown
from django.db import connections

#: How long each writer may take to write its queue when the process ends, in seconds.
EXIT_TIMEOUT = 5.0
#: Seconds without a queued row after which a writer's thread closes its connections, so
#: an idle process holds none (and a test database can be dropped); the next write
#: reconnects.
IDLE = 5.0


class BackgroundWriter:
    """One in-memory queue with a background thread: how to flush it, how to drop it."""

    def __init__(
        self, name: str, flush: Callable[[float | None], bool], forget: Callable[[], None]
    ):
        self.name = name
        self.flush = flush
        #: Called in a forked child: the parent's queue is the parent's to write, its
        #: threads do not exist there, and a lock one of them held would stay held.
        self.forget = forget


_writers: list[BackgroundWriter] = []
_installed = False
_install_lock = threading.Lock()


def install(*writers: BackgroundWriter) -> None:
    """Wire ``writers`` to fork, exit and worker shutdown; later calls add nothing twice."""
    global _installed
    with _install_lock:
        known = {writer.name for writer in _writers}
        _writers.extend(writer for writer in writers if writer.name not in known)
        if _installed:
            return
        _installed = True
    os.register_at_fork(after_in_child=_forget_all)
    atexit.register(flush_all, EXIT_TIMEOUT)
    worker_process_shutdown.connect(
        _flush_on_worker_shutdown, dispatch_uid="django_celery_results.writers", weak=False
    )


def close_connections(lock: threading.Condition) -> None:
    """Close the calling writer thread's connections, with its held ``lock`` let go meanwhile.

    Django's connections are per thread, so only the writer's own close; producers
    queueing rows never wait on a socket being shut.
    """
    lock.release()
    try:
        connections.close_all()
    finally:
        lock.acquire()


def flush_all(timeout: float | None = EXIT_TIMEOUT) -> bool:
    """Write every writer's queue; return False when one of them timed out."""
    return all([writer.flush(timeout) for writer in list(_writers)])


def _forget_all() -> None:
    for writer in _writers:
        writer.forget()


def _flush_on_worker_shutdown(**kwargs: Any) -> None:
    flush_all(EXIT_TIMEOUT)
