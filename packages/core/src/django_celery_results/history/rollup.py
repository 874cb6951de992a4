"""The catch-up: count every row written since the last one into the history, exactly once.

Every write of a result row sets ``rolled_up`` to false (new rows have it false by
default). A catch-up takes the history's lock, reads such rows a chunk at a time (locking
them, skipping those a writer holds), and moves each one's contribution: it takes away what
the row's ``history_mark`` says was counted before, adds what the row says now, and stores
the new mark with ``rolled_up`` true, in the same transaction as the counts. A row is
thus counted once, in its final state, however often and however late it was written.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..conf import app_settings
from ..failures import stored_exception_type
from ..models import HistoryCount, HistorySpread, HistoryState, TaskResult
from ..states import FAILURE, TERMINAL_STATES
from . import sketch, writes
from .buckets import TIERS, floor, from_minute_number, minute_number
from .series import IN_CHUNK, Dictionary, Key
from .totals import Labels, Totals

logger = logging.getLogger(__name__)

#: Rows counted per transaction: short, beside the workers' writes.
CHUNK = 1000
#: The columns a catch-up reads of each row.
COLUMNS = (
    "id",
    "task_id",
    "status",
    "task_name",
    "queue",
    "worker",
    "exception_type",
    "content_type",
    "date_created",
    "date_started",
    "date_done",
    "history_mark",
)


@dataclass(frozen=True)
class Mark:
    """What the history counted a row as: its minute, series, and wait and run bins."""

    minute: int
    series: int
    wait: str = ""
    run: str = ""

    def text(self) -> str:
        """The mark as the row stores it."""
        return f"{self.minute}:{self.series}:{self.wait}:{self.run}"

    @classmethod
    def parse(cls, text: str | None) -> Mark | None:
        """Read a stored mark; None for none, or one this version can't read."""
        if not text:
            return None
        try:
            minute, series, wait, run = text.split(":")
            return cls(int(minute), int(series), wait, run)
        except ValueError:
            logger.warning("history: unreadable history_mark %r: counted as new", text[:64])
            return None


@dataclass
class Progress:
    """What a catch-up did."""

    #: Rows counted (a row written again is counted again, moving its contribution).
    rows: int = 0
    #: Another catch-up held the lock: this one counted nothing.
    busy: bool = False
    #: The budget ran out with rows still to count.
    remaining: bool = False


@dataclass
class _Added:
    """The change one catch-up makes to one count bucket."""

    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    example: str = ""

    def add(self, done: datetime, task_id: str) -> None:
        self.count += 1
        if self.first is None or done < self.first:
            self.first = done
        if self.last is None or done >= self.last:
            self.last, self.example = done, task_id


@dataclass
class _Chunk:
    """The counts, spreads and totals one chunk of rows changes."""

    counts: dict[tuple[int, datetime, int], _Added] = field(
        default_factory=lambda: defaultdict(_Added)
    )
    #: (tier, bucket, task name) → kind ("wait", "run") → bin → signed change.
    spreads: dict[tuple[int, datetime, str], dict[str, sketch.Bins]] = field(
        default_factory=lambda: defaultdict(lambda: {"wait": {}, "run": {}})
    )
    totals: Totals = field(default_factory=Totals)
    #: Minute number → each tier's bucket of it (many rows share a minute).
    buckets: dict[int, list[tuple[int, datetime]]] = field(default_factory=dict)


