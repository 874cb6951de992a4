"""Who does a cluster-wide duty now: one worker at a time, elected through the database.

PostgreSQL's advisory locks and MySQL's ``GET_LOCK`` are held by a session and released
when it ends, even by a killed worker: the driver names the statements
(``session_lock_sql``). Elsewhere (SQLite, a generic driver, a database behind a
transaction-mode pooler) a worker leases the duty's row for a term and renews it while
it keeps the duty; a lost holder's lease expires.
The duty itself must still be safe to run twice (the lifeline settles a row with a
conditional update): an election only keeps the work from being done twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

from django.db import IntegrityError, connections, transaction
from django.db.models import Q

from ..drivers import driver_for
from ..models import Lease
from .clock import DatabaseNow


@contextlib.contextmanager
def elected(duty: str, alias: str, holder: str, term: timedelta) -> Iterator[bool]:
    """Yield whether ``holder`` does ``duty`` now; a session lock is released after.

    ``term`` is how long a lease row stays ``holder``'s without renewal.
    """
    ops = driver_for(Lease, alias).ops
    if ops.session_lock_sql is None or behind_transaction_pooler(alias):
        yield lease(duty, alias, holder, term)
        return
    take, release = ops.session_lock_sql
    key = ops.session_lock_key(duty)
    row = ops.fetch_one(take, [key])
    taken = bool(row and row[0])
    try:
        yield taken
    finally:
        if taken:
            ops.fetch_one(release, [key])


def behind_transaction_pooler(alias: str) -> bool:
    """Whether ``alias`` is reached through a transaction-mode pooler (PgBouncer's).

    Django's sign of one is ``DISABLE_SERVER_SIDE_CURSORS``. There, two statements of one
    client may run in two server sessions: a session lock could be taken in one and
    never released, so the election leases a row instead.
    """
    return bool(connections[alias].settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"))


def lease(duty: str, alias: str, holder: str, term: timedelta) -> bool:
    """Take or renew ``duty``'s lease for ``holder``; False while another holds it."""
    table = Lease._default_manager.db_manager(alias)
    free = Q(expires_at__lt=DatabaseNow()) | Q(holder=holder)
    if table.filter(free, name=duty).update(holder=holder, expires_at=DatabaseNow() + term):
        return True
    try:
        with transaction.atomic(using=alias):
            table.create(name=duty, holder=holder, expires_at=DatabaseNow() + term)
    except IntegrityError:  # held by another, or taken by another at the same moment
        return False
    return True


def release(duty: str, alias: str, holder: str) -> None:
    """Give a lease up before its term (a warm shutdown)."""
    Lease._default_manager.db_manager(alias).filter(name=duty, holder=holder).delete()
