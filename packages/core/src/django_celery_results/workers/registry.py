"""The registry's rows: a worker registers, beats and stops, on the database's clock.

Every time is the database's (``Now()``), never the worker's: a worker whose clock is off
still beats on time, and one row's age compares with another's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Now

from ..models import Worker

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
    queues: tuple[str, ...] = ()
    software: dict[str, str] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        """The row's columns but the node name and the times."""
        return {
            "host": self.host,
            "pid": self.pid,
            "pool": self.pool,
            "concurrency": self.concurrency,
            "queues": json.dumps(sorted(self.queues)),
            "software": json.dumps(self.software, sort_keys=True),
        }


def register(info: WorkerInfo, alias: str) -> None:
    """Write the worker's row as started now (a node name has one row: the latest start)."""
    table = Worker._default_manager.db_manager(alias)
    started = {**info.columns(), "started_at": Now(), "heartbeat_at": Now(), "stopped_at": None}
    with transaction.atomic(using=alias):
        if table.filter(hostname=info.hostname).update(**started):
            return
        try:
            with transaction.atomic(using=alias):
                table.create(hostname=info.hostname, **started)
        except IntegrityError:  # registered by another process at the same moment
            table.filter(hostname=info.hostname).update(**started)


def beat(info: WorkerInfo, alias: str) -> None:
    """One heartbeat: one statement, or the row written again if it is not this worker's."""
    if _mine(info, alias).update(heartbeat_at=Now(), stopped_at=None):
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
    """The row as this process wrote it (not a twin's under the same node name)."""
    table = Worker._default_manager.db_manager(alias)
    return table.filter(hostname=info.hostname, host=info.host, pid=info.pid)


def prune(alias: str) -> int:
    """Delete the rows of workers silent for :data:`FORGOTTEN_AFTER`; return how many."""
    table = Worker._default_manager.db_manager(alias)
    deleted, _ = table.filter(heartbeat_at__lt=Now() - FORGOTTEN_AFTER).delete()
    return deleted
