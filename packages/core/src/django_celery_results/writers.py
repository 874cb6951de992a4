"""What the background writers share: their registry, and how all of them flush or forget.

Two modules keep rows in memory and write them from a background thread: ``batching``
(batched task states) and ``pending`` (publish-time PENDING rows). Each hands this module
its ``flush`` and its ``forget_in_child`` (:func:`register`); ``lifecycle`` calls
:func:`forget_all` in a forked child and :func:`flush_all` at interpreter exit and when a
prefork worker child shuts down (it leaves with ``os._exit``, past ``atexit``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

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
_lock = threading.Lock()


def register(*writers: BackgroundWriter) -> None:
    """Add ``writers`` to those flushed and forgotten together; a writer is added once."""
    with _lock:
        known = {writer.name for writer in _writers}
        _writers.extend(writer for writer in writers if writer.name not in known)


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


def forget_all() -> None:
    """Drop every writer's queue: in a forked child, the parent's rows are the parent's."""
    for writer in _writers:
        writer.forget()