def catch_up(
    using: str | None = None,
    *,
    budget: float | None = None,
    wait: bool = False,
    on_chunk: Callable[[Progress], None] | None = None,
    only: Q | None = None,
    chunk: int | None = None,
) -> Progress:
    """Count the rows written since the last catch-up, a chunk per transaction.

    ``budget`` bounds the seconds spent (None: until every row is counted); ``wait``
    waits for a catch-up running elsewhere instead of leaving the work to it. ``only``
    counts just the rows it matches (those about to be deleted), waiting for a writer
    that holds one instead of skipping it. ``chunk`` rows are counted per transaction
    (default :data:`CHUNK`).
    """
    alias = using or router.db_for_write(TaskResult) or "default"
    deadline = None if budget is None else time.monotonic() + budget
    progress = Progress()
    dictionary = Dictionary(alias)
    _ensure_state(alias)
    while True:
        with transaction.atomic(using=alias):
            if not _lock(alias, wait):
                progress.busy = True
                return progress
            labels = Labels(alias, app_settings().METRICS_MAX_LABEL_VALUES)
            counted, full = _count_chunk(alias, dictionary, labels, only, chunk or CHUNK)
            progress.rows += counted
            state = HistoryState._default_manager.db_manager(alias).filter(id=1)
            if full or only is not None:
                state.update(rows_counted=F("rows_counted") + counted)
            else:
                state.update(rows_counted=F("rows_counted") + counted, caught_up_at=timezone.now())
        if on_chunk is not None:
            on_chunk(progress)
        if not full:
            return progress
        if deadline is not None and time.monotonic() >= deadline:
            progress.remaining = True
            return progress


def _ensure_state(alias: str) -> None:
    state = HistoryState._default_manager.db_manager(alias)
    if not state.filter(id=1).exists():
        try:
            with transaction.atomic(using=alias):
                state.create(id=1)
        except IntegrityError:
            pass  # created by another catch-up just now


def _lock(alias: str, wait: bool) -> bool:
    """Take the history's lock for this transaction; False if another holds it."""
    state = HistoryState._default_manager.db_manager(alias).filter(id=1)
    features = connections[alias].features
    if not features.has_select_for_update:
        # SQLite: a write takes the database's one write lock until the commit.
        return bool(state.update(rows_counted=F("rows_counted")))
    skip = not wait and features.has_select_for_update_skip_locked
    return bool(list(state.select_for_update(skip_locked=skip).values_list("id", flat=True)))


def _count_chunk(
    alias: str, dictionary: Dictionary, labels: Labels, only: Q | None, chunk: int
) -> tuple[int, bool]:
    """Count one chunk of rows; return how many, and whether the chunk was full."""
    table = TaskResult._default_manager.db_manager(alias)
    features = connections[alias].features
    waiting = table.filter(rolled_up=False).order_by("id")
    if only is not None:
        waiting = waiting.filter(only)
    if features.has_select_for_update:
        skip = only is None and features.has_select_for_update_skip_locked
        waiting = waiting.select_for_update(skip_locked=skip)
    rows = [
        dict(zip(COLUMNS, values, strict=True)) for values in waiting.values_list(*COLUMNS)[:chunk]
    ]
    if not rows:
        return 0, False
    _name_exceptions(table, rows)
    now = timezone.now()
    changes = _Chunk()
    marks = [Mark.parse(row["history_mark"]) for row in rows]
    keys = [_key_of(row) for row in rows]
    ids = dictionary.ids_of({key for key in keys if key is not None})
    old_keys = dictionary.keys_of({mark.series for mark in marks if mark is not None})
    horizon = now - app_settings().HISTORY_RETENTION
    marked: list[tuple[int, str | None, str | None]] = []
    for row, old, key in zip(rows, marks, keys, strict=True):
        new = None if key is None else _mark_of(row, ids[key])
        if new != old:
            if old is not None and old.series in old_keys:
                _move(changes, old, old_keys[old.series], -1, horizon)
            if new is not None and key is not None:
                _move(changes, new, key, 1, horizon, row)
                _add_totals(changes.totals, labels, row, key, old, old_keys, now)
        marked.append((row["id"], None if new is None else new.text(), row["exception_type"]))
    _save_counts(alias, changes.counts)
    _save_spreads(alias, changes.spreads)
    changes.totals.save(alias, dictionary)
    labels.save()
    columns = ("history_mark", "exception_type")
    writes.update(alias, TaskResult, columns, marked, constants={"rolled_up": "TRUE"})
    return len(rows), len(rows) == chunk


