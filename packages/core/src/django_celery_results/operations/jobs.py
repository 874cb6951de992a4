"""Admin jobs: an action on a set of rows fixed at confirmation, run in chunks at a rate.

Confirming a preview writes the job and, in one ``INSERT … SELECT``, the primary keys of
every row the list's filters and search match (``AdminJobItem``): rows that arrive or
change later are not touched. A Celery task then claims the items a chunk at a time
(deleting them as it claims them, so a chunk is acted on once), acts on their rows, and
counts the outcome on the job; it checks for a cancel before each chunk, keeps to
``ADMIN_ACTION_RATE``, and hands over to a new task every :data:`SLICE` seconds so no
worker process is held for hours. The same job confirmed twice (a re-POST, two
operators) runs once: the token and the job's key are unique. Django's admin log
records who started it, on what, and how it ended.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import current_app, shared_task
from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..conf import app_settings
from ..models import AdminJob, AdminJobItem, TaskResult
from .actions import SKIPPED, Outcome, perform

logger = logging.getLogger(__name__)

#: The Celery task that runs jobs.
TASK_NAME = "django_celery_results.run_admin_job"
#: Most rows acted on per chunk (fewer when the rate is lower: a chunk is a second's worth).
CHUNK = 100
#: Seconds one task runs a job before handing over to the next.
SLICE = 20.0
#: Django's admin log flags (``django.contrib.admin.models``, imported where used: a
#: project without the admin still starts its workers, which register the job task).
ADDITION, CHANGE = 1, 2
#: A running job with no chunk counted for this long lost its runner.
LOST_AFTER = timedelta(seconds=3 * SLICE + 60)
LOST_RUNNER = "Its runner was lost: no chunk was counted for minutes."
#: States a job ends in.
FINISHED = ("done", "cancelled", "failed")
#: Longest list of selected ids a job keeps as its query (the rest are counted).
SHOWN_IDS = 20


def key_of(action: str, options: dict[str, Any], query: str, database: str) -> str:
    """The job's identity while it runs: what it does, to which rows, in which database."""
    text = json.dumps([action, options, query, database], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class TooMany(ValueError):
    """More rows match than ``ADMIN_ACTION_MAX_ROWS``: nothing was started."""


def start(
    queryset: QuerySet[TaskResult],
    *,
    action: str,
    options: dict[str, Any],
    query: str,
    token: str,
    user: Any,
    scope: str | None = None,
) -> tuple[AdminJob, bool]:
    """Fix the rows of ``queryset`` as a new job; return it and whether it is new.

    The job and its rows live in the database the routers pick for writing task results
    (where the workers look for it). A job with the same token, or the same key
    (``scope``, by default ``query``) still running, is returned instead; one whose
    runner was lost is ended first. :class:`TooMany` when more rows match than
    ``ADMIN_ACTION_MAX_ROWS``.
    """
    database = router.db_for_write(TaskResult)
    queryset = queryset.using(database)
    limit = app_settings().ADMIN_ACTION_MAX_ROWS
    if queryset.order_by()[: limit + 1].count() > limit:
        raise TooMany(limit)
    jobs = AdminJob._default_manager.using(database)
    key = key_of(action, options, query if scope is None else scope, database)
    running = ("running", "cancelling")
    for stale in jobs.filter(key=key, state__in=running, beat_at__lt=timezone.now() - LOST_AFTER):
        finish(stale.pk, database, "failed", error=LOST_RUNNER)
    try:
        with transaction.atomic(using=database):
            job = jobs.create(
                token=token,
                key=key,
                action=action,
                options=json.dumps(options, sort_keys=True),
                query=query,
                user_id=getattr(user, "pk", None),
                username=str(getattr(user, "username", "") or ""),
                beat_at=timezone.now(),
            )
            job.total = _fix_rows(job, queryset)
            job.save(update_fields=["total"])
    except IntegrityError:
        found = jobs.filter(Q(token=token) | Q(key=key)).first()
        if found is None:
            raise
        return found, False
    audit(job, ADDITION, describe_start(job))
    return job, True


def _fix_rows(job: AdminJob, queryset: QuerySet[TaskResult]) -> int:
    """Copy the primary keys of ``queryset``'s rows into the job's items; return how many."""
    database = queryset.db
    connection = connections[database]
    compiler = queryset.order_by().values("pk").query.get_compiler(using=database)
    select, params = compiler.as_sql()
    quote = connection.ops.quote_name
    items = AdminJobItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(items)} ({quote('job_id')}, {quote('result_id')}) "
            f"SELECT %s, {quote('chosen')}.* FROM ({select}) {quote('chosen')}",
            [job.pk, *params],
        )
        return int(cursor.rowcount)


