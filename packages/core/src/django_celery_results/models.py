"""Database models: task results, group results, chord counters and the history's tables."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from celery import states
from celery.result import GroupResult as CeleryGroupResult
from celery.result import result_from_tuple
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import managers

ALL_STATES = sorted(states.ALL_STATES)
TASK_STATE_CHOICES = sorted(zip(ALL_STATES, ALL_STATES, strict=True))

#: PostgreSQL's operator class that serves ``LIKE 'prefix%'`` whatever the collation.
PATTERN = ["varchar_pattern_ops"]

#: Length of every task and group id column; 191 suits old MySQL utf8mb4 key limits.
TASK_ID_MAX_LENGTH: int = getattr(settings, "DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH", 255)


class TaskResult(models.Model):
    """Task result/status."""

    task_id = models.CharField(
        max_length=TASK_ID_MAX_LENGTH,
        unique=True,
        verbose_name=_("Task ID"),
        help_text=_("Celery ID for the Task that was run"),
    )
    periodic_task_name = models.CharField(
        null=True,
        max_length=255,
        verbose_name=_("Periodic Task Name"),
        help_text=_("Name of the Periodic Task which was run"),
    )
    task_name = models.CharField(
        null=True,
        max_length=TASK_ID_MAX_LENGTH,
        verbose_name=_("Task Name"),
        help_text=_("Name of the Task which was run"),
    )
    task_args = models.TextField(
        null=True,
        verbose_name=_("Task Positional Arguments"),
        help_text=_("JSON representation of the positional arguments used with the task"),
    )
    task_kwargs = models.TextField(
        null=True,
        verbose_name=_("Task Named Arguments"),
        help_text=_("JSON representation of the named arguments used with the task"),
    )
    status = models.CharField(
        max_length=50,
        default=states.PENDING,
        verbose_name=_("Task State"),
        help_text=_("Current state of the task being run"),
    )
    worker = models.CharField(
        max_length=100,
        default=None,
        null=True,
        verbose_name=_("Worker"),
        help_text=_("Worker that executes the task"),
    )
    retries = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        verbose_name=_("Retries"),
        help_text=_("Number of times the task was retried before this state"),
    )
    queue = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        default=None,
        verbose_name=_("Queue"),
        help_text=_("Name of the queue (routing key) the task was delivered to"),
    )
    content_type = models.CharField(
        max_length=128,
        verbose_name=_("Result Content Type"),
        help_text=_("Content type of the result data"),
    )
    content_encoding = models.CharField(
        max_length=64,
        verbose_name=_("Result Encoding"),
        help_text=_("The encoding used to save the task result data"),
    )
    result = models.TextField(
        null=True,
        default=None,
        editable=False,
        verbose_name=_("Result Data"),
        help_text=_(
            "The data returned by the task.  Use content_encoding and content_type fields to read."
        ),
    )
    date_created = models.DateTimeField(
        auto_now_add=True,
        verbose_name=_("Created DateTime"),
        help_text=_("Datetime field when the task result was created in UTC"),
    )
    date_started = models.DateTimeField(
        null=True,
        default=None,
        verbose_name=_("Started DateTime"),
        help_text=_("Datetime field when the task was started in UTC"),
    )
    date_done = models.DateTimeField(
        auto_now=True,
        verbose_name=_("Completed DateTime"),
        help_text=_("Datetime field when the task was completed in UTC"),
    )
    traceback = models.TextField(
        blank=True,
        null=True,
        verbose_name=_("Traceback"),
        help_text=_("Text of the traceback if the task generated one"),
    )
    meta = models.TextField(
        null=True,
        default=None,
        editable=False,
        verbose_name=_("Task Meta Information"),
        help_text=_("JSON meta information about the task, such as information on child tasks"),
    )
    exception_type = models.CharField(
        max_length=255,
        null=True,
        blank=True,
        default=None,
        verbose_name=_("Exception Type"),
        help_text=_("The exception a FAILURE raised (module.Name; builtins by name alone)"),
    )
    #: False once a write changed the row and until the history counted it (see history).
    rolled_up = models.BooleanField(
        default=False, db_default=False, editable=False, verbose_name=_("Counted by the history")
    )
    #: What the history counted this row as, so a later state moves it (history.marks).
    history_mark = models.CharField(
        max_length=64, null=True, default=None, editable=False, verbose_name=_("History mark")
    )
    #: Set by a STARTED write of a registered worker: its life's id, and whether the broker
    #: redelivers the task if the worker is lost (``acks_late``). Read by the lifeline.
    lifeline = models.CharField(
        max_length=64, null=True, default=None, editable=False, verbose_name=_("Lifeline")
    )
    #: The task id of the run this one retries, when the admin's Retry sent it; the run's
    #: retries are the rows naming it here (an index finds them).
    retry_of = models.CharField(
        max_length=TASK_ID_MAX_LENGTH,
        null=True,
        default=None,
        editable=False,
        verbose_name=_("Retry of"),
    )

    objects = managers.TaskResultManager()

    class Meta:
        """Table information."""

        ordering = ["-date_done"]
        verbose_name = _("task result")
        verbose_name_plural = _("task results")
        # Acting on tasks is not viewing: each of the admin's actions has its permission
        # (deleting has Django's own, ``delete_taskresult``).
        permissions = [
            ("terminate_taskresult", _("Can terminate running tasks")),
            ("retry_taskresult", _("Can retry tasks")),
            ("revoke_taskresult", _("Can revoke tasks")),
        ]
        # Explicit names to solve https://code.djangoproject.com/ticket/33483. The columns
        # the admin's search matches by prefix are indexed with PostgreSQL's pattern
        # operators (migration 0022): outside the C collation a plain index cannot serve
        # ``LIKE 'prefix%'``. Other databases ignore ``opclasses``.
        indexes = [
            models.Index(
                fields=["task_name"], name="django_cele_task_na_08aec9_idx", opclasses=PATTERN
            ),
            models.Index(fields=["status"], name="django_cele_status_9b6201_idx"),
            models.Index(
                fields=["worker"], name="django_cele_worker_d54dd8_idx", opclasses=PATTERN
            ),
            models.Index(fields=["date_created"], name="django_cele_date_cr_f04a50_idx"),
            models.Index(fields=["date_done"], name="django_cele_date_do_f59aad_idx"),
            models.Index(
                fields=["periodic_task_name"],
                name="django_cele_periodi_1993cf_idx",
                opclasses=PATTERN,
            ),
            models.Index(
                fields=["exception_type"], name="django_cele_excepti_0c5e3a_idx", opclasses=PATTERN
            ),
            models.Index(fields=["retry_of"], name="django_cele_retry_of_idx"),
            # The rows in one state, oldest first: the backlog, running and stuck tasks.
            models.Index(fields=["status", "date_done"], name="django_cele_status_done_idx"),
            # The history's queue of rows to count; MySQL, which has no partial index,
            # gets the whole column indexed (migration 0018).
            models.Index(
                fields=["id"],
                condition=models.Q(rolled_up=False),
                name="django_cele_rolled_up_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"<Task: {self.task_id} ({self.status})>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, and have the history count the row again (an admin edit, a script)."""
        self.rolled_up = False
        fields = kwargs.get("update_fields")
        if fields is not None and "rolled_up" not in fields:
            kwargs["update_fields"] = [*fields, "rolled_up"]
        super().save(*args, **kwargs)

    def as_dict(self) -> dict[str, Any]:
        """Return the columns Celery's result meta is built from (upstream's keys)."""
        return {
            "task_id": self.task_id,
            "task_name": self.task_name,
            "task_args": self.task_args,
            "task_kwargs": self.task_kwargs,
            "status": self.status,
            "result": self.result,
            "date_done": self.date_done,
            "traceback": self.traceback,
            "meta": self.meta,
            "worker": self.worker,
        }

    @property
    def waiting_time(self) -> timedelta | None:
        """Time from sending (or the first write) to STARTED; ``None`` before it started.

        ``date_created`` is when the task was sent when publish-time PENDING rows are on
        (``TRACK_PENDING``); otherwise it is the worker's first write, and the waiting time
        only covers the worker's own prefetch.
        """
        if self.date_started is None or self.date_created is None:
            return None
        return self.date_started - self.date_created

    @property
    def processing_time(self) -> timedelta | None:
        """Time from STARTED to the final state, or ``None`` when not both are known."""
        if self.date_started is None or self.status not in states.READY_STATES:
            return None
        return self.date_done - self.date_started

    @property
    def total_time(self) -> timedelta | None:
        """Time from sending (or the first write) to the final state; ``None`` until then."""
        if self.date_created is None or self.status not in states.READY_STATES:
            return None
        return self.date_done - self.date_created

    def timeline(self) -> dict[str, float | None]:
        """Return waiting, processing and total time in seconds (``None`` when unknown).

        Beside ``as_dict()``, whose keys stay upstream's.
        """
        spans = {
            "waiting_time": self.waiting_time,
            "processing_time": self.processing_time,
            "total_time": self.total_time,
        }
        return {
            name: None if span is None else span.total_seconds() for name, span in spans.items()
        }


