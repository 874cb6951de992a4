"""One listening connection per process and database: the hub result waiters share."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from operator import methodcaller
from typing import Any, Protocol

from celery import states
from celery.utils.log import get_logger
from django.db import connections

from ..drivers import BaseDriver, ListenerLost, NotificationsUnavailable

logger = get_logger(__name__)


class Consumer(Protocol):
    """What the hub tells a result consumer (:class:`~.notify.NotifyResultConsumer`)."""

    def subscribed(self) -> set[str]:
        """The ids the consumer waits on."""

    def on_notified(self, task_ids: list[str]) -> None:
        """These tasks' rows changed."""

    def on_listener_lost(self) -> None:
        """Notices may have been lost: read every id waited on."""

    def on_notifications_unavailable(self) -> None:
        """Notices cannot reach this process: poll from now on."""


#: Longest time between two reads of every pending result, in seconds, whatever the
#: notifications say: a lost notice (a worker without ``NOTIFY``) costs at most this
#: long, never a hang. One query per process and database, however many wait.
SAFETY_POLL_SECONDS = 2.0
#: How long the hub's thread waits on the connection before it looks up again.
HUB_WAIT_SECONDS = 1.0
#: After the database could not be reached, how long before a process tries again.
RETRY_SECONDS = 5.0


