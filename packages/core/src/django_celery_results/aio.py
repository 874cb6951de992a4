"""Await task and group results from async code (ASGI views, websocket consumers).

``await aio.wait(result)`` is ``result.get()`` for a coroutine: the same timeout and
propagate semantics, but no thread is held while the task runs. With ``NOTIFY`` on
PostgreSQL it wakes on the notification of the task's commit (through the process's one
listening connection); elsewhere it reads the row every ``interval`` seconds, sleeping
with ``asyncio.sleep`` in between. Each read runs through ``sync_to_async``, as Django's
own ORM calls from async code do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from celery import states
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult, GroupResult

from .backends.hub import hub_for
from .backends.notify import NotifyWaits

__all__ = ["wait", "wait_group"]

#: Longest an async waiter sleeps without reading, with notifications.
RECHECK_SECONDS = 30.0


async def wait(
    result: AsyncResult,
    *,
    timeout: float | None = None,
    propagate: bool = True,
    interval: float = 0.5,
) -> Any:
    """Return the task's result once it is ready, as ``AsyncResult.get()`` would.

    Raises ``celery.exceptions.TimeoutError`` after ``timeout`` seconds, and the task's
    exception when it failed (``propagate=False`` returns the exception instead).
    ``interval`` is the pause between reads where notifications are not available.
    """
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    woken = asyncio.Event()

    def wake() -> None:  # called from the hub's thread
        loop.call_soon_threadsafe(woken.set)

    with _notified(result, wake) as notifying:
        if notifying is None:
            notifying = await sync_to_async(result.backend.notifying)()
        while True:
            meta = await sync_to_async(result.backend.get_task_meta)(result.id, cache=False)
            if meta["status"] in states.READY_STATES:
                value = meta["result"]
                if propagate and meta["status"] in states.PROPAGATE_STATES:
                    raise value
                return value
            # Woken by the hub (a notice, its safety poll, a reconnect); the cap only
            # matters if the hub's thread died.
            pause = RECHECK_SECONDS if notifying else interval
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise CeleryTimeoutError("The operation timed out.")
                pause = min(pause, remaining)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(woken.wait(), pause)
            woken.clear()


async def wait_group(
    result: GroupResult,
    *,
    timeout: float | None = None,
    propagate: bool = True,
    interval: float = 0.5,
) -> list[Any]:
    """Return the results of a group's tasks, in order, as ``GroupResult.get()`` would."""
    return list(
        await asyncio.gather(
            *(
                wait(child, timeout=timeout, propagate=propagate, interval=interval)
                for child in result.results
            )
        )
    )


@contextlib.contextmanager
def _notified(result: AsyncResult, callback: Callable[[], None]) -> Iterator[bool | None]:
    """Watch ``result``'s id on the process's hub while the block runs.

    Yields True when watching (the hub is already listening), None when it is not known
    yet whether notifications work (the caller asks, off the event loop).
    """
    backend = result.backend
    driver = backend.notifying_driver() if isinstance(backend, NotifyWaits) else None
    if driver is None or not driver.notify:
        yield False
        return
    hub = hub_for(driver)
    hub.watch(result.id, callback)
    try:
        yield None
    finally:
        hub.unwatch(result.id, callback)