class ChordCounter(models.Model):
    """Chord synchronisation."""

    group_id = models.CharField(
        max_length=TASK_ID_MAX_LENGTH,
        unique=True,
        verbose_name=_("Group ID"),
        help_text=_("Celery ID for the Chord header group"),
    )
    sub_tasks = models.TextField(
        help_text=_("JSON serialized list of task result tuples. use .group_result() to decode")
    )
    count = models.PositiveIntegerField(
        help_text=_("Starts at len(chord header) and decrements after each task is finished")
    )

    def __str__(self) -> str:
        return f"<ChordCounter: {self.group_id} ({self.count})>"

    def group_result(self, app: Any = None) -> CeleryGroupResult:
        """Return the :class:`celery.result.GroupResult` of self.

        Args:
            app: the Celery app to create the group result with.
        """
        return CeleryGroupResult(
            self.group_id,
            [result_from_tuple(r, app=app) for r in json.loads(self.sub_tasks)],
            app=app,
        )


class GroupResult(models.Model):
    """Task Group result/status."""

    group_id = models.CharField(
        max_length=TASK_ID_MAX_LENGTH,
        unique=True,
        verbose_name=_("Group ID"),
        help_text=_("Celery ID for the Group that was run"),
    )
    date_created = models.DateTimeField(
        auto_now_add=True,
        verbose_name=_("Created DateTime"),
        help_text=_("Datetime field when the group result was created in UTC"),
    )
    date_done = models.DateTimeField(
        auto_now=True,
        verbose_name=_("Completed DateTime"),
        help_text=_("Datetime field when the group was completed in UTC"),
    )
    content_type = models.CharField(
        max_length=128,
        verbose_name=_("Result Content Type"),
        help_text=_("Content type of the result data"),
    )
    content_encoding = models.CharField(
        max_length=64,
        verbose_name=_("Result Encoding"),
        help_text=_("The encoding used to save the task result data"),
    )
    result = models.TextField(
        null=True,
        default=None,
        editable=False,
        verbose_name=_("Result Data"),
        help_text=_(
            "The data returned by the task.  Use content_encoding and content_type fields to read."
        ),
    )

    objects = managers.GroupResultManager()

    class Meta:
        """Table information."""

        ordering = ["-date_done"]
        verbose_name = _("group result")
        verbose_name_plural = _("group results")
        # Explicit names to solve https://code.djangoproject.com/ticket/33483
        indexes = [
            models.Index(fields=["date_created"], name="django_cele_date_cr_bd6c1d_idx"),
            models.Index(fields=["date_done"], name="django_cele_date_do_caae0e_idx"),
        ]

    def __str__(self) -> str:
        return f"<Group: {self.group_id}>"

    def as_dict(self) -> dict[str, Any]:
        """Return the columns Celery's group meta is built from (upstream's keys)."""
        return {
            "group_id": self.group_id,
            "result": self.result,
            "date_done": self.date_done,
        }


