"""One ``celery.backend_cleanup`` per period for the whole cluster, however many beats send it.

Several workers running embedded beat (``-B``), or a second beat started by mistake, each
send ``celery.backend_cleanup`` on their schedule. The first run in a period leases the
``cleanup`` duty (``election``) for half the period; a run while the lease holds is
skipped, and says so in the worker's log. The period is the beat schedule's interval for
``celery.backend_cleanup`` where the app's ``beat_schedule`` gives one as a number, a
``timedelta`` or a ``schedule``; otherwise beat's default, a day (a ``crontab`` is taken
as daily too). ``manage.py celery_results_cleanup`` is not elected: an operator's run
always runs.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.db import router

from ..models import Lease
from . import election

logger = logging.getLogger("django_celery_results.cleanup")

DUTY = "cleanup"
CLEANUP_TASK = "celery.backend_cleanup"
#: Beat's own schedule for it: daily, at 4 a.m.
DEFAULT_PERIOD = timedelta(days=1)
#: The lease's shortest term: runs this close together are one run sent twice.
MIN_TERM = timedelta(seconds=30)


def elected(app: Any) -> bool:
    """Whether this ``celery.backend_cleanup`` runs: no other ran in this period."""
    term = max(period(app) / 2, MIN_TERM)
    alias = router.db_for_write(Lease) or "default"
    if election.lease(DUTY, alias, uuid.uuid4().hex, term):
        return True
    logger.info(
        "Cleanup skipped: another celery.backend_cleanup ran less than %s ago (several "
        "beats send it; one run per period is enough).",
        term,
    )
    return False


def period(app: Any) -> timedelta:
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
    return DEFAULT_PERIOD
