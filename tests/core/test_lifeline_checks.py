"""System checks of the lifeline: an invalid setting (E009), and no STARTED rows (W006)."""

from __future__ import annotations

import pytest
from celery import Celery
from django.test import override_settings

from django_celery_results.checks import check_lifeline


@pytest.fixture
def current(app: Celery) -> Celery:
    """The core tests' app (``django-db``), current."""
    return app


def ids(app: Celery) -> list[str]:
    return [str(message.id) for message in check_lifeline()]


def test_track_started_on_says_nothing(current: Celery) -> None:
    current.conf.task_track_started = True
    assert ids(current) == []


def test_without_track_started_there_is_nothing_to_watch(current: Celery) -> None:
    current.conf.task_track_started = False
    assert ids(current) == ["django_celery_results.W006"]
    with override_settings(DJANGO_CELERY_RESULTS={"LIFELINE_GRACE": 0}):
        assert ids(current) == []  # the lifeline is off: nothing to warn of


def test_an_invalid_lifeline_setting_is_an_error(current: Celery) -> None:
    current.conf.task_track_started = True
    with override_settings(DJANGO_CELERY_RESULTS={"LIFELINE_GRACE": 5, "WORKER_HEARTBEAT": 15}):
        messages = check_lifeline()
    assert [message.id for message in messages] == ["django_celery_results.E009"]
    assert "The lifeline settles nothing" in str(messages[0].hint)
