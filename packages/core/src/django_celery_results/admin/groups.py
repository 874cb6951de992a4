"""A group result's members, for its admin page: each one's state, and how far the group is."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from celery import states

from ..models import GroupResult, TaskResult

#: Members listed on a group's page, at most (the count covers them all).
MAX_MEMBERS = 1000


@dataclass
class Members:
    """A group's member tasks, as its stored result names them, and their states now."""

    #: ``(task id, its row or None when no row is stored)``, in the group's order.
    rows: list[tuple[str, TaskResult | None]] = field(default_factory=list)
    total: int = 0
    #: The stored result could not be read: nothing is listed.
    unreadable: bool = False

    @property
    def states(self) -> Counter[str]:
        """How many members are in each state (PENDING for a member without a row)."""
        return Counter(row.status if row else states.PENDING for _, row in self.rows)

    @property
    def done(self) -> int:
        """Members in a ready state (SUCCESS, FAILURE, REVOKED)."""
        return sum(n for state, n in self.states.items() if state in states.READY_STATES)

    @property
    def failed(self) -> int:
        """Members that failed."""
        return self.states.get(states.FAILURE, 0)


def member_ids(group: GroupResult) -> list[str] | None:
    """The task ids a stored group names (Celery's ``as_tuple``); None when unreadable.

    Only JSON is read: a pickled group is never decoded here (pickle runs code).
    """
    if group.content_type != "application/json" or not group.result:
        return None
    try:
        _head, nodes = json.loads(group.result)
        return [str(node[0][0]) for node in nodes]
    except (ValueError, TypeError, IndexError, KeyError, RecursionError):
        return None


def members(group: GroupResult) -> Members:
    """The members of ``group`` and their rows, read through the ``task_id`` index."""
    ids = member_ids(group)
    if ids is None:
        return Members(unreadable=True)
    shown = ids[:MAX_MEMBERS]
    table = TaskResult._default_manager.using(group._state.db)
    found: dict[str, Any] = {row.task_id: row for row in table.filter(task_id__in=shown)}
    return Members([(task_id, found.get(task_id)) for task_id in shown], len(ids))
