"""The changelist's search: index lookups only, unless scanning args is switched on.

An id-shaped term (a UUID, with or without dashes) is an exact ``task_id`` lookup on the
unique index. Any other term matches an exact ``task_id`` (ids need not be UUIDs), the
start of a task id (8 or more hex digits: the list shows ids cut to 8), or the start of
the task name, periodic task name, worker or exception type. Each prefix is an index
range: PostgreSQL's ``LIKE 'term%'`` uses the pattern-operator indexes of migration 0022
(its collation keeps plain ones out), MySQL's and MariaDB's use their own, and SQLite,
whose ``LIKE`` ignores case and so no index, gets the range spelt out beside it.
Upstream searched ``icontains`` over the TEXT args and kwargs too, a full scan of the
table on every search; that is
``DJANGO_CELERY_RESULTS["ADMIN_SEARCH_ARGS"]``, off by default.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db import connections
from django.db.models import Q, QuerySet

from ..models import HistorySeries

#: A UUID as Celery makes task ids, with or without its dashes.
UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
#: The start of a task id, as the list shows it (8 hex digits) or longer.
ID_PREFIX = re.compile(r"[0-9a-fA-F]{8}[0-9a-fA-F-]*")
#: Columns matched by prefix (each has an index).
PREFIX_COLUMNS = ("task_name", "periodic_task_name", "worker", "exception_type")
#: Columns scanned with ``icontains`` when ``ADMIN_SEARCH_ARGS`` is on.
SCANNED_COLUMNS = ("task_args", "task_kwargs")


def is_id_shaped(term: str) -> bool:
    """Does ``term`` look like a Celery task id (a UUID)?"""
    return UUID_SHAPE.fullmatch(term) is not None


def search(queryset: QuerySet[Any], term: str, *, scan_args: bool = False) -> QuerySet[Any]:
    """Return the rows of ``queryset`` that ``term`` finds (see the module docstring)."""
    term = term.strip()
    if not term:
        return queryset
    if is_id_shaped(term):
        # Pasted without dashes, or in capitals: the id as Celery writes it, too.
        return queryset.filter(task_id__in={term, str(uuid.UUID(term))})
    found = Q(task_id=term)
    if ID_PREFIX.fullmatch(term):
        found |= starts_with(queryset, "task_id", term.lower())
    for column in PREFIX_COLUMNS:
        found |= starts_with(queryset, column, term)
    if scan_args:
        for column in SCANNED_COLUMNS:
            found |= Q(**{f"{column}__icontains": term})
    return queryset.filter(found)


def starts_with(queryset: QuerySet[Any], column: str, prefix: str) -> Q:
    """``column`` starts with ``prefix``, in a form the database serves from an index."""
    exact = Q(**{f"{column}__startswith": prefix})
    if connections[queryset.db].vendor != "sqlite" or not prefix:
        return exact
    # SQLite compares text byte by byte: every value starting with the prefix lies in
    # [prefix, prefix with its last character raised by one).
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return exact & Q(**{f"{column}__gte": prefix, f"{column}__lt": upper})


#: Names suggested at most.
MAX_SUGGESTIONS = 10


def suggested_names(database: str, term: str) -> list[str]:
    """Task names that contain ``term``, from the rolled-up history's (a small table)."""
    term = term.strip()
    if len(term) < 3 or is_id_shaped(term):
        return []
    series = HistorySeries._default_manager.using(database)
    found = series.filter(task_name__icontains=term).exclude(task_name="")
    names = found.order_by("task_name").values_list("task_name", flat=True).distinct()
    return list(names[:MAX_SUGGESTIONS])
