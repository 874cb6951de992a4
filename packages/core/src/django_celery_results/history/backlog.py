"""The backlog's trend: PENDING rows per queue, sampled once a minute by the history thread.

A backlog is a level, not a flow: no sum of buckets gives it. So the history keeps
samples, each a count of every queue's PENDING rows (``TRACK_PENDING``) at the moment it
was taken, over at most :data:`MAX_BACKLOG` rows (a sample past that says so, and its
counts are of those rows). The first worker to catch up in a minute takes the minute's
sample; the first sample of each hour is also kept as the hour's, for windows longer
than the minutes' 8 days. A queue missing from a sample had nothing waiting.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone

from ..models import HistoryBacklog, TaskResult
from ..states import PENDING
from .buckets import HOUR, MINUTE, floor
from .writes import concrete_fields

#: PENDING rows older than this are not a backlog but leftovers (their queue long gone).
HORIZON = timedelta(days=7)
#: PENDING rows counted at most, by the dashboard and by a sample.
MAX_BACKLOG = 100_000
#: Windows up to this long draw the trend from minute samples; longer ones from hours.
MINUTE_SAMPLES_UP_TO = timedelta(hours=6)
#: The queue a sample records when nothing waits anywhere (so the minute reads as sampled).
NOTHING = ""


@dataclass(frozen=True)
class Sample:
    """One queue's PENDING rows at one moment."""

    at: datetime
    count: int
    capped: bool = False


def pending_rows(table: QuerySet[TaskResult], until: datetime) -> QuerySet[TaskResult]:
    """PENDING rows written within :data:`HORIZON` before ``until`` (the status index)."""
    return table.filter(status=PENDING, date_done__gte=until - HORIZON)


def sample(alias: str, now: datetime | None = None) -> bool:
    """Take this minute's sample unless one was taken; True if this call took it."""
    now = now or timezone.now()
    minute, hour = floor(now, MINUTE), floor(now, HOUR)
    samples = HistoryBacklog._default_manager.db_manager(alias)
    if samples.filter(tier=MINUTE, bucket=minute).exists():
        return False
    counted, capped = _count_by_queue(alias, now)
    if not counted:
        counted[NOTHING] = 0
    buckets = [(MINUTE, minute)]
    if not samples.filter(tier=HOUR, bucket=hour).exists():
        buckets.append((HOUR, hour))  # the hour's first sample
    rows = [
        HistoryBacklog(tier=tier, bucket=bucket, queue=queue, count=count, capped=capped)
        for tier, bucket in buckets
        for queue, count in counted.items()
    ]
    # Another worker sampling the same minute at once: its rows win, ours are ignored.
    samples.bulk_create(rows, ignore_conflicts=True)
    return True


def _count_by_queue(alias: str, now: datetime) -> tuple[dict[str, int], bool]:
    """PENDING rows per queue among the first :data:`MAX_BACKLOG` + 1, counted in the database."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    table = quote(TaskResult._meta.db_table)
    queue, status, done = (
        quote(str(field.column))
        for field in concrete_fields(TaskResult, ("queue", "status", "date_done"))
    )
    cutoff = connection.ops.adapt_datetimefield_value(now - HORIZON)
    sql = (
        f"SELECT w.{queue}, COUNT(*) FROM (SELECT {queue} FROM {table} "
        f"WHERE {status} = %s AND {done} >= %s LIMIT %s) w GROUP BY w.{queue}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [PENDING, cutoff, MAX_BACKLOG + 1])
        counted = {name or "": count for name, count in cursor.fetchall()}
    capped = sum(counted.values()) > MAX_BACKLOG
    return counted, capped


def trend(alias: str, start: datetime, end: datetime) -> dict[str, list[Sample]]:
    """Each queue's samples from ``start`` to ``end``, oldest first (minutes or hours).

    Every queue has a point at every sample: zero where it had nothing waiting.
    """
    tier = MINUTE if end - start <= MINUTE_SAMPLES_UP_TO else HOUR
    rows = (
        HistoryBacklog._default_manager.db_manager(alias)
        .filter(tier=tier, bucket__gte=floor(start, tier), bucket__lt=end)
        .order_by("bucket")
        .values_list("queue", "bucket", "count", "capped")
    )
    taken: dict[datetime, bool] = {}
    counts: dict[str, dict[datetime, int]] = defaultdict(dict)
    for queue, bucket, count, capped in rows:
        taken[bucket] = taken.get(bucket, False) or capped
        if count:
            counts[queue][bucket] = count
    return {
        queue: [Sample(at, by_bucket.get(at, 0), capped) for at, capped in taken.items()]
        for queue, by_bucket in counts.items()
    }