class HistorySeries(models.Model):
    """One combination the history counts by: task name, final state, queue, worker, exception.

    Counts name a series by its id, so their key stays short on every database (InnoDB
    indexes at most 3,072 bytes, less than the five columns together).
    """

    #: SHA-1 of the five values (``history.series.key_of``): the unique key.
    key = models.CharField(max_length=40, unique=True)
    task_name = models.CharField(max_length=TASK_ID_MAX_LENGTH, default="")
    state = models.CharField(max_length=50)
    queue = models.CharField(max_length=255, default="")
    worker = models.CharField(max_length=100, default="")
    exception_type = models.CharField(max_length=255, default="")

    class Meta:
        """Table information."""

        verbose_name = _("history series")
        verbose_name_plural = _("history series")

    def __str__(self) -> str:
        return f"<HistorySeries: {self.task_name} {self.state} {self.queue} {self.worker}>"


class HistoryCount(models.Model):
    """Finished tasks of one series in one time bucket (a minute to a day)."""

    #: 0: minutes, 3: ten minutes, 1: hours, 4: quarter days, 2: days (``buckets.TIERS``).
    tier = models.PositiveSmallIntegerField()
    #: The bucket's start, in UTC.
    bucket = models.DateTimeField()
    series = models.ForeignKey(HistorySeries, on_delete=models.CASCADE, db_index=False)
    count = models.IntegerField(default=0)
    #: The earliest and latest ``date_done`` counted here, and the latest one's task id.
    first_done = models.DateTimeField()
    last_done = models.DateTimeField()
    example = models.CharField(max_length=TASK_ID_MAX_LENGTH)

    class Meta:
        """Table information."""

        constraints = [
            models.UniqueConstraint(
                fields=["tier", "bucket", "series"], name="django_cele_history_count_key"
            )
        ]

    def __str__(self) -> str:
        return f"<HistoryCount: {self.tier} {self.bucket} {self.series_id} {self.count}>"