def _name_exceptions(table: Any, rows: list[dict[str, Any]]) -> None:
    """Name the exception of FAILURE rows written without it, from a stored JSON result.

    Rows written before the column existed, or by upstream's code; pickle is never decoded.
    """
    unnamed = {
        row["id"]: row
        for row in rows
        if row["status"] == FAILURE
        and row["exception_type"] is None
        and row["content_type"] == "application/json"
    }
    if not unnamed:
        return
    ids = list(unnamed)
    for start in range(0, len(ids), IN_CHUNK):
        found = table.filter(id__in=ids[start : start + IN_CHUNK]).values_list("id", "result")
        for row_id, result in found:
            unnamed[row_id]["exception_type"] = stored_exception_type("application/json", result)


def _key_of(row: dict[str, Any]) -> Key | None:
    """The series a finished row counts in; None for a row that has not finished."""
    if row["status"] not in TERMINAL_STATES:
        return None
    return Key(
        row["task_name"] or "",
        row["status"],
        row["queue"] or "",
        row["worker"] or "",
        row["exception_type"] or "",
    )


def wait_seconds(row: dict[str, Any]) -> float | None:
    """Sent (``TRACK_PENDING``'s ``date_created``) to started; None when not measured.

    Without a PENDING row the first write creates the row as it starts: its
    ``date_created`` is its ``date_started``, and the wait is unknown, not zero.
    """
    started, created = row["date_started"], row["date_created"]
    if started is None or created is None or created == started:
        return None
    return (started - created).total_seconds()  # type: ignore[no-any-return]


def run_seconds(row: dict[str, Any]) -> float | None:
    """Started (``track_started``) to done; None when the start was not recorded."""
    if row["date_started"] is None:
        return None
    return (row["date_done"] - row["date_started"]).total_seconds()  # type: ignore[no-any-return]


def _mark_of(row: dict[str, Any], series: int) -> Mark:
    wait, run = wait_seconds(row), run_seconds(row)
    return Mark(
        minute_number(row["date_done"]),
        series,
        "" if wait is None else sketch.bin_of(wait),
        "" if run is None else sketch.bin_of(run),
    )


def _move(
    changes: _Chunk,
    mark: Mark,
    key: Key,
    sign: int,
    horizon: datetime,
    row: dict[str, Any] | None = None,
) -> None:
    """Add (``sign`` 1) or take away (-1) one row's contribution, in every tier."""
    buckets = changes.buckets.get(mark.minute)
    if buckets is None:
        minute = from_minute_number(mark.minute)
        buckets = changes.buckets[mark.minute] = [(tier, floor(minute, tier)) for tier in TIERS]
    if sign < 0 and buckets[0][1] < horizon:
        return  # its buckets were pruned: nothing left to take it from
    for tier, bucket in buckets:
        added = changes.counts[(tier, bucket, mark.series)]
        if row is None:
            added.count += sign
        else:
            added.add(row["date_done"], row["task_id"])
        for kind, name in (("wait", mark.wait), ("run", mark.run)):
            if name:
                delta = changes.spreads[(tier, bucket, key.task_name)][kind]
                delta[name] = delta.get(name, 0) + sign


def _add_totals(
    totals: Totals,
    labels: Labels,
    row: dict[str, Any],
    key: Key,
    old: Mark | None,
    old_keys: dict[int, Key],
    now: datetime,
) -> None:
    """A task reaching a final state adds to the counters; its first one to the histograms."""
    previous = None if old is None else old_keys.get(old.series)
    if previous is not None and previous.state == key.state:
        return  # written again in the same state: not a new outcome
    bounded = labels.bounded(key, now)
    totals.count(bounded)
    if old is None:
        for kind, seconds in (("wait", wait_seconds(row)), ("run", run_seconds(row))):
            if seconds is not None:
                totals.observe(bounded.task_name, kind, seconds)


#: A stored count's columns, as ``_save_counts`` reads them.
COUNT_COLUMNS = ("id", "bucket", "series_id", "count", "first_done", "last_done", "example")