def launch(job: AdminJob, *, inline: bool = False) -> None:
    """Run ``job``: here and now (a few rows), or by a Celery task on a worker."""
    database = job._state.db or "default"
    if inline:
        run(job.pk, database, budget=None)
        return
    try:
        run_admin_job.apply_async((job.pk,))
    except Exception as exc:  # the broker is down: say so on the job, release its key
        logger.exception("Admin job %s could not be sent to a worker", job.pk)
        finish(job.pk, database, "failed", error=f"It could not be sent to a worker: {exc}")


def run(job_id: int, database: str, *, budget: float | None = SLICE) -> bool:
    """Act on the job's rows for up to ``budget`` seconds; return True if some are left."""
    jobs = AdminJob._default_manager.using(database)
    job = jobs.filter(pk=job_id).first()
    if job is None or job.state in FINISHED:
        return False
    jobs.filter(pk=job_id, state="queued").update(state="running", beat_at=timezone.now())
    options = json.loads(job.options or "{}")
    rate = app_settings().ADMIN_ACTION_RATE
    chunk = max(1, min(CHUNK, int(rate)))
    deadline = None if budget is None else time.monotonic() + budget
    while deadline is None or time.monotonic() < deadline:
        if jobs.filter(pk=job_id, state="cancelling").exists():
            finish(job_id, database, "cancelled")
            return False
        started = time.monotonic()
        keys = claim(job_id, database, chunk)
        if keys is None:  # another runner holds the next items: leave them to it
            return True
        if not keys:
            finish(job_id, database, "done")
            return False
        rows = list(TaskResult._default_manager.using(database).filter(pk__in=keys))
        try:
            outcome = perform(job.action, rows, current_app, options)
        except Exception as exc:  # an action that cannot run at all ends the job
            logger.exception("Admin job %s failed", job_id)
            finish(job_id, database, "failed", error=f"{type(exc).__name__}: {exc}")
            return False
        outcome.skipped["gone"] += len(keys) - len(rows)
        count(job_id, database, outcome)
        pause = started + len(keys) / rate - time.monotonic()
        if deadline is not None:
            pause = min(pause, deadline - time.monotonic())
        if pause > 0:
            time.sleep(pause)
    return True


def claim(job_id: int, database: str, size: int) -> list[int] | None:
    """Take up to ``size`` of the job's items (deleting them): each is acted on once.

    ``[]`` when none are left; None when another runner holds them (a redelivered task
    beside its successor), so this one leaves the job to it.
    """
    items = AdminJobItem._default_manager.using(database)
    for _ in range(5):
        with transaction.atomic(using=database):
            chosen = list(
                items.filter(job_id=job_id).order_by("pk").values_list("pk", "result_id")[:size]
            )
            if not chosen:
                return []
            deleted, _ = items.filter(pk__in=[pk for pk, _ in chosen]).delete()
            if deleted == len(chosen):
                return [result for _, result in chosen]
            transaction.set_rollback(True)  # another runner took some: take others
    return None


def count(job_id: int, database: str, outcome: Outcome) -> None:
    """Add a chunk's outcome to the job's counts."""
    jobs = AdminJob._default_manager.using(database)
    skipped = sum(outcome.skipped.values())
    jobs.filter(pk=job_id).update(
        done=F("done") + outcome.done,
        failed=F("failed") + outcome.failed,
        skipped=F("skipped") + skipped,
        beat_at=timezone.now(),
    )
    if skipped:
        with transaction.atomic(using=database):
            job = jobs.select_for_update().get(pk=job_id)
            why = json.loads(job.skipped_why or "{}")
            for reason, number in outcome.skipped.items():
                if number:
                    why[reason] = why.get(reason, 0) + number
            jobs.filter(pk=job_id).update(skipped_why=json.dumps(why, sort_keys=True))


