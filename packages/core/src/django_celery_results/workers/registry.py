"""The registry's rows: a worker registers, beats and stops, on the database's clock.

Every time is the database's (``Now()``), never the worker's: a worker whose clock is off
still beats on time, and one row's age compares with another's.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Now

from .. import losses
from ..models import Worker
from .status import silent_after

logger = logging.getLogger(__name__)

#: A worker silent this long (stopped, or gone without a word) is deleted by cleanup: node
#: names are often short-lived pod names, and the table must not grow with them.
FORGOTTEN_AFTER = timedelta(days=7)


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself when it registers."""

    hostname: str
    host: str
    pid: int
    pool: str = ""
    concurrency: int | None = None
    #: The queues consumed: ``{"queue", "exchange", "type", "routing_key"}`` each.
    queues: tuple[dict[str, str], ...] = ()
    software: dict[str, str] = field(default_factory=dict)
    #: This life's id (``workers.life``).
    boot: str = ""

    def columns(self) -> dict[str, Any]:
        """The row's columns but the node name and the times."""
        return {
            "host": self.host,
            "pid": self.pid,
            "pool": self.pool,
            "concurrency": self.concurrency,
            "queues": json.dumps(sorted(self.queues, key=lambda q: q["queue"]), sort_keys=True),
            "software": json.dumps(self.software, sort_keys=True),
            "boot": self.boot,
        }


def register(info: WorkerInfo, alias: str) -> Worker | None:
    """Write the worker's row as started now (a node name has one row: its latest start).

    Returns the row of an earlier life of this node name that is gone (see
    :func:`earlier_life_gone`), as it was, so that its orphans can be settled; None when
    there was none, or when it may still run (a twin under the same name).
    """
    table = Worker._default_manager.db_manager(alias)
    started = {
        **info.columns(), "started_at": Now(), "heartbeat_at": Now(), "stopped_at": None,
        "writes_retried": 0, "writes_lost": 0,
    }  # fmt: skip
    with transaction.atomic(using=alias):
        earlier = (
            table.select_for_update().filter(hostname=info.hostname).annotate(now=Now()).first()
        )
        if earlier is not None:
            table.filter(pk=earlier.pk).update(**started)
            return earlier if earlier_life_gone(earlier, info, earlier.now) else None
        try:
            with transaction.atomic(using=alias):
                table.create(hostname=info.hostname, **started)
        except IntegrityError:  # registered by another process at the same moment
            table.filter(hostname=info.hostname).update(**started)
        return None


def earlier_life_gone(earlier: Worker, info: WorkerInfo, now: datetime) -> bool:
    """Whether the life ``earlier`` recorded has ended, as ``info``'s worker starts.

    It has when it said so (a warm shutdown), when its heartbeats stopped, or when it ran
    on this host as a process that no longer runs (or as this very process: a container
    restarted with the same pid). Otherwise a twin may be running under the same node
    name (Celery only warns about those), and its tasks are not ours to settle.
    """
    if not earlier.boot or earlier.boot == info.boot:
        return False
    if earlier.stopped_at is not None or now - earlier.heartbeat_at > silent_after():
        return True
    return earlier.host == info.host and (earlier.pid == info.pid or not running(earlier.pid))


def running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it runs, as another user
        return True
    return True


def beat(info: WorkerInfo, alias: str, counts: losses.WriteCounts | None = None) -> None:
    """One heartbeat: one statement, or the row written again if it is not this worker's."""
    counts = counts or losses.COUNTS
    written = _mine(info, alias).update(
        heartbeat_at=Now(), stopped_at=None,
        writes_retried=counts.retried, writes_lost=counts.lost,
    )  # fmt: skip
    if written:
        return
    # Pruned by cleanup, or taken by another worker started under the same node name.
    logger.warning(
        "Worker registry: the row of %s was gone or another process's; registering again",
        info.hostname,
    )
    register(info, alias)


def stop(info: WorkerInfo, alias: str) -> None:
    """Mark the worker stopped now (a warm shutdown)."""
    _mine(info, alias).update(heartbeat_at=Now(), stopped_at=Now())


def _mine(info: WorkerInfo, alias: str) -> QuerySet[Worker]:
    """The row as this life wrote it (not a twin's under the same node name)."""
    table = Worker._default_manager.db_manager(alias)
    return table.filter(hostname=info.hostname, boot=info.boot)


def prune(alias: str) -> int:
    """Delete the rows of workers silent for :data:`FORGOTTEN_AFTER`; return how many."""
    table = Worker._default_manager.db_manager(alias)
    deleted, _ = table.filter(heartbeat_at__lt=Now() - FORGOTTEN_AFTER).delete()
    return deleted
