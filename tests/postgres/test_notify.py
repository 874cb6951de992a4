"""``NOTIFY`` on PostgreSQL: finished writes notify in their own statement; the listener hears."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from celery import Celery, states
from celery.result import AsyncResult
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django_celery_results_postgres.listener import Listener

from django_celery_results.backends import hub as notify
from django_celery_results.drivers import ListenerLost, NotificationsUnavailable
from django_celery_results.models import TaskResult
from django_celery_results.testing.suite.helpers import new_id, row

CONFORMANCE_ALIASES = ["postgres"]
ON = override_settings(DJANGO_CELERY_RESULTS={"NOTIFY": True})


@pytest.fixture
def listener(driver: Any) -> Any:
    listener = driver.ops.listener()
    listener.connect()
    yield listener
    listener.close()


def heard(listener: Any, wanted: int) -> list[str]:
    """The task ids announced, waiting up to 5 s for ``wanted`` of them."""
    ids: list[str] = []
    for _ in range(50):
        ids += listener.wait(0.1)
        if len(ids) >= wanted:
            break
    return ids


@ON
def test_a_finished_write_notifies_in_the_same_statement(
    driver: Any, db_alias: str, listener: Any
) -> None:
    started, done = new_id(), new_id()
    with CaptureQueriesContext(connections[db_alias]) as queries:
        driver.ops.store_task_results([row(started, states.STARTED)])
        driver.ops.store_task_results([row(done, states.SUCCESS)])
    assert len(queries.captured_queries) == 2
    assert "pg_notify" not in queries.captured_queries[0]["sql"]
    assert "pg_notify" in queries.captured_queries[1]["sql"]
    assert heard(listener, 1) == [done]


@ON
def test_many_rows_notify_once_each_and_only_when_written(
    driver: Any, db_alias: str, listener: Any
) -> None:
    ids = [new_id() for _ in range(5)]
    driver.ops.store_task_results([row(i, states.FAILURE) for i in ids])
    assert sorted(heard(listener, 5)) == sorted(ids)
    # A STARTED that comes late is refused by precedence: no write, no notice.
    driver.ops.store_task_results([row(ids[0], states.STARTED)])
    assert listener.wait(0.3) == []


@ON
def test_the_update_after_started_notifies_once(driver: Any, db_alias: str, listener: Any) -> None:
    task_id = new_id()
    driver.ops.store_task_results([row(task_id, states.STARTED)])
    with CaptureQueriesContext(connections[db_alias]) as queries:
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
    [statement] = [q["sql"] for q in queries.captured_queries]
    assert statement.lstrip().upper().startswith(("UPDATE", "WITH"))
    assert "pg_notify" in statement
    assert heard(listener, 1) == [task_id]
    assert listener.wait(0.3) == []  # one notice, not one per attempt


@ON
def test_a_row_deleted_between_writes_is_inserted_and_announced(
    driver: Any, db_alias: str, listener: Any
) -> None:
    task_id = new_id()
    driver.ops.store_task_results([row(task_id, states.STARTED)])
    TaskResult.objects.filter(task_id=task_id).delete()  # e.g. a cleanup in between
    with CaptureQueriesContext(connections[db_alias]) as queries:
        driver.ops.store_task_results([row(task_id, states.SUCCESS)])
    assert len(queries.captured_queries) == 2  # the UPDATE found nothing: the upsert
    assert TaskResult.objects.get(task_id=task_id).status == states.SUCCESS
    assert heard(listener, 1) == [task_id]


def test_without_notify_nothing_is_sent(driver: Any, listener: Any) -> None:
    driver.ops.store_task_results([row(new_id(), states.SUCCESS)])
    assert listener.wait(0.3) == []


def test_a_terminated_listener_says_so_and_reconnects(
    driver: Any, db_alias: str, listener: Any
) -> None:
    pid = listener.connection.info.backend_pid
    with connections[db_alias].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    with pytest.raises(ListenerLost):
        listener.wait(5.0)  # the server's goodbye arrives at once: no need to wait it out
    with ON:
        done = new_id()
        listener.wait(0.01)  # reconnects
        driver.ops.store_task_results([row(done, states.SUCCESS)])
        assert heard(listener, 1) == [done]


def test_notices_that_cannot_arrive_fall_back_to_polling(
    driver: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # What a transaction-mode pooler does: the listener's own probe never comes back.
    def probe_lost(self: Listener) -> None:
        raise NotificationsUnavailable("a notification did not come back (a pooler?)")

    monkeypatch.setattr(Listener, "connect", probe_lost)
    notify.close_hubs()
    app = Celery("fallback", set_as_current=False)
    app.conf.result_backend = "django-db"
    try:
        with ON, caplog.at_level(logging.WARNING):
            backend = app.backend
            assert backend.is_async is False
            task_id = new_id()
            backend.mark_as_done(task_id, 5)
            assert AsyncResult(task_id, app=app).get(timeout=5, interval=0.05) == 5
        assert "clients will poll for results" in caplog.text
        assert backend.notifications_stopped
    finally:
        notify.close_hubs()
        app.close()


def test_the_hub_survives_a_listener_that_fails_unexpectedly(
    driver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_wait = Listener.wait
    failures = iter([RuntimeError("a surprise")])

    def wait_once_failing(self: Listener, timeout: float) -> list[str]:
        for failure in failures:
            raise failure
        return real_wait(self, timeout)

    monkeypatch.setattr(Listener, "wait", wait_once_failing)
    notify.close_hubs()
    app = Celery("survivor", set_as_current=False)
    app.conf.result_backend = "django-db"
    task_id = new_id()

    def finish() -> None:
        try:
            app.backend.mark_as_done(task_id, 9)  # NOTIFY is on: the settings are global
        finally:
            connections.close_all()

    try:
        with ON:
            assert app.backend.is_async
            timer = threading.Timer(0.3, finish)
            timer.start()
            assert AsyncResult(task_id, app=app).get(timeout=10) == 9
            timer.join()
    finally:
        notify.close_hubs()
        app.close()


def test_a_long_table_name_gets_a_channel_that_fits(
    driver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver.ops.TaskResult._meta, "db_table", "results_" + "x" * 60)
    channel = driver.ops.notify_channel()
    assert channel.startswith("dcr_")
    assert channel.endswith("_ready")
    assert len(channel) <= 63
