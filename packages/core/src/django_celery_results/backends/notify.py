"""Waiting on results by database notifications: Celery's async result consumer, for us."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from celery import states
from celery.backends.asynchronous import BaseResultConsumer
from celery.utils.log import get_logger
from django.db import DatabaseError, connections

from .. import store
from ..drivers import BaseDriver, ListenerLost, NotificationsUnavailable

logger = get_logger(__name__)

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
        self._consumers: weakref.WeakSet[NotifyResultConsumer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        #: Callbacks of async waiters by task id (``aio``), called from the hub's thread.
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        #: Why notices cannot reach this process, once the hub found out.
        self.unavailable: NotificationsUnavailable | None = None
        #: Before this ``time.monotonic()``, do not try to connect again.
        self._retry_at = 0.0

    def register(self, consumer: NotifyResultConsumer) -> None:
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
                self._tell(functools.partial(NotifyResultConsumer.on_notified, task_ids=ids), ids)

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
            self._tell(functools.partial(NotifyResultConsumer.on_notified, task_ids=ready), ready)

    def _tell(self, action: Any, task_ids: Iterable[str] | None = None) -> None:
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


#: Every consumer of this process, reset in a forked child.
_consumers: weakref.WeakSet[NotifyResultConsumer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for consumer in list(_consumers):
        consumer._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def close_hubs() -> None:
    """Close every hub of this process (the test suite does, before dropping databases)."""
    with _hubs_lock:
        hubs = list(_hubs.values())
        _hubs.clear()
    for hub in hubs:
        hub.close()


class NotifyResultConsumer(BaseResultConsumer):
    """Wake waiting ``AsyncResult.get()`` calls on the driver's notifications.

    Every task id a client waits on is subscribed to before the task is published
    (``on_task_call``) or when a wait starts, and read once after that, so a result
    committed before the listener heard of it is not missed. Notices name the finished
    task; its row is read then, through the usual driver read. The hub's safety poll
    catches a lost notice; after a reconnect every pending id is read again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Reentrant: AsyncResult.__del__ may unsubscribe from inside a locked section.
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._subscribed: set[str] = set()
        #: Ids notified since the last drain; ``None``: read every subscribed id.
        self._notified: set[str] | None = set()
        self._listening = False
        _consumers.add(self)

    # -- subscriptions -------------------------------------------------------------------

    def start(self, initial_task_id: str, **kwargs: Any) -> None:
        """Listen, and subscribe to the first task."""
        self.listen()
        self.consume_from(initial_task_id)

    @property
    def listening(self) -> bool:
        """Has this consumer joined its process's hub?"""
        return self._listening

    def listen(self) -> None:
        """Join the process's hub (raises ``NotificationsUnavailable`` when it cannot work)."""
        if not self._listening:
            hub_for(self.backend.notifying_driver()).register(self)
            self._listening = True

    def consume_from(self, task_id: str) -> None:
        """Subscribe to a task: its notices are read from now on."""
        with self._lock:
            self._subscribed.add(task_id)

    def subscribed(self) -> set[str]:
        """The ids this consumer waits on (a copy)."""
        with self._lock:
            return set(self._subscribed)

    def cancel_for(self, task_id: str) -> None:
        """Unsubscribe from a task."""
        with self._lock:
            self._subscribed.discard(task_id)

    def on_wait_for_pending(self, result: Any, **kwargs: Any) -> None:
        """Subscribe to what ``result`` waits on, then read it once: it may be stored.

        Subscribing here too covers results registered while notifications were not
        working yet (a group built before), and results a forked child inherited.
        """
        for task_id in _waited_ids(result):
            self.consume_from(task_id)
        for meta in result._iter_meta(**kwargs):
            if meta is not None:
                self.on_state_change(meta, None)

    # -- what the hub says ---------------------------------------------------------------

    def on_notified(self, task_ids: list[str]) -> None:
        """Note the notified ids this consumer waits on, and wake its waiter."""
        with self._lock:
            wanted = self._subscribed.intersection(task_ids)
            if wanted:
                if self._notified is not None:
                    self._notified |= wanted
                self._arrived.notify_all()

    def on_listener_lost(self) -> None:
        """Notices may have been lost: the next drain reads every subscribed id."""
        with self._lock:
            self._notified = None
            self._arrived.notify_all()

    def on_notifications_unavailable(self) -> None:
        """Notices stopped reaching this process: poll from now on."""
        self.backend._notify_broken = True
        self.on_listener_lost()

    # -- waiting -------------------------------------------------------------------------

    def drain_events(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for notices; read the results they name."""
        wait = 1.0 if timeout is None else timeout
        with self._lock:
            if self._notified == set():
                self._arrived.wait(wait)
            ids, self._notified = self._notified, set()
            if ids is None or self.backend._notify_broken:
                ids = set(self._subscribed)  # notices were lost, or stopped: read them all
        try:
            self._read(ids)
        except DatabaseError as exc:
            # Not an OSError: Celery's gevent drainer would stop for good on it.
            logger.warning("result notifications: reading results failed: %s", exc)
            with self._lock:
                self._notified = None  # read them all next time

    def _read(self, task_ids: Iterable[str]) -> None:
        """Hand the ready results among ``task_ids`` we wait on to their waiters."""
        with self._lock:
            wanted = sorted(self._subscribed.intersection(task_ids))
        if not wanted:
            return
        backend = self.backend
        driver = backend._driver(backend.TaskModel, write=False)
        for task_id, row in store.read_task_results(driver, wanted).items():
            if row.status in states.READY_STATES:
                self.on_state_change(backend._meta_from_row(row), None)
                self.cancel_for(task_id)

    # -- processes -----------------------------------------------------------------------

    def on_after_fork(self) -> None:
        """Start afresh in a forked child (the hub is the parent's: see :func:`hub_for`)."""
        # A thread of the parent may have held the lock: the child starts with a new one.
        self._lock = threading.RLock()
        self._arrived = threading.Condition(self._lock)
        self._subscribed = set()
        self._notified = set()
        self._listening = False


def _waited_ids(result: Any) -> list[str]:
    """The task ids a wait on ``result`` needs: its own, or a group's members'."""
    children = getattr(result, "results", None)
    if children is None:
        return [result.id]
    return [child.id for child in children]
