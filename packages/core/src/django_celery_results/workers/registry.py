"""The registry's rows: a worker's life registers, beats and stops, on the database's clock.

Every time is the database's (``clock.DatabaseNow()``, in UTC), never the worker's: a
worker whose clock is off still beats on time, and one row's age compares with another's.
A row is one life of a worker (``boot``): a restart under the same node name writes a new
row, so an earlier life stays until the lifeline has settled what it left running, and two
live workers under one node name (Celery only warns of those) each keep their own.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from .. import losses
from ..models import Worker
from .clock import DatabaseNow

logger = logging.getLogger(__name__)

#: A life silent this long (stopped, or gone without a word) is deleted by cleanup: node
#: names are often short-lived pod names, and the table must not grow with them.
FORGOTTEN_AFTER = timedelta(days=7)
#: Heartbeats a live worker may miss before it reads as silent (``status``).
MISSED_BEATS = 3


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
    #: This life's id (``workers.life``; a new one by default).
    boot: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Its seconds between heartbeats.
    interval: float = 15.0

    def columns(self) -> dict[str, Any]:
        """The row's columns but the life id and the times."""
        return {
            "hostname": self.hostname,
            "host": self.host,
            "pid": self.pid,
            "pool": self.pool,
            "concurrency": self.concurrency,
            "queues": json.dumps(sorted(self.queues, key=lambda q: q["queue"]), sort_keys=True),
            "software": json.dumps(self.software, sort_keys=True),
            "interval": self.interval,
        }


def register(info: WorkerInfo, alias: str) -> list[Worker]:
    """Write this life's row as started now; return the earlier lives that certainly ended.

    Those are the lives of the same node name not yet swept that :func:`ended` judges
    over, so that their orphans can be settled at once (a lone worker has no one else
    to sweep for it). The others are left to the lifeline's sweeps.
    """
    table = Worker._default_manager.db_manager(alias)
    now = DatabaseNow()
    started = {
        **info.columns(), "started_at": now, "heartbeat_at": now, "stopped_at": None,
        "writes_retried": 0, "writes_lost": 0,
    }  # fmt: skip
    if not table.filter(boot=info.boot).update(**started):
        try:
            with transaction.atomic(using=alias):
                table.create(boot=info.boot, **started)
        except IntegrityError:  # written by this life's other thread at the same moment
            table.filter(boot=info.boot).update(**started)
    earlier = (
        table.filter(hostname=info.hostname, swept_at__isnull=True)
        .exclude(boot=info.boot)
        .annotate(now=DatabaseNow())
    )
    return [row for row in earlier if ended(row, info, row.now)]


def ended(earlier: Worker, info: WorkerInfo, now: Any) -> bool:
    """Whether the life ``earlier`` recorded is over, as ``info``'s life starts.

    It is when it said so (a warm shutdown), when it missed :data:`MISSED_BEATS` of its
    own heartbeats, or when it ran on this host as a process that no longer runs.
    Otherwise it may be a twin, running now under the same node name.
    """
    if earlier.stopped_at is not None:
        return True
    if now - earlier.heartbeat_at > timedelta(seconds=MISSED_BEATS * earlier.interval):
        return True
    return earlier.host == info.host and earlier.pid != info.pid and not running(earlier.pid)


def running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it runs, as another user
        return True
    return True


def beat(info: WorkerInfo, alias: str, counts: losses.WriteCounts | None = None) -> bool:
    """One heartbeat: one statement (or the row written again if cleanup deleted it).

    Returns True once the heartbeat is written.
    """
    counts = counts or losses.COUNTS
    written = mine(info, alias).update(
        heartbeat_at=DatabaseNow(), stopped_at=None,
        writes_retried=counts.retried, writes_lost=counts.lost,
    )  # fmt: skip
    if not written:
        logger.warning("Worker registry: the row of %s was gone; registering again", info.hostname)
        register(info, alias)
    return True


def stop(info: WorkerInfo, alias: str) -> None:
    """Mark this life stopped now (a warm shutdown)."""
    mine(info, alias).update(heartbeat_at=DatabaseNow(), stopped_at=DatabaseNow())


def mine(info: WorkerInfo, alias: str) -> QuerySet[Worker]:
    """This life's row."""
    return Worker._default_manager.db_manager(alias).filter(boot=info.boot)


def prune(alias: str) -> int:
    """Delete the rows of lives silent for :data:`FORGOTTEN_AFTER`; return how many."""
    table = Worker._default_manager.db_manager(alias)
    deleted, _ = table.filter(heartbeat_at__lt=DatabaseNow() - FORGOTTEN_AFTER).delete()
    return deleted
