"""The history's series dictionary: (task name, state, queue, worker, exception) ↔ a small id."""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from django.db import models

from ..models import HistorySeries

#: Values per ``IN`` list: below every database's limit of bind parameters.
IN_CHUNK = 500


class Key(NamedTuple):
    """What one series counts: finished tasks of one name, state, queue, worker, exception."""

    task_name: str
    state: str
    queue: str
    worker: str
    exception_type: str


def digest(*values: str) -> str:
    """A short, fixed-length unique key of text values (SHA-1 of them, separated)."""
    return hashlib.sha1("\x1f".join(values).encode(), usedforsecurity=False).hexdigest()


class Dictionary:
    """Series ids by key and keys by id, read from the table once and added to as needed.

    Only a catch-up holding the history's lock adds series, so two never add the same.
    """

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.ids: dict[Key, int] = {}
        self.keys: dict[int, Key] = {}

    def _table(self) -> models.Manager[HistorySeries]:
        return HistorySeries._default_manager.db_manager(self.alias)

    def ids_of(self, keys: set[Key]) -> dict[Key, int]:
        """The id of each key, adding the series not stored yet."""
        missing = [key for key in keys if key not in self.ids]
        if missing:
            self._read(key__in=[digest(*key) for key in missing])
            new = [key for key in missing if key not in self.ids]
            if new:
                self._table().bulk_create(
                    HistorySeries(key=digest(*key), **key._asdict()) for key in new
                )
                self._read(key__in=[digest(*key) for key in new])
        return {key: self.ids[key] for key in keys}

    def keys_of(self, ids: set[int]) -> dict[int, Key]:
        """The key of each series id (an unknown id is left out)."""
        missing = [series_id for series_id in ids if series_id not in self.keys]
        if missing:
            self._read(id__in=missing)
        return {series_id: self.keys[series_id] for series_id in ids if series_id in self.keys}

    def _read(self, **lookup: list[Any]) -> None:
        """Learn the stored series matching one ``__in`` lookup, a bounded list at a time."""
        ((name, values),) = lookup.items()
        for start in range(0, len(values), IN_CHUNK):
            for found in self._table().filter(**{name: values[start : start + IN_CHUNK]}):
                self._learn(found)

    def _learn(self, row: HistorySeries) -> None:
        key = Key(row.task_name, row.state, row.queue, row.worker, row.exception_type)
        self.ids[key] = row.id
        self.keys[row.id] = key
