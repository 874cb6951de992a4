"""The backlog's trend: PENDING rows per queue, sampled once a minute by the history thread.

A backlog is a level, not a flow: no sum of buckets gives it. So the history keeps
samples, each an exact count of the PENDING rows (``TRACK_PENDING``) of every queue at
the moment it was taken, up to :data:`MAX_BACKLOG` rows (a sample past that says so).
The first worker to catch up in a minute takes the minute's sample; the first sample of
each hour is also kept as the hour's, for windows longer than the minutes' 8 days.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from ..conf import app_settings
from ..models import HistoryBacklog, TaskResult
from ..states import PENDING
from .buckets import HOUR, MINUTE, floor

#: PENDING rows older than this are not a backlog but leftovers (their queue long gone).
HORIZON = timedelta(days=7)
#: PENDING rows counted at most, by the dashboard and by a sample.
MAX_BACKLOG = 100_000
#: Windows up to this long draw the trend from minute samples; longer ones from hours.
MINUTE_SAMPLES_UP_TO = timedelta(hours=6)


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
    if not app_settings().TRACK_PENDING:
        return False
    now = now or timezone.now()
    minute = floor(now, MINUTE)
    samples = HistoryBacklog._default_manager.db_manager(alias)
    if samples.filter(tier=MINUTE, bucket=minute).exists():
        return False
    table = TaskResult._default_manager.db_manager(alias).all()
    queues = pending_rows(table, now).order_by().values_list("queue", flat=True)
    counted = Counter(queue or "" for queue in queues[: MAX_BACKLOG + 1])
    capped = sum(counted.values()) > MAX_BACKLOG
    # A queue that emptied since the last sample gets a zero, so its line comes down.
    last = samples.filter(tier=MINUTE, bucket__lt=minute).order_by("-bucket").first()
    if last is not None:
        for queue in samples.filter(tier=MINUTE, bucket=last.bucket, count__gt=0).values_list(
            "queue", flat=True
        ):
            counted.setdefault(queue, 0)
    if not counted:
        counted[""] = 0  # the minute was sampled, and nothing waited
    hour = floor(now, HOUR)
    rows = [
        HistoryBacklog(tier=tier, bucket=bucket, queue=queue, count=count, capped=capped)
        for tier, bucket in ((MINUTE, minute), (HOUR, hour))
        for queue, count in counted.items()
    ]
    # Another worker sampling the same minute at once: its rows win, ours are ignored.
    samples.bulk_create(rows, ignore_conflicts=True)
    return True


def trend(alias: str, start: datetime, end: datetime) -> dict[str, list[Sample]]:
    """Each queue's samples from ``start`` to ``end``, oldest first (minutes or hours)."""
    tier = MINUTE if end - start <= MINUTE_SAMPLES_UP_TO else HOUR
    rows = (
        HistoryBacklog._default_manager.db_manager(alias)
        .filter(tier=tier, bucket__gte=floor(start, tier), bucket__lt=end)
        .order_by("bucket")
        .values_list("queue", "bucket", "count", "capped")
    )
    by_queue: dict[str, list[Sample]] = defaultdict(list)
    for queue, bucket, count, capped in rows:
        by_queue[queue].append(Sample(bucket, count, capped))
    return dict(by_queue)