def _stored(
    table: Any, tier: int, keys: list[tuple[Any, ...]], column: str, fields: Sequence[str]
) -> Iterator[tuple[Any, ...]]:
    """``fields`` of the stored buckets that ``keys`` (tier, bucket, value) may name.

    Those of ``tier`` between the keys' first and last bucket, ``column`` among their values.
    """
    buckets = [key[1] for key in keys]
    wanted = sorted({key[2] for key in keys})
    for start in range(0, len(wanted), IN_CHUNK):
        yield from table.filter(
            tier=tier,
            bucket__gte=min(buckets),
            bucket__lte=max(buckets),
            **{f"{column}__in": wanted[start : start + IN_CHUNK]},
        ).values_list(*fields)


def _save_counts(alias: str, counts: dict[tuple[int, datetime, int], _Added]) -> None:
    table = HistoryCount._default_manager.db_manager(alias)
    for tier in TIERS:
        keys = [
            key for key, added in counts.items() if key[0] == tier and (added.count or added.last)
        ]
        if not keys:
            continue
        stored: dict[tuple[int, datetime, int], list[Any]] = {}
        found = _stored(table, tier, keys, "series_id", COUNT_COLUMNS)
        for row_id, bucket, series_id, count, first, last, example in found:
            stored[(tier, bucket, series_id)] = [row_id, count, first, last, example]
        new, changed, emptied = [], [], []
        for key in keys:
            added = counts[key]
            row = stored.get(key)
            if row is None:
                if added.count > 0 and added.first is not None and added.last is not None:
                    new.append(
                        (tier, key[1], key[2], added.count, added.first, added.last, added.example)
                    )
                continue
            row[1] += added.count
            if row[1] <= 0:
                emptied.append(row[0])
                continue
            if added.first is not None and added.first < row[2]:
                row[2] = added.first
            if added.last is not None and added.last >= row[3]:
                row[3], row[4] = added.last, added.example
            changed.append(row)
        writes.insert(alias, HistoryCount, ("tier", "bucket", "series", *COUNT_COLUMNS[3:]), new)
        writes.update(alias, HistoryCount, COUNT_COLUMNS[3:], changed)
        writes.delete(alias, HistoryCount, emptied)


def _save_spreads(
    alias: str, spreads: dict[tuple[int, datetime, str], dict[str, sketch.Bins]]
) -> None:
    table = HistorySpread._default_manager.db_manager(alias)
    for tier in TIERS:
        keys = [key for key, kinds in spreads.items() if key[0] == tier and any(kinds.values())]
        if not keys:
            continue
        stored: dict[tuple[int, datetime, str], tuple[int, str]] = {}
        found = _stored(table, tier, keys, "task_name", ("id", "bucket", "task_name", "bins"))
        for row_id, bucket, name, bins_text in found:
            stored[(tier, bucket, name)] = (row_id, bins_text)
        new, changed, emptied = [], [], []
        for key in keys:
            row = stored.get(key)
            kinds: dict[str, sketch.Bins] = {} if row is None else json.loads(row[1])
            for kind, delta in spreads[key].items():
                bins = kinds.setdefault(kind, {})
                _merge_signed(bins, delta)
                if not bins:
                    del kinds[kind]
            if row is None:
                if kinds:
                    new.append((tier, key[1], key[2], json.dumps(kinds)))
            elif not kinds:
                emptied.append(row[0])
            else:
                changed.append((row[0], json.dumps(kinds)))
        writes.insert(alias, HistorySpread, ("tier", "bucket", "task_name", "bins"), new)
        writes.update(alias, HistorySpread, ("bins",), changed)
        writes.delete(alias, HistorySpread, emptied)


def _merge_signed(bins: sketch.Bins, delta: sketch.Bins) -> None:
    """Apply a delta whose counts may be negative (a row moved out of the bucket)."""
    for name, count in delta.items():
        total = bins.get(name, 0) + count
        if total > 0:
            bins[name] = total
        else:
            bins.pop(name, None)
