"""This worker's life: the id its STARTED rows carry, so the lifeline knows whose they are.

A worker's node name outlives it (a restart reuses it; Celery lets two workers share it),
so the lifeline tells lives apart by an id drawn at each start (``worker_init``, before
the pool forks: every process of the worker inherits it). A STARTED row stores it in
``lifeline``, with `` acks_late`` when the broker redelivers the task if the worker is lost.
A row without it (an unregistered or upstream worker, a row from before the upgrade) is
never settled.
"""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

#: This process's life id (None: not a registered worker's process).
BOOT: str | None = None

#: The ``lifeline`` suffixes: the broker redelivers the task; the lifeline waits for it.
ACKS_LATE = "acks_late"
AWAITING = "awaiting"


class Lifeline(NamedTuple):
    """A STARTED row's ``lifeline``, read."""

    boot: str
    #: "" for a task the broker does not redeliver, else :data:`ACKS_LATE` or :data:`AWAITING`.
    mark: str

    def __str__(self) -> str:
        return f"{self.boot} {self.mark}" if self.mark else self.boot


def begin() -> str:
    """Draw this worker's life id (at its start, in the main process)."""
    global BOOT
    BOOT = uuid.uuid4().hex
    return BOOT


def end() -> None:
    """Forget the life id (tests)."""
    global BOOT
    BOOT = None


def marker(app: Any, request: Any) -> str | None:
    """The ``lifeline`` of a STARTED write in this process (None outside a registered worker)."""
    if BOOT is None:
        return None
    return str(Lifeline(BOOT, ACKS_LATE if acks_late(app, request) else ""))


def acks_late(app: Any, request: Any) -> bool:
    """Whether the running task acknowledges its message only once it ends."""
    name = getattr(request, "task", None)
    task = app.tasks.get(name) if isinstance(name, str) else None
    return getattr(task, "acks_late", False) is True


def parse(value: str | None) -> Lifeline | None:
    """Read a ``lifeline`` column (None for a value this version did not write)."""
    if not value:
        return None
    boot, _, mark = value.partition(" ")
    if len(boot) != 32 or mark not in ("", ACKS_LATE, AWAITING):
        return None
    return Lifeline(boot, mark)
