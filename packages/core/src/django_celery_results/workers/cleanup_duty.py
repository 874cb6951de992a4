"""One ``celery.backend_cleanup`` per period for the whole cluster, however many beats send it.

Several workers running embedded beat (``-B``), or a second beat started by mistake, each
send ``celery.backend_cleanup`` on their schedule. The first run in a period leases the
``cleanup`` duty (``election``) for half the period; a run while the lease holds is
skipped, and says so in the worker's log. The period is the beat schedule's interval for
``celery.backend_cleanup`` where the app's ``beat_schedule`` gives one as a number, a
``timedelta`` or a ``schedule``. Otherwise (beat's default daily ``crontab``, any other
``crontab``, a schedule kept elsewhere) the lease lasts :data:`UNKNOWN_PERIOD_TERM`: beats
sending on one crontab send within moments of each other. A run that fails gives the
lease back, so the next one may try again. ``manage.py celery_results_cleanup`` is not
elected: an operator's run always runs.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import router

from ..models import Lease
from . import election

logger = logging.getLogger("django_celery_results.cleanup")

DUTY = "cleanup"
CLEANUP_TASK = "celery.backend_cleanup"
#: The lease's term where the period is not known (a crontab): several beats on one
#: schedule send the task within moments of each other.
UNKNOWN_PERIOD_TERM = timedelta(minutes=10)
#: The lease's shortest term: runs this close together are one run sent twice.
MIN_TERM = timedelta(seconds=30)


@contextlib.contextmanager
def elected(app: Any) -> Iterator[bool]:
    """Whether this ``celery.backend_cleanup`` runs; a run that raises gives the lease back."""
    every = period(app)
    term = UNKNOWN_PERIOD_TERM if every is None else max(every / 2, MIN_TERM)
    alias = router.db_for_write(Lease) or "default"
    holder = uuid.uuid4().hex
    if election.lease(DUTY, alias, holder, term):
        try:
            yield True
        except BaseException:
            election.release(DUTY, alias, holder)
            raise
        return
    logger.info(
        "Cleanup skipped: another celery.backend_cleanup ran less than %s ago (several "
        "beats send it; one run per period is enough).",
        term,
    )
    yield False


def period(app: Any) -> timedelta | None:
    """The interval beat sends ``celery.backend_cleanup`` at, as far as the app says."""
    schedule = app.conf.beat_schedule or {}
    for entry in schedule.values():
        if not isinstance(entry, dict) or entry.get("task") != CLEANUP_TASK:
            continue
        every = entry.get("schedule")
        every = getattr(every, "run_every", every)  # celery.schedules.schedule
        if isinstance(every, timedelta) and every > timedelta(0):
            return every
        if isinstance(every, int | float) and not isinstance(every, bool) and every > 0:
            return timedelta(seconds=every)
    return None
