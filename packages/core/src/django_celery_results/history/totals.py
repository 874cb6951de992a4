"""Running totals for Prometheus: counters and histograms that never go down, labels bounded.

A catch-up adds to them and nothing takes away: pruning old buckets leaves them, and a task
whose final state changes counts once more, in its new state (a counter counts tasks
reaching a final state). Each label keeps at most ``METRICS_MAX_LABEL_VALUES`` values, the
first ones seen; later ones count under ``other``. A value idle for :data:`IDLE` gives its
place up to a new one (worker names are often short-lived pod names), and its series end.
"""

from __future__ import annotations

import bisect
import json
from collections import defaultdict
from datetime import datetime, timedelta

from ..models import HistoryLabel, HistorySeries, HistoryTotal, HistoryTotalSpread
from . import writes
from .series import IN_CHUNK, Dictionary, Key, digest

#: The value that stands for every label value past the bound.
OTHER = "other"
#: The labels of a series, in ``Key`` order.
LABELS = ("task", "state", "queue", "worker", "exception")
#: A value unseen this long may be replaced by a new one.
IDLE = timedelta(days=1)
#: A value's ``last_seen`` is written again only when it moved this much.
TOUCH = timedelta(minutes=5)
#: The histograms' upper bounds in seconds (the last bucket, ``+Inf``, is implied).
BOUNDS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip


class Labels:
    """The admitted values of each label, read once per catch-up and written back by it."""

    def __init__(self, alias: str, bound: int) -> None:
        self.alias = alias
        self.bound = bound
        self.table = HistoryLabel._default_manager.db_manager(alias)
        self.admitted: dict[tuple[str, str], HistoryLabel] = {
            (row.label, row.value): row for row in self.table.all()
        }
        self.touched: dict[int, HistoryLabel] = {}
        #: Keys bounded in this catch-up (a key's values are checked once per catch-up).
        self.seen: dict[Key, Key] = {}

    def bounded(self, key: Key, now: datetime) -> Key:
        """``key`` with each value past its label's bound replaced by :data:`OTHER`."""
        known = self.seen.get(key)
        if known is None:
            known = self.seen[key] = self._bounded(key, now)
        return known

    def _bounded(self, key: Key, now: datetime) -> Key:
        return Key(
            *(self._value(label, value, now) for label, value in zip(LABELS, key, strict=True))
        )

    def _value(self, label: str, value: str, now: datetime) -> str:
        row = self.admitted.get((label, value))
        if row is not None:
            if now - row.last_seen >= TOUCH:
                row.last_seen = now
                self.touched[row.id] = row
            return value
        full = sum(1 for kind, _value in self.admitted if kind == label) >= self.bound
        if full and not self._evict_idle(label, now):
            return OTHER
        row = self.table.create(label=label, key=digest(value), value=value, last_seen=now)
        self.admitted[(label, value)] = row
        return value

    def _evict_idle(self, label: str, now: datetime) -> bool:
        """Give the place of the label's longest-idle value up, if idle for :data:`IDLE`."""
        rows = [row for (kind, _value), row in self.admitted.items() if kind == label]
        idlest = min(rows, key=lambda row: row.last_seen)
        if now - idlest.last_seen < IDLE:
            return False
        field = Key._fields[LABELS.index(label)]
        series = HistorySeries._default_manager.db_manager(self.alias)
        ended = series.filter(**{field: idlest.value}).values_list("id", flat=True)
        HistoryTotal._default_manager.db_manager(self.alias).filter(series_id__in=ended).delete()
        if label == "task":
            spreads = HistoryTotalSpread._default_manager.db_manager(self.alias)
            spreads.filter(task_name=idlest.value).delete()
        self.table.filter(id=idlest.id).delete()
        del self.admitted[(label, idlest.value)]
        self.touched.pop(idlest.id, None)
        return True

    def save(self) -> None:
        """Write the ``last_seen`` of the values seen again."""
        if self.touched:
            self.table.bulk_update(list(self.touched.values()), ["last_seen"])
            self.touched.clear()


class Totals:
    """What one catch-up adds to the running totals, written in a few statements."""

    def __init__(self) -> None:
        self.counts: dict[Key, int] = defaultdict(int)
        self.spreads: dict[tuple[str, str], list[float]] = defaultdict(list)

    def count(self, key: Key) -> None:
        """One more task reached the final state of ``key`` (labels already bounded)."""
        self.counts[key] += 1

    def observe(self, task_name: str, kind: str, seconds: float) -> None:
        """One more wait or run time of ``task_name`` (bounded)."""
        self.spreads[(task_name, kind)].append(seconds)

    def save(self, alias: str, dictionary: Dictionary) -> None:
        """Add the counts and observations to the stored totals."""
        if self.counts:
            ids = dictionary.ids_of(set(self.counts))
            table = HistoryTotal._default_manager.db_manager(alias)
            wanted = sorted(ids.values())
            stored: dict[int, list[int]] = {}
            for start in range(0, len(wanted), IN_CHUNK):
                part = table.filter(series_id__in=wanted[start : start + IN_CHUNK])
                for row_id, series_id, count in part.values_list("id", "series_id", "count"):
                    stored[series_id] = [row_id, count]
            new, changed = [], []
            for key, added in self.counts.items():
                row = stored.get(ids[key])
                if row is None:
                    new.append((ids[key], added))
                else:
                    changed.append((row[0], row[1] + added))
            writes.insert(alias, HistoryTotal, ("series", "count"), new)
            writes.update(alias, HistoryTotal, ("count",), changed)
        if self.spreads:
            self._save_spreads(alias)

    def _save_spreads(self, alias: str) -> None:
        spreads = HistoryTotalSpread._default_manager.db_manager(alias)
        names = sorted({name for name, _kind in self.spreads})
        found: dict[tuple[str, str], tuple[int, str, float, int]] = {}
        for start in range(0, len(names), IN_CHUNK):
            part = spreads.filter(task_name__in=names[start : start + IN_CHUNK])
            for row_id, name, kind, stored, total, count in part.values_list(
                "id", "task_name", "kind", "buckets", "total_seconds", "count"
            ):
                found[(name, kind)] = (row_id, stored, total, count)
        new, changed = [], []
        for (name, kind), observed in self.spreads.items():
            row = found.get((name, kind))
            buckets = (json.loads(row[1]) if row else []) or [0] * (len(BOUNDS) + 1)
            for seconds in observed:
                buckets[bisect.bisect_left(BOUNDS, seconds)] += 1
            total = (row[2] if row else 0.0) + sum(observed)
            count = (row[3] if row else 0) + len(observed)
            if row is None:
                new.append((name, kind, json.dumps(buckets), total, count))
            else:
                changed.append((row[0], json.dumps(buckets), total, count))
        columns = ("task_name", "kind", "buckets", "total_seconds", "count")
        writes.insert(alias, HistoryTotalSpread, columns, new)
        writes.update(alias, HistoryTotalSpread, columns[2:], changed)
