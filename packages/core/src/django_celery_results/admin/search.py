"""The changelist's search: index lookups only, unless scanning args is switched on.

An id-shaped term (a UUID, with or without dashes) is an exact ``task_id`` lookup on the
unique index. Any other term matches an exact ``task_id`` (ids need not be UUIDs) or the
start of the task name, periodic task name, worker or exception type
(``LIKE 'term%'``, an index range
where the column's collation allows it). Upstream searched ``icontains`` over the TEXT
args and kwargs too, a full scan of the table on every search; that is
``DJANGO_CELERY_RESULTS["ADMIN_SEARCH_ARGS"]``, off by default.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.db.models import Q, QuerySet

#: A UUID as Celery makes task ids, with or without its dashes.
UUID_SHAPE = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
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
    for column in PREFIX_COLUMNS:
        found |= Q(**{f"{column}__startswith": term})
    if scan_args:
        for column in SCANNED_COLUMNS:
            found |= Q(**{f"{column}__icontains": term})
    return queryset.filter(found)
