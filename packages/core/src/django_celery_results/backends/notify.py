"""Waiting on results by database notifications: Celery's async result consumer, for us.

:class:`NotifyWaits` is the part of :class:`~.database.DatabaseBackend` that decides how
a client waits: woken by the driver's notifications where ``NOTIFY`` works (Celery's
``AsyncBackendMixin``, fed by :class:`NotifyResultConsumer`), else by Celery's polls.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from celery._state import task_join_will_block
from celery.backends.asynchronous import AsyncBackendMixin, BaseResultConsumer
from celery.utils.log import get_logger
from django.db import DatabaseError
from django.utils.functional import cached_property

from ..drivers import BaseDriver, ListenerLost, NotificationsUnavailable, driver_for
from .hub import hub_for

logger = get_logger(__name__)


class NotifyWaits(AsyncBackendMixin):
    """The waiting methods of :class:`~.database.DatabaseBackend` (a Celery backend).

    Each of Celery's waiting methods asks :meth:`notifying`: when it says yes, Celery's
    ``AsyncBackendMixin`` waits on the consumer; when not, the polling version of the
    class after it (``super(AsyncBackendMixin, self)``: Celery's ``BaseDictBackend``).
    Needs the backend's ``app``, ``accept``, ``TaskModel`` and :meth:`ready_results`.
    """

    app: Any
    accept: Any
    TaskModel: type[Any]
    _pending_results: Any
    _pending_messages: Any
    #: Set when notifications proved unable to reach this process: poll from then on.
    _notify_broken = False

    def ready_results(self, task_ids: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(task_id, meta)`` of the ready results among ``task_ids`` (the backend's)."""
        raise NotImplementedError

    @cached_property
    def result_consumer(self) -> NotifyResultConsumer:
        """Celery's async result consumer, fed by the driver's notifications."""
        return NotifyResultConsumer(
            self, self.app, self.accept, self._pending_results, self._pending_messages
        )

    def notifying_driver(self) -> BaseDriver:
        """The driver of the database workers write (and so notify) results on."""
        return driver_for(self.TaskModel)

    @property
    def notifications_stopped(self) -> bool:
        """Did notifications prove unable to reach this process?"""
        return self._notify_broken

    def stop_notifying(self) -> None:
        """Poll from now on: notices cannot reach this process (a pooler, say)."""
        self._notify_broken = True

    def notifying(self) -> bool:
        """Do waits here go through notifications rather than polls?

        With ``NOTIFY`` on a driver that can, outside tasks (a chord join inside a worker
        keeps polling), once the process's listener has proved that notices reach it.
        Where they cannot (a transaction-mode pooler), clients poll; the hub logs why,
        once. Never raises: sending a task must not fail because of notifications.
        """
        if self._notify_broken or task_join_will_block():
            return False
        try:
            if not self.notifying_driver().notify:
                return False
            self.result_consumer.listen()
        except NotificationsUnavailable:
            self._notify_broken = True
            return False
        except (ListenerLost, DatabaseError) as exc:
            logger.debug("result notifications: cannot listen now (%s); polling", exc)
            return False
        except Exception:
            logger.exception("result notifications failed; polling")
            self._notify_broken = True
            return False
        return True

    @property
    def is_async(self) -> bool:
        """True while waits go through notifications (see :meth:`notifying`)."""
        return self.notifying()

    def add_pending_result(
        self, result: Any, weak: bool = False, start_drainer: bool = True
    ) -> Any:
        """Register a result being waited on (with notifications: subscribe to it)."""
        if self.notifying():
            return super().add_pending_result(result, weak=weak, start_drainer=start_drainer)
        return super(AsyncBackendMixin, self).add_pending_result(result, weak=weak)

    def add_pending_results(self, results: Any, weak: bool = False) -> Any:
        """Register results being waited on (with notifications: subscribe to them)."""
        if self.notifying():
            return super().add_pending_results(results, weak=weak)
        return super(AsyncBackendMixin, self).add_pending_results(results, weak=weak)

    def remove_pending_result(self, result: Any) -> Any:
        """Stop waiting on a result.

        ``AsyncResult.__del__`` calls it, whenever the garbage collector runs, even in the
        middle of a lookup holding a lock: so it looks nothing up and connects nowhere.
        """
        consumer = self.__dict__.get("result_consumer")  # only if it was ever made
        if consumer is not None and consumer.listening and not self._notify_broken:
            return super().remove_pending_result(result)
        return super(AsyncBackendMixin, self).remove_pending_result(result)

    def on_result_fulfilled(self, result: Any) -> None:
        """Unsubscribe from a result that arrived."""
        self.result_consumer.cancel_for(result.id)

    def wait_for_pending(
        self, result: Any, callback: Any = None, propagate: bool = True, **kwargs: Any
    ) -> Any:
        """Wait for a result: woken by notifications, or polling every ``interval``."""
        if self.notifying():
            kwargs.pop("interval", None)  # notices, not polls: no interval to keep
            return super().wait_for_pending(
                result, callback=callback, propagate=propagate, **kwargs
            )
        return super(AsyncBackendMixin, self).wait_for_pending(
            result, callback=callback, propagate=propagate, **kwargs
        )

    def iter_native(self, result: Any, *args: Any, **kwargs: Any) -> Any:
        """Yield a group's results as they arrive (``GroupResult.join_native``)."""
        if self.notifying():
            kwargs.pop("interval", None)
            return super().iter_native(result, *args, **kwargs)
        return super(AsyncBackendMixin, self).iter_native(result, *args, **kwargs)


#: Every consumer of this process, reset in a forked child.
_consumers: weakref.WeakSet[NotifyResultConsumer] = weakref.WeakSet()


def forget_in_child() -> None:
    """Start every consumer afresh in a forked child (``lifecycle`` calls it after a fork)."""
    for consumer in list(_consumers):
        consumer._after_fork()  # Celery's own reset, which calls our on_after_fork


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
        self.backend.stop_notifying()
        self.on_listener_lost()

    # -- waiting -------------------------------------------------------------------------

    def drain_events(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for notices; read the results they name."""
        wait = 1.0 if timeout is None else timeout
        with self._lock:
            if self._notified == set():
                self._arrived.wait(wait)
            ids, self._notified = self._notified, set()
            if ids is None or self.backend.notifications_stopped:
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
        for task_id, meta in self.backend.ready_results(wanted):
            self.on_state_change(meta, None)
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