class HistorySpread(models.Model):
    """The wait and run times of one task name's finished tasks in one time bucket."""

    tier = models.PositiveSmallIntegerField()
    bucket = models.DateTimeField()
    task_name = models.CharField(max_length=TASK_ID_MAX_LENGTH, default="")
    #: Logarithmic bins as JSON (``history.sketch``): ``{"wait": {"bin": n}, "run": {…}}``.
    bins = models.TextField(default="{}")

    class Meta:
        """Table information."""

        constraints = [
            models.UniqueConstraint(
                fields=["tier", "bucket", "task_name"], name="django_cele_history_spread_key"
            )
        ]

    def __str__(self) -> str:
        return f"<HistorySpread: {self.tier} {self.bucket} {self.task_name}>"


class HistoryBacklog(models.Model):
    """PENDING rows of one queue at one moment: a sample of the backlog's trend.

    The workers' history thread takes one a minute (``history.backlog``); each hour keeps
    its first sample past the minutes' 8 days.
    """

    tier = models.PositiveSmallIntegerField()
    #: The minute (or hour) the sample was taken in, in UTC.
    bucket = models.DateTimeField()
    queue = models.CharField(max_length=255, default="")
    count = models.IntegerField(default=0)
    #: The backlog was larger than the sample counts (``history.backlog.MAX_BACKLOG``).
    capped = models.BooleanField(default=False)

    class Meta:
        """Table information."""

        constraints = [
            models.UniqueConstraint(
                fields=["tier", "bucket", "queue"], name="django_cele_history_backlog_key"
            )
        ]

    def __str__(self) -> str:
        return f"<HistoryBacklog: {self.tier} {self.bucket} {self.queue} {self.count}>"


