"""The lifeline: a lost worker's running tasks are settled, so no row says STARTED forever.

A sweep, done by one worker at a time (``election``) after its heartbeat:

1. A registered worker whose heartbeats stopped more than ``LIFELINE_GRACE`` ago (by
   the database's clock) is gone. Each STARTED row its life wrote (``lifeline``, see
   ``life``) is settled: FAILURE, with Celery's ``WorkerLostError`` saying which worker was
   lost and when. A row no registered life wrote is never settled.
2. An ``acks_late`` task's message goes back to the broker when its worker is lost, and
   is delivered again; its row is marked awaiting redelivery instead (same state), and
   settled only if no run started within ``LIFELINE_REDELIVERY_GRACE`` of the mark.
3. A worker that starts settles its own earlier life's orphans at once (``registry``).
4. With ``SETTLE_UNCONSUMED`` (and ``TRACK_PENDING``), a PENDING row older than
   ``UNCONSUMED_AFTER`` whose routing key no live worker consumes (``routing``) is
   settled as FAILURE (:class:`Unconsumed`); otherwise such rows are only flagged.

Every settlement is one conditional ``UPDATE`` (the row still STARTED, with the same
``lifeline``): two sweeps at once settle each row once. Each is logged with its task id
and counted (``Counter`` rows ``lifeline.settled`` and ``lifeline.awaiting``). An invalid
lifeline setting settles nothing, and says so in the worker's log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import states
from celery.exceptions import WorkerLostError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from ..conf import app_settings, lifeline_problems
from ..failures import exception_type_of
from ..history.backlog import HORIZON
from ..models import Counter, TaskResult, Worker
from . import election, life
from .routing import Consumers
from .status import statuses

logger = logging.getLogger(__name__)

#: The election's duty name.
DUTY = "lifeline"
#: Rows one sweep reads at most per kind: the rest wait for the next sweep.
MAX_ROWS = 1000
#: Broker transports that redeliver an unacknowledged message only after a visibility
#: timeout, and that timeout's default (kombu's).
VISIBILITY_TIMEOUTS = {"redis": 3600.0, "rediss": 3600.0, "sentinel": 3600.0, "sqs": 30.0}
SETTLED, AWAITING = "lifeline.settled", "lifeline.awaiting"
UNCONSUMED = "lifeline.unconsumed"


class Unconsumed(Exception):
    """The FAILURE of a PENDING task no live worker consumes (``SETTLE_UNCONSUMED``)."""


@dataclass
class Sweep:
    """What one sweep did."""

    settled: int = 0
    awaiting: int = 0
    unconsumed: int = 0


def refused() -> bool:
    """Whether the lifeline settles nothing now (an invalid setting), logged once a process."""
    problems = lifeline_problems()
    for problem in problems:
        if problem not in _logged:
            _logged.add(problem)
            logger.error(
                "The lifeline settles nothing: %s Fix it (docs/settings.md); the lifeline "
                "stays off until then.",
                problem,
            )
    return bool(problems)


_logged: set[str] = set()


def sweep(app: Any, alias: str, holder: str) -> Sweep | None:
    """Settle the running tasks of gone workers, if elected; None when not (or refused)."""
    grace = app_settings().LIFELINE_GRACE
    if not grace or refused():
        return None
    term = timedelta(seconds=3 * app_settings().WORKER_HEARTBEAT) + grace
    with election.elected(DUTY, alias, holder, term) as chosen:
        if not chosen:
            return None
        gone = gone_workers(alias, grace)
        done = settle_lives(app, alias, gone)
        done.settled += settle_overdue(app, alias, redelivery_grace(app))
        if app_settings().SETTLE_UNCONSUMED and app_settings().TRACK_PENDING:
            done.unconsumed = settle_unconsumed(app, alias)
        return done


def gone_workers(alias: str, grace: timedelta) -> dict[str, Worker]:
    """The registered lives whose last heartbeat is older than ``grace``, by boot id."""
    rows = (
        Worker._default_manager.db_manager(alias)
        .filter(heartbeat_at__lt=Now() - grace)
        .exclude(boot="")
    )
    return {row.boot: row for row in rows}


def settle_lives(app: Any, alias: str, lives: dict[str, Worker]) -> Sweep:
    """Settle (or mark awaiting redelivery) the STARTED rows the ``lives`` wrote."""
    done = Sweep()
    if not lives:
        return done
    marks = [str(life.Lifeline(boot, mark)) for boot in lives for mark in ("", life.ACKS_LATE)]
    rows = _started(alias).filter(lifeline__in=marks).values_list("task_id", "lifeline")
    now = timezone.now()
    for task_id, value in rows[:MAX_ROWS]:
        line = life.parse(value)
        if line is None:
            continue
        worker = lives[line.boot]
        if line.mark == life.ACKS_LATE:
            awaiting = str(life.Lifeline(line.boot, life.AWAITING))
            if (
                _started(alias)
                .filter(task_id=task_id, lifeline=value)
                .update(lifeline=awaiting, date_done=now)
            ):
                done.awaiting += 1
                logger.warning(
                    "Lifeline: task %s awaits redelivery: worker %s was lost (last heartbeat "
                    "%s) and the broker delivers acks_late tasks again",
                    task_id, worker.hostname, _when(worker.heartbeat_at),
                )  # fmt: skip
            continue
        message = (
            f"Worker {worker.hostname} (pid {worker.pid} on {worker.host}) was lost: its last "
            f"heartbeat was at {_when(worker.heartbeat_at)}. Settled by the lifeline."
        )
        if settle_lost(app, alias, task_id, value, message, now):
            done.settled += 1
    count(alias, SETTLED, done.settled)
    count(alias, AWAITING, done.awaiting)
    return done


def settle_overdue(app: Any, alias: str, grace: timedelta) -> int:
    """Settle the rows awaiting a redelivery that did not start within ``grace``."""
    now = timezone.now()
    rows = (
        _started(alias)
        .filter(lifeline__endswith=f" {life.AWAITING}", date_done__lt=now - grace)
        .values_list("task_id", "lifeline", "date_done")
    )
    settled = 0
    for task_id, value, since in rows[:MAX_ROWS]:
        message = (
            f"The task's worker was lost and the broker did not deliver it again within "
            f"{grace.total_seconds():g} s (awaited since {_when(since)}). Settled by the "
            "lifeline."
        )
        settled += settle_lost(app, alias, task_id, value, message, now)
    count(alias, SETTLED, settled)
    return settled


def settle_unconsumed(app: Any, alias: str) -> int:
    """Settle the PENDING rows no live worker consumes (see the module), as FAILURE."""
    consumers = Consumers.of(statuses(alias))
    if not consumers.judges:
        return 0
    now = timezone.now()
    table = TaskResult._default_manager.db_manager(alias)
    old = table.filter(
        status=states.PENDING,
        date_done__gte=now - HORIZON,
        date_done__lt=now - app_settings().UNCONSUMED_AFTER,
    )
    settled = 0
    for key in old.order_by().values_list("queue", flat=True).distinct():
        if not key or not consumers.unconsumed(key):
            continue
        error = Unconsumed(
            f"No live worker consumes the routing key {key!r}: the task was sent and no "
            "worker could take it. Settled by the lifeline (SETTLE_UNCONSUMED)."
        )
        for task_id in old.filter(queue=key).values_list("task_id", flat=True)[:MAX_ROWS]:
            pending = table.filter(task_id=task_id, status=states.PENDING)
            settled += settle(app, pending, task_id, error, now)
    count(alias, UNCONSUMED, settled)
    return settled


def settle(app: Any, rows: Any, task_id: str, error: Exception, now: datetime) -> bool:
    """Store ``error`` as the task's FAILURE if ``rows`` (the row as it was read) matches."""
    backend = app.backend
    prepared = backend.encode_result(error, states.FAILURE)
    content_type, content_encoding, result = backend.encode_content(prepared)
    changed = rows.update(
        status=states.FAILURE, result=result, content_type=content_type,
        content_encoding=content_encoding, traceback=None, date_done=now,
        exception_type=exception_type_of(prepared, states.FAILURE), lifeline=None,
        rolled_up=False,  # the history counts the row again
    )  # fmt: skip
    if changed:
        logger.error("Lifeline: task %s settled as FAILURE: %s", task_id, error)
    return bool(changed)