class Hub:
    """One listening connection per process and database, shared by every consumer.

    Celery gives each thread a backend of its own, so each thread has a consumer; they
    all register here, and ``aio``'s waiters watch ids here. A daemon thread waits on the
    driver's listener and hands every notice to those waiting on its task; when the
    connection breaks, it tells them all (they read what they wait on) and reconnects.
    Every :data:`SAFETY_POLL_SECONDS` it reads which of all the ids waited on are ready,
    in one query, and hands those on as if notified.
    """

    def __init__(self, driver: BaseDriver) -> None:
        self.driver = driver
        self.listener = driver.ops.listener()
        self._consumers: weakref.WeakSet[Consumer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: Callbacks of async waiters by task id (``aio``), called from the hub's thread.
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        #: Why notices cannot reach this process, once the hub found out.
        self.unavailable: NotificationsUnavailable | None = None
        #: Before this ``time.monotonic()``, do not try to connect again.
        self._retry_at = 0.0

    def register(self, consumer: Consumer) -> None:
        """Add a consumer; connect first, in the caller, so a failure surfaces there.

        A process remembers failures: notices that cannot arrive (a pooler) for good, a
        database that cannot be reached for :data:`RETRY_SECONDS`, so threads sending
        tasks meanwhile do not each wait for a connection.
        """
        with self._lock:
            if self.unavailable is not None:
                raise self.unavailable
            if self._thread is None:
                if time.monotonic() < self._retry_at:
                    raise ListenerLost("the result database could not be reached just now")
                try:
                    self.listener.connect()
                except NotificationsUnavailable as exc:
                    logger.warning("NOTIFY is on, but clients will poll for results: %s", exc)
                    self.unavailable = exc
                    raise
                except ListenerLost:
                    self._retry_at = time.monotonic() + RETRY_SECONDS
                    raise
                self._thread = threading.Thread(
                    target=self._run, name="django_celery_results-notify", daemon=True
                )
                self._thread.start()
            self._consumers.add(consumer)

    def watch(self, task_id: str, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from the hub's thread) when ``task_id`` is notified or lost."""
        with self._lock:
            self._watchers.setdefault(task_id, set()).add(callback)

    def unwatch(self, task_id: str, callback: Callable[[], None]) -> None:
        """Stop calling ``callback`` for ``task_id``."""
        with self._lock:
            callbacks = self._watchers.get(task_id)
            if callbacks is not None:
                callbacks.discard(callback)
                if not callbacks:
                    del self._watchers[task_id]

    def close(self) -> None:
        """Stop the thread and close the connection (tests; a process exits without it)."""
        self._closing.set()
        thread = self._thread
        if thread is not None:
            thread.join(HUB_WAIT_SECONDS * 5)
        self.listener.close()

    def _run(self) -> None:
        try:
            self._listen()
        finally:
            connections[self.driver.alias].close()  # the safety poll's, in this thread

    def _listen(self) -> None:
        polled = time.monotonic()
        while not self._closing.is_set():
            if time.monotonic() - polled >= SAFETY_POLL_SECONDS:
                polled = time.monotonic()
                self._safety_poll()
            try:
                ids = self.listener.wait(min(HUB_WAIT_SECONDS, SAFETY_POLL_SECONDS))
            except NotificationsUnavailable as exc:
                logger.warning("NOTIFY is on, but clients will poll for results: %s", exc)
                self.unavailable = exc
                self._tell(lambda consumer: consumer.on_notifications_unavailable())
                return
            except Exception as exc:  # ListenerLost, or any surprise: no waiter may hang
                if isinstance(exc, ListenerLost):
                    logger.warning("result notifications: %s; reading results, reconnecting", exc)
                else:
                    logger.exception("result notifications: the listener failed; reconnecting")
                    self.listener.close()
                self._tell(lambda consumer: consumer.on_listener_lost())
                time.sleep(HUB_WAIT_SECONDS)  # the server may be down: do not spin
                continue
            if ids:
                self._tell(methodcaller("on_notified", ids), ids)

    def _safety_poll(self) -> None:
        """Hand on, as notified, the ids waited on whose rows are ready: one query."""
        with self._lock:
            consumers = list(self._consumers)
            waited = set(self._watchers)
        for consumer in consumers:
            waited |= consumer.subscribed()
        if not waited:
            return
        try:
            rows = self.driver.retrying.get_task_results(sorted(waited))
        except Exception as exc:  # the database is down, say: the next round tries again
            logger.warning("result notifications: the safety poll failed: %s", exc)
            with contextlib.suppress(Exception):
                connections[self.driver.alias].close()
            return
        ready = [i for i, row in rows.items() if row.status in states.READY_STATES]
        if ready:
            self._tell(methodcaller("on_notified", ready), ready)

    def _tell(
        self, action: Callable[[Consumer], object], task_ids: Iterable[str] | None = None
    ) -> None:
        """Run ``action`` on every consumer; call the watchers of ``task_ids`` (None: all)."""
        with self._lock:
            consumers = list(self._consumers)
            if task_ids is None:
                callbacks = [c for group in self._watchers.values() for c in group]
            else:
                callbacks = [c for i in task_ids for c in self._watchers.get(i, ())]
        for consumer in consumers:
            action(consumer)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # e.g. an event loop closed meanwhile: its waiter is gone
                logger.debug("result notifications: a waiter's callback failed", exc_info=True)


#: The hub of each database alias in this process (``os.getpid()`` guards forks).
_hubs: dict[str, Hub] = {}
_hubs_pid = os.getpid()
_hubs_lock = threading.Lock()
#: Listeners a forked child inherited: kept, never closed, since closing one would end
#: the parent's session on the socket both share.
_inherited: list[Any] = []


def hub_for(driver: BaseDriver) -> Hub:
    """Return this process's hub for the driver's alias."""
    global _hubs_pid
    with _hubs_lock:
        if _hubs_pid != os.getpid():  # forked: the parent's hubs are not ours
            _inherited.extend(hub.listener for hub in _hubs.values())
            _hubs.clear()
            _hubs_pid = os.getpid()
        hub = _hubs.get(driver.alias)
        if hub is None:
            hub = _hubs[driver.alias] = Hub(driver)
        return hub


def close_hubs() -> None:
    """Close every hub of this process (the test suite does, before dropping databases)."""
    with _hubs_lock:
        hubs = list(_hubs.values())
        _hubs.clear()
    for hub in hubs:
        hub.close()
