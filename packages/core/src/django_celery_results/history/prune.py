"""Pruning the history: short buckets and samples after 8 days, the rest after the retention.

Run by cleanup, after its steps. Pruning never touches the running totals the metrics'
counters are read from.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Model

from ..conf import app_settings
from ..models import HistoryBacklog, HistoryCount, HistorySpread
from . import writes
from .buckets import LONG_TIERS, MINUTE_RETENTION, SHORT_TIERS

#: Buckets deleted per transaction.
CHUNK = 10_000


def prune(alias: str, now: datetime) -> int:
    """Delete the buckets past their retention; return how many rows went."""
    keep = app_settings().HISTORY_RETENTION
    deleted = 0
    for model in (HistoryCount, HistorySpread, HistoryBacklog):
        deleted += _delete_before(model, alias, now - MINUTE_RETENTION, SHORT_TIERS)
        deleted += _delete_before(model, alias, now - keep, LONG_TIERS)
    return deleted


def _delete_before(
    model: type[Model], alias: str, cutoff: datetime, tiers: tuple[int, ...]
) -> int:
    """Delete ``model``'s ``tiers`` buckets older than ``cutoff``, :data:`CHUNK` a transaction."""
    table = model._default_manager.db_manager(alias).filter(bucket__lt=cutoff, tier__in=tiers)
    deleted = 0
    while True:
        ids = list(table.order_by().values_list("id", flat=True)[:CHUNK])
        if ids:
            with transaction.atomic(using=alias):
                writes.delete(alias, model, ids)
            deleted += len(ids)
        if len(ids) < CHUNK:
            return deleted
