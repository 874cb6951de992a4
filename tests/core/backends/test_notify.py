"""The backend's NOTIFY paths stay out of the way where they must: ``AsyncResult.__del__``."""

from __future__ import annotations

from unittest import mock

from celery import Celery
from celery.result import AsyncResult

from django_celery_results.backends import database, notify
from django_celery_results.testing.suite.helpers import new_id


def test_removing_a_pending_result_looks_nothing_up() -> None:
    # AsyncResult.__del__ calls it whenever the garbage collector runs, even while this
    # thread holds the driver manager's lock: a lookup there could deadlock.
    app = Celery("del", set_as_current=False)
    app.conf.result_backend = "django-db"
    try:
        result = AsyncResult(new_id(), app=app)
        backend = app.backend
        looked_up = AssertionError("remove_pending_result looked a driver up")
        with (
            mock.patch.object(database, "driver_for", side_effect=looked_up),
            mock.patch.object(notify, "driver_for", side_effect=looked_up),
        ):
            assert backend.remove_pending_result(result) is result
    finally:
        app.close()
