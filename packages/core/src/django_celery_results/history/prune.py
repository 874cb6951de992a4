"""Pruning the history: minute buckets after 8 days, the rest after ``HISTORY_RETENTION``.

Run by cleanup, after its steps. Pruning never touches the running totals the metrics'
counters are read from.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Min, Model

from ..conf import app_settings
from ..models import HistoryCount, HistorySpread
from .buckets import MINUTE, MINUTE_RETENTION

#: Buckets deleted per transaction: this much time of them.
SLICE = timedelta(hours=1)


def prune(alias: str, now: datetime) -> int:
    """Delete the buckets past their retention; return how many rows went."""
    keep = app_settings().HISTORY_RETENTION
    deleted = 0
    for model in (HistoryCount, HistorySpread):
        deleted += _delete_before(model, alias, now - MINUTE_RETENTION, tier=MINUTE)
        deleted += _delete_before(model, alias, now - keep, tier__gt=MINUTE)
    return deleted


def _delete_before(model: type[Model], alias: str, cutoff: datetime, **tiers: int) -> int:
    """Delete ``model``'s buckets older than ``cutoff``, a :data:`SLICE` per transaction."""
    table = model._default_manager.db_manager(alias).filter(**tiers)
    oldest = table.aggregate(oldest=Min("bucket"))["oldest"]
    deleted = 0
    while oldest is not None and oldest < cutoff:
        bound = min(oldest + SLICE, cutoff)
        with transaction.atomic(using=alias):
            deleted += table.filter(bucket__lt=bound).delete()[0]
        oldest = bound if bound < cutoff else None
    return deleted