class HistoryTotal(models.Model):
    """A running total since the history began, for Prometheus counters: it never goes down.

    Its series holds label values as exported: past the bound on distinct values, "other".
    """

    series = models.OneToOneField(HistorySeries, on_delete=models.CASCADE)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"<HistoryTotal: {self.series_id} {self.count}>"


class HistoryTotalSpread(models.Model):
    """A running histogram of one task name's wait or run seconds, in Prometheus buckets."""

    task_name = models.CharField(max_length=TASK_ID_MAX_LENGTH, default="")
    kind = models.CharField(max_length=8)
    #: Observations per bucket of ``history.totals.BOUNDS`` (not cumulative), as JSON.
    buckets = models.TextField(default="[]")
    total_seconds = models.FloatField(default=0.0)
    count = models.BigIntegerField(default=0)

    class Meta:
        """Table information."""

        constraints = [
            models.UniqueConstraint(
                fields=["task_name", "kind"], name="django_cele_history_total_spread_key"
            )
        ]

    def __str__(self) -> str:
        return f"<HistoryTotalSpread: {self.task_name} {self.kind} {self.count}>"


class HistoryLabel(models.Model):
    """A label value admitted to the metrics, of the bounded number each label may have."""

    #: "task", "state", "queue", "worker" or "exception".
    label = models.CharField(max_length=16)
    #: The value's SHA-1 (values are up to 255 characters; the key must stay short).
    key = models.CharField(max_length=40)
    value = models.CharField(max_length=255)
    last_seen = models.DateTimeField()

    class Meta:
        """Table information."""

        constraints = [
            models.UniqueConstraint(fields=["label", "key"], name="django_cele_history_label_key")
        ]

    def __str__(self) -> str:
        return f"<HistoryLabel: {self.label}={self.value}>"


class HistoryState(models.Model):
    """The history's one bookkeeping row: its lock, and when it last caught up."""

    #: When a catch-up last left no row to count (None: never).
    caught_up_at = models.DateTimeField(null=True, default=None)
    #: Rows counted since the history began (each write of a row counts once).
    rows_counted = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"<HistoryState: {self.caught_up_at}>"


class Worker(models.Model):
    """A worker's life as it registered and last beat: the worker registry (``workers``).

    One row per life (each start of a worker draws a new ``boot``), written by the worker
    itself (no task events needed): at its start, then a heartbeat every
    ``WORKER_HEARTBEAT`` seconds, stamped with the database's clock, and ``stopped_at`` at
    a warm shutdown. Cleanup forgets lives silent for a week.
    """

    #: The node name, as Celery names the worker (``celery@host``): each of its lives.
    hostname = models.CharField(max_length=255, db_index=True)
    #: This life's id (a new one at every start): what its STARTED rows carry.
    boot = models.CharField(max_length=32, unique=True)
    host = models.CharField(max_length=255, default="")
    pid = models.IntegerField()
    #: The pool's class, and its processes or threads (the most, when autoscaling).
    pool = models.CharField(max_length=255, default="")
    concurrency = models.IntegerField(null=True)
    #: The queues consumed, as JSON: ``{"queue", "exchange", "type", "routing_key"}`` each.
    queues = models.TextField(default="[]")
    #: Software versions, as JSON (``{"celery": "5.5.3", …}``).
    software = models.TextField(default="{}")
    #: Its seconds between heartbeats (``WORKER_HEARTBEAT`` where it runs).
    interval = models.FloatField(default=15.0)
    #: The database's clock at its registration, its last heartbeat, and its warm shutdown.
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True)
    #: When the lifeline found this life gone and nothing of it left to settle.
    swept_at = models.DateTimeField(null=True)
    #: Result writes this life retried after a transient error, and lost (every process).
    writes_retried = models.BigIntegerField(default=0)
    writes_lost = models.BigIntegerField(default=0)

    class Meta:
        """Table information."""

        ordering = ["-heartbeat_at"]
        verbose_name = _("worker")
        verbose_name_plural = _("workers")

    def __str__(self) -> str:
        return f"<Worker: {self.hostname} ({self.pid})>"


