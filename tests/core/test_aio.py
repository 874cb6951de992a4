"""``aio.wait`` where there are no notifications: an async poll, same semantics as ``get()``."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult, GroupResult
from django.db import connections

from django_celery_results import aio
from django_celery_results.testing.suite.helpers import new_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app() -> Any:
    app = Celery("aio", set_as_current=False)
    app.conf.result_backend = "django-db"
    yield app
    app.close()


def later(action: Any) -> threading.Timer:
    """Run ``action`` in 0.2 s on another thread (a worker storing the result)."""

    def run() -> None:
        try:
            action()
        finally:
            connections.close_all()

    timer = threading.Timer(0.2, run)
    timer.start()
    return timer


def test_waits_for_a_result_stored_later(app: Any) -> None:
    task_id = new_id()
    timer = later(lambda: app.backend.mark_as_done(task_id, {"answer": 42}))
    try:
        value = async_to_sync(aio.wait)(AsyncResult(task_id, app=app), timeout=30, interval=0.05)
    finally:
        timer.join()
    assert value == {"answer": 42}


def test_a_failure_raises_or_is_returned(app: Any) -> None:
    task_id = new_id()
    app.backend.mark_as_failure(task_id, KeyError("missing"))
    result = AsyncResult(task_id, app=app)
    with pytest.raises(KeyError, match="missing"):
        async_to_sync(aio.wait)(result, timeout=5)
    assert isinstance(async_to_sync(aio.wait)(result, timeout=5, propagate=False), KeyError)


def test_times_out_like_get(app: Any) -> None:
    with pytest.raises(CeleryTimeoutError):
        async_to_sync(aio.wait)(AsyncResult(new_id(), app=app), timeout=0.2, interval=0.05)


def test_a_group_in_order(app: Any) -> None:
    ids = [new_id() for _ in range(5)]
    for index, task_id in enumerate(reversed(ids)):
        app.backend.mark_as_done(task_id, len(ids) - 1 - index)
    group = GroupResult(new_id(), [AsyncResult(i, app=app) for i in ids], app=app)
    assert async_to_sync(aio.wait_group)(group, timeout=5) == [0, 1, 2, 3, 4]