def settle_lost(
    app: Any, alias: str, task_id: str, lifeline: str, message: str, now: datetime
) -> bool:
    """Settle a lost worker's task (``WorkerLostError``) if it still runs as it was read."""
    rows = _started(alias).filter(task_id=task_id, lifeline=lifeline)
    return settle(app, rows, task_id, WorkerLostError(message), now)


def redelivery_grace(app: Any) -> timedelta:
    """How long a lost worker's ``acks_late`` task may take to start again.

    ``LIFELINE_REDELIVERY_GRACE``, or the grace plus the broker's visibility timeout
    (Redis and SQS redeliver only after it; RabbitMQ at once, when the connection drops).
    """
    settings = app_settings()
    if settings.LIFELINE_REDELIVERY_GRACE is not None:
        return settings.LIFELINE_REDELIVERY_GRACE
    transport = str(app.conf.broker_url or "").partition("://")[0].partition("+")[0]
    timeout = VISIBILITY_TIMEOUTS.get(transport, 0.0)
    if timeout:
        options = app.conf.broker_transport_options or {}
        timeout = float(options.get("visibility_timeout", timeout))
    return settings.LIFELINE_GRACE + timedelta(seconds=timeout)


def count(alias: str, name: str, amount: int) -> None:
    """Add ``amount`` to the cluster's counter ``name``."""
    if not amount:
        return
    table = Counter._default_manager.db_manager(alias)
    if table.filter(name=name).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic(using=alias):
            table.create(name=name, value=amount)
    except IntegrityError:  # created by another sweep at the same moment
        table.filter(name=name).update(value=F("value") + amount)


def _started(alias: str) -> Any:
    return TaskResult._default_manager.db_manager(alias).filter(status=states.STARTED)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
