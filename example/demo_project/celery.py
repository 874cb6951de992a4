"""The Celery app, configured from Django's settings (the ``CELERY_`` ones)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

app = Celery("demo_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Test knobs of the end-to-end tests (tests/e2e/test_lifeline.py), off unless set:
# a worker whose clock is DEMO_CLOCK_SKEW seconds off, and lifeline sweeps that skip the
# election (so that two workers' sweeps race).
if "DEMO_CLOCK_SKEW" in os.environ:
    from datetime import timedelta

    from django.utils import timezone

    _skew = timedelta(seconds=float(os.environ["DEMO_CLOCK_SKEW"]))
    _real_now = timezone.now
    timezone.now = lambda: _real_now() + _skew
if os.environ.get("DEMO_ELECTION_RACE") == "1":
    import contextlib

    from celery.signals import worker_init

    @worker_init.connect
    def _race_the_election(**kwargs: object) -> None:
        from django_celery_results.workers import election

        election.elected = lambda *args, **kw: contextlib.nullcontext(True)  # type: ignore[assignment]
