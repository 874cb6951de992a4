"""The admin's actions on rows of task results, one chunk at a time: each returns its outcome."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery import states, uuid
from celery.exceptions import TaskRevokedError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..history.rollup import catch_up
from ..models import TaskResult
from . import calls

logger = logging.getLogger(__name__)

#: Each action and the permission it needs (deleting has Django's own).
PERMISSIONS = {
    "retry": "retry_taskresult",
    "revoke": "revoke_taskresult",
    "terminate": "terminate_taskresult",
    "delete": "delete_taskresult",
}
#: The signals Terminate may send a task's process (Celery's default is SIGTERM).
SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGKILL")
#: States a task can be retried from (SUCCESS only when the operator says so).
RETRIABLE = frozenset({states.FAILURE, states.REVOKED})
#: States of a task not yet started: revoking one shows REVOKED at once.
NOT_STARTED = (states.PENDING, states.RECEIVED)

#: Why a row was skipped, by the codes the outcome counts.
SKIPPED = {
    "succeeded": _("it succeeded (tick “Retry succeeded tasks too” to retry it)"),
    "unfinished": _("it has not finished"),
    "finished": _("it has already finished"),
    "no-call": _("no call was stored for it (STORE_CALLS)"),
    "gone": _("it was deleted meanwhile"),
}


@dataclass
class Outcome:
    """What an action did to a chunk of rows."""

    done: int = 0
    failed: int = 0
    #: Skipped rows by reason (:data:`SKIPPED`'s codes, or a stored call's problem).
    skipped: Counter[str] = field(default_factory=Counter)


def why_not_retried(row: TaskResult, app: Any, *, succeeded: bool = False) -> str | None:
    """Why ``row`` cannot be retried (a :data:`SKIPPED` code or a reason), or None."""
    return retriable_call(row, app, succeeded=succeeded)[1]


def retriable_call(
    row: TaskResult, app: Any, *, succeeded: bool = False
) -> tuple[calls.Call | None, str | None]:
    """The call to send ``row``'s task again with, or why there is none (decoded once)."""
    if row.status == states.SUCCESS and not succeeded:
        return None, "succeeded"
    if row.status not in RETRIABLE and row.status != states.SUCCESS:
        return None, "unfinished"
    try:
        return stored_call(row, app), None
    except ValueError as exc:
        return None, str(exc)


def stored_call(row: TaskResult, app: Any) -> calls.Call:
    """The call stored in ``row``'s meta; ``ValueError`` says why there is none."""
    if not row.task_name:
        raise ValueError("the row has no task name")
    if not row.meta or row.content_type != "application/json":
        raise ValueError("no-call")
    try:
        meta = json.loads(row.meta)
    except (ValueError, RecursionError) as exc:
        raise ValueError("its meta cannot be read") from exc
    if not isinstance(meta, dict) or calls.META_KEY not in meta:
        raise ValueError("no-call")
    return calls.decode(app, meta[calls.META_KEY])


def retry(rows: Sequence[TaskResult], app: Any, *, succeeded: bool = False) -> Outcome:
    """Send each row's task again, as a new task whose row names the run it retries.

    The new row is written (PENDING, ``retry_of``) before the task is sent, so the link
    is there whenever the task runs; a send that fails deletes it again.
    """
    outcome = Outcome()
    for row in rows:
        call, why = retriable_call(row, app, succeeded=succeeded)
        if call is None:
            outcome.skipped[why or "no-call"] += 1
            continue
        new_id = uuid()
        table = TaskResult._default_manager.using(row._state.db)
        try:
            table.create(
                task_id=new_id,
                task_name=row.task_name,
                periodic_task_name=row.periodic_task_name,
                status=states.PENDING,
                queue=row.queue,
                retry_of=row.task_id,
            )
            app.send_task(
                row.task_name,
                args=tuple(call.args),
                kwargs=call.kwargs,
                task_id=new_id,
                queue=row.queue or None,
                exchange=call.exchange or None,
                routing_key=call.routing_key or None,
                serializer=call.serializer,
            )
        except Exception:  # a broker or database error fails this row, not the others
            logger.exception(
                "Retrying task %s failed (its retry would be %s)", row.task_id, new_id
            )
            table.filter(task_id=new_id, status=states.PENDING).delete()
            outcome.failed += 1
            continue
        logger.info("Task %s retried as %s", row.task_id, new_id)
        outcome.done += 1
    return outcome


def revoke(
    rows: Sequence[TaskResult], app: Any, *, terminate: bool = False, signal: str = "SIGTERM"
) -> Outcome:
    """Revoke the unfinished rows' tasks (terminating running ones if asked), in one broadcast.

    A task not started yet shows REVOKED at once, when the project tracks starts
    (``task_track_started``: without it a running task's row reads PENDING too, and is
    left for its worker to write); workers skip it when it arrives (and forget revokes on
    restart unless they run with ``--statedb``).
    """
    outcome = Outcome()
    live = [row for row in rows if row.status not in states.READY_STATES]
    outcome.skipped["finished"] += len(rows) - len(live)
    if not live:
        return outcome
    ids = [row.task_id for row in live]
    try:
        if terminate:
            app.control.terminate(ids, signal=signal)
        else:
            app.control.revoke(ids)
    except Exception:  # the broker is down: nothing was revoked
        logger.exception("Revoking tasks %s failed", ids)
        outcome.failed += len(ids)
        return outcome
    if app.conf.task_track_started:
        mark_revoked([row for row in live if row.status in NOT_STARTED], app)
    outcome.done += len(ids)
    return outcome


def mark_revoked(rows: Sequence[TaskResult], app: Any) -> int:
    """Store REVOKED for rows not started yet (a row a worker started meanwhile is kept)."""
    if not rows:
        return 0
    backend = app.backend
    error = TaskRevokedError("revoked from the admin")
    encode: Callable[[Any], tuple[str, str, str]] | None = getattr(backend, "encode_content", None)
    if encode is None:
        return 0
    content_type, content_encoding, result = encode(backend.prepare_exception(error))
    table = TaskResult._default_manager.using(rows[0]._state.db)
    return table.filter(pk__in=[row.pk for row in rows], status__in=NOT_STARTED).update(
        status=states.REVOKED,
        result=result,
        content_type=content_type,
        content_encoding=content_encoding,
        date_done=timezone.now(),
        rolled_up=False,
    )


def delete(rows: Sequence[TaskResult]) -> Outcome:
    """Delete the rows, after the history counted them."""
    if not rows:
        return Outcome()
    database = rows[0]._state.db or "default"
    keys = [row.pk for row in rows]
    catch_up(database, wait=True, only=Q(pk__in=keys))
    deleted, _ = TaskResult._default_manager.using(database).filter(pk__in=keys).delete()
    return Outcome(
        done=deleted, skipped=Counter({"gone": len(keys) - deleted} if deleted < len(keys) else {})
    )


def perform(action: str, rows: Sequence[TaskResult], app: Any, options: dict[str, Any]) -> Outcome:
    """Run ``action`` (a :data:`PERMISSIONS` key) on ``rows`` with the job's options."""
    if action == "retry":
        return retry(rows, app, succeeded=bool(options.get("succeeded")))
    if action == "revoke":
        return revoke(rows, app)
    if action == "terminate":
        signal = options.get("signal") if options.get("signal") in SIGNALS else "SIGTERM"
        return revoke(rows, app, terminate=True, signal=str(signal))
    if action == "delete":
        return delete(rows)
    raise ValueError(f"unknown action {action!r}")
