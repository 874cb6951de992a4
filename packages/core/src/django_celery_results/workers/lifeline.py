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
from django.utils import timezone

from ..conf import app_settings, lifeline_problems
from ..failures import exception_type_of
from ..history.backlog import HORIZON
from ..models import Counter, TaskResult, Worker
from . import election, life
from .clock import DatabaseNow
from .registry import MISSED_BEATS
from .routing import Consumers, unconsumed_keys
from .status import statuses

logger = logging.getLogger(__name__)

#: The election's duty name.
DUTY = "lifeline"
#: Rows one sweep reads at most per kind: the rest wait for the next sweep.
MAX_ROWS = 1000
#: Broker transports that redeliver an unacknowledged message only after a visibility
#: timeout, and that timeout's default (kombu's).
VISIBILITY_TIMEOUTS = {"redis": 3600.0, "rediss": 3600.0, "sentinel": 3600.0, "sqs": 1800.0}
#: Broker transports that redeliver a lost consumer's unacknowledged messages at once.
IMMEDIATE_REDELIVERY = frozenset({"amqp", "amqps", "pyamqp", "librabbitmq"})
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
        done = settle_lives(app, alias, gone_lives(alias, grace), redelivery_grace(app))
        if app_settings().SETTLE_UNCONSUMED and app_settings().TRACK_PENDING:
            done.unconsumed = settle_unconsumed(app, alias)
        return done


def gone_lives(alias: str, grace: timedelta) -> dict[str, Worker]:
    """The lives not yet swept whose heartbeats stopped, by boot id.

    Gone: the last heartbeat is older than ``grace`` and than :data:`MISSED_BEATS` of the
    life's own heartbeat intervals (a worker may beat less often than the sweeper does).
    """
    rows = (
        Worker._default_manager.db_manager(alias)
        .filter(swept_at__isnull=True, heartbeat_at__lt=DatabaseNow() - grace)
        .annotate(now=DatabaseNow())
    )
    return {
        row.boot: row
        for row in rows
        if row.now - row.heartbeat_at > timedelta(seconds=MISSED_BEATS * row.interval)
    }


def settle_lives(
    app: Any, alias: str, lives: dict[str, Worker], redelivery: timedelta | None = None
) -> Sweep:
    """Settle what the ``lives`` left running; mark their ``acks_late`` tasks awaiting.

    A row awaiting redelivery for longer than ``redelivery`` is settled too (None: never,
    the broker's redelivery is not known). A life with nothing left is marked swept.
    """
    done = Sweep()
    if not lives:
        return done
    marks = [
        str(life.Lifeline(boot, mark))
        for boot in lives
        for mark in ("", life.ACKS_LATE, life.AWAITING)
    ]
    columns = ("task_id", "status", "lifeline", "worker", "date_done")
    rows = list(running(alias).filter(lifeline__in=marks).values_list(*columns)[: MAX_ROWS + 1])
    now = timezone.now()
    left = set()
    for task_id, status, value, worker_name, since in rows[:MAX_ROWS]:
        line = life.parse(value)
        if line is None or line.boot not in lives:
            continue
        lost = lives[line.boot]
        if worker_name and worker_name != lost.hostname:
            continue  # run again by a worker that leaves the lifeline column as it is
        if line.mark == life.ACKS_LATE:
            left.add(line.boot)
            awaiting = str(life.Lifeline(line.boot, life.AWAITING))
            if _as_read(alias, task_id, status, value).update(lifeline=awaiting, date_done=now):
                done.awaiting += 1
                logger.warning(
                    "Lifeline: task %s awaits redelivery: worker %s was lost (last heartbeat "
                    "%s) and the broker delivers acks_late tasks again",
                    task_id, lost.hostname, _when(lost.heartbeat_at),
                )  # fmt: skip
            continue
        if line.mark == life.AWAITING:
            if redelivery is None or since > now - redelivery:
                left.add(line.boot)
                continue
            message = (
                f"Worker {lost.hostname} was lost and the broker did not deliver the task "
                f"again within {redelivery.total_seconds():g} s (awaited since "
                f"{_when(since)}). Settled by the lifeline."
            )
        else:
            message = (
                f"Worker {lost.hostname} (pid {lost.pid} on {lost.host}) was lost: its last "
                f"heartbeat was at {_when(lost.heartbeat_at)}. Settled by the lifeline."
            )
        rows_as_read = _as_read(alias, task_id, status, value)
        done.settled += settle(app, rows_as_read, task_id, WorkerLostError(message), now)
    if len(rows) <= MAX_ROWS:  # every row of these lives was read: the others are done
        swept = [boot for boot in lives if boot not in left]
        Worker._default_manager.db_manager(alias).filter(boot__in=swept).update(
            swept_at=DatabaseNow()
        )
    count(alias, SETTLED, done.settled)
    count(alias, AWAITING, done.awaiting)
    return done


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
    keys, _partial = unconsumed_keys(old, consumers)
    for key in keys:
        error = Unconsumed(
            f"No live worker consumes the routing key {key!r}: the task was sent and no "
            "worker could take it. Settled by the lifeline (SETTLE_UNCONSUMED)."
        )
        for task_id in old.filter(queue=key).values_list("task_id", flat=True)[:MAX_ROWS]:
            pending = table.filter(task_id=task_id, status=states.PENDING)
            settled += settle(app, pending, task_id, error, now)
            if settled >= MAX_ROWS:  # the rest wait for the next sweep
                break
        if settled >= MAX_ROWS:
            break
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


def redelivery_grace(app: Any) -> timedelta | None:
    """How long a lost worker's ``acks_late`` task may take to start again; None: unknown.

    ``LIFELINE_REDELIVERY_GRACE``, or the grace plus the broker's visibility timeout:
    RabbitMQ redelivers at once (the connection dropped), Redis and SQS only after their
    visibility timeout. For another transport it is not known, and a row awaiting its
    redelivery is never settled unless the setting says how long to wait.
    """
    settings = app_settings()
    if settings.LIFELINE_REDELIVERY_GRACE is not None:
        return settings.LIFELINE_REDELIVERY_GRACE
    url = app.conf.broker_url
    if isinstance(url, list | tuple):  # failover URLs: the first one's transport
        url = url[0] if url else ""
    transport = str(url or "").partition("://")[0].partition("+")[0]
    if transport in IMMEDIATE_REDELIVERY:
        return settings.LIFELINE_GRACE
    if transport not in VISIBILITY_TIMEOUTS:
        return None
    options = app.conf.broker_transport_options or {}
    timeout = float(options.get("visibility_timeout", VISIBILITY_TIMEOUTS[transport]))
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


def running(alias: str) -> Any:
    """Rows in a state a running task writes: STARTED, and the project's own states."""
    watched = (states.STARTED, *app_settings().CUSTOM_STATES)
    return TaskResult._default_manager.db_manager(alias).filter(status__in=watched)


def _as_read(alias: str, task_id: str, status: str, lifeline: str) -> Any:
    """The row, if it is still as the sweep read it."""
    table = TaskResult._default_manager.db_manager(alias)
    return table.filter(task_id=task_id, status=status, lifeline=lifeline)


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"