class Lease(models.Model):
    """One cluster-wide duty (the lifeline's sweep, a cleanup) held by one worker until it expires.

    The election of databases without a lock of their own (``workers.election``).
    """

    name = models.CharField(max_length=100, unique=True)
    holder = models.CharField(max_length=255, default="")
    expires_at = models.DateTimeField()

    class Meta:
        """Table information."""

        verbose_name = _("lease")
        verbose_name_plural = _("leases")

    def __str__(self) -> str:
        return f"<Lease: {self.name} ({self.holder})>"


class Counter(models.Model):
    """A cluster-wide count that only grows (the lifeline's settlements), for the metrics."""

    name = models.CharField(max_length=100, unique=True)
    value = models.BigIntegerField(default=0)

    class Meta:
        """Table information."""

        verbose_name = _("counter")
        verbose_name_plural = _("counters")

    def __str__(self) -> str:
        return f"<Counter: {self.name} = {self.value}>"


class AdminJob(models.Model):
    """An admin action on a fixed set of task results, run in the background (``operations``).

    Its rows are fixed when the operator confirms the preview (``AdminJobItem``); a Celery
    task acts on them in chunks at ``ADMIN_ACTION_RATE``, counting its progress here.
    """

    #: Drawn by the preview and posted back with the confirmation: a re-POST finds the job.
    token = models.CharField(max_length=32, unique=True)
    #: What the job does and the filter it matches, while it runs (then NULL): the same job
    #: confirmed twice (two operators) runs once.
    key = models.CharField(max_length=64, unique=True, null=True, default=None)
    action = models.CharField(max_length=20)
    #: The action's options as JSON (``{"signal": "SIGTERM"}``, ``{"succeeded": true}``).
    options = models.TextField(default="{}")
    #: What the operator saw: the list's query string, or the ids they selected.
    query = models.TextField(default="")
    user_id = models.IntegerField(null=True)
    username = models.CharField(max_length=150, default="")
    #: queued, running, done, cancelling, cancelled or failed.
    state = models.CharField(max_length=20, default="queued")
    total = models.IntegerField(default=0)
    #: Rows the action was done to, skipped (with why, in ``skipped_why``), and failed.
    done = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    skipped_why = models.TextField(default="{}")
    error = models.TextField(default="")
    created_at = models.DateTimeField(auto_now_add=True)
    #: When a runner last counted a chunk: a running job silent for long lost its runner.
    beat_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        """Table information."""

        ordering = ["-created_at"]
        verbose_name = _("admin job")
        verbose_name_plural = _("admin jobs")

    def __str__(self) -> str:
        return f"{self.action} #{self.pk} ({self.state})"


class AdminJobItem(models.Model):
    """One task result a job has still to act on; deleted as it is claimed."""

    job = models.ForeignKey(AdminJob, on_delete=models.CASCADE, related_name="items")
    #: The ``TaskResult`` primary key (no foreign key: a row may be deleted meanwhile).
    result_id = models.BigIntegerField()

    class Meta:
        """Table information."""

        # A runner takes the job's items in order, a chunk at a time.
        indexes = [models.Index(fields=["job", "id"], name="django_cele_job_item_idx")]
        verbose_name = _("admin job item")
        verbose_name_plural = _("admin job items")

    def __str__(self) -> str:
        return f"<AdminJobItem: {self.job_id} {self.result_id}>"