def cancel(job: AdminJob) -> bool:
    """Ask a running job to stop before its next chunk; False if it has finished.

    A job nothing runs (still queued, or its runner lost: no chunk counted for
    :data:`LOST_AFTER`) is cancelled at once.
    """
    database = job._state.db or "default"
    jobs = AdminJob._default_manager.using(database)
    live = ("queued", "running", "cancelling")
    asked = jobs.filter(pk=job.pk, state__in=live).update(state="cancelling")
    stale = job.beat_at is None or job.beat_at < timezone.now() - LOST_AFTER
    if asked and (job.state == "queued" or stale):
        finish(job.pk, database, "cancelled")
    return bool(asked)


def finish(job_id: int, database: str, state: str, *, error: str = "") -> None:
    """End the job: its key is released, what is left of its items dropped, the end logged."""
    jobs = AdminJob._default_manager.using(database)
    ended = (
        jobs.filter(pk=job_id)
        .exclude(state__in=FINISHED)
        .update(state=state, key=None, finished_at=timezone.now(), error=error)
    )
    AdminJobItem._default_manager.using(database).filter(job_id=job_id).delete()
    if ended:
        job = jobs.get(pk=job_id)
        lost = job.total - job.done - job.skipped - job.failed
        if state == "done" and lost > 0:
            # Claimed by a runner that was lost before it acted: never acted on twice.
            job.error = (
                f"{lost} row(s) were claimed by a runner that was lost; they were not acted on."
            )
            jobs.filter(pk=job_id).update(error=job.error)
        audit(job, CHANGE, describe_end(job))


def audit(job: AdminJob, flag: int, message: str) -> None:
    """Record ``message`` about ``job`` in Django's admin log, as the user who started it."""
    if job.user_id is None:
        return
    try:
        from django.contrib.admin.models import LogEntry

        # A savepoint: a refused log entry must not spoil the request's transaction.
        with transaction.atomic(using=router.db_for_write(LogEntry)):
            LogEntry.objects.log_actions(
                job.user_id,
                AdminJob._default_manager.using(job._state.db).filter(pk=job.pk),
                flag,
                change_message=message,
                single_object=True,
            )
    except Exception:  # the log is a record, not a condition: the job's own row stays
        logger.exception("The admin log could not record job %s: %s", job.pk, message)


def describe_start(job: AdminJob) -> str:
    """The admin log's line for a job's start: who, what, on which rows, how many."""
    return (
        f"{job.username} started {job.action} {job.options} on {job.total} task result(s) "
        f"matching {job.query or 'the whole list'}"
    )


def skipped_reasons(job: AdminJob) -> list[tuple[str, int]]:
    """Why the job skipped rows, in words, with how many each (unreadable: none)."""
    try:
        why = json.loads(job.skipped_why or "{}")
    except ValueError:
        return []
    return [(str(SKIPPED.get(code, code)), number) for code, number in sorted(why.items())]


def describe_end(job: AdminJob) -> str:
    """The admin log's line for a job's end: the outcome."""
    reasons = "; ".join(f"{reason}: {n}" for reason, n in skipped_reasons(job))
    text = (
        f"{job.action} {job.state}: {job.done} done, {job.skipped} skipped, "
        f"{job.failed} failed of {job.total}"
    )
    if reasons:
        text += f" (skipped: {reasons})"
    if job.error:
        text += f". {job.error}"
    return text


def selection_query(keys: Sequence[Any]) -> str:
    """The query a job on hand-picked rows records: their primary keys."""
    shown = ",".join(str(key) for key in sorted(keys, key=str)[:SHOWN_IDS])
    more = f" and {len(keys) - SHOWN_IDS} more" if len(keys) > SHOWN_IDS else ""
    return f"selected ids: {shown}{more}"


# acks_late: a worker lost mid-slice leaves the message with the broker, which delivers
# it again; the next runner goes on from the items left.
@shared_task(
    name=TASK_NAME, bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True
)
def run_admin_job(self: Any, job_id: int) -> None:
    """Run an admin job for a slice of time; a new task continues it.

    The job lives beside the results it acts on: the database the project's routers pick
    for task results, in the worker as in the admin that started it.
    """
    database = router.db_for_write(TaskResult)
    try:
        if run(job_id, database):
            self.apply_async((job_id,))
    except Exception as exc:  # a job whose runner fails ends, saying why: never "running"
        logger.exception("Admin job %s failed", job_id)
        finish(job_id, database, "failed", error=f"{type(exc).__name__}: {exc}")
