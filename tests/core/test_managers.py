"""Managers: upstream's API on top of the drivers, and the REPEATABLE READ warning."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connections
from django.db.models.functions import Now

from django_celery_results.drivers import get_driver
from django_celery_results.managers import TxIsolationWarning
from django_celery_results.models import GroupResult, TaskResult


@pytest.mark.django_db
def test_store_result_returns_the_row() -> None:
    obj = TaskResult.objects.store_result(
        "application/json", "utf-8", "m-1", "1", "STARTED", date_started=Now(), worker="w"
    )
    assert (obj.task_id, obj.status, obj.worker) == ("m-1", "STARTED", "w")
    assert obj.date_started is not None


@pytest.mark.django_db
def test_store_group_result_returns_the_row() -> None:
    obj = GroupResult.objects.store_group_result("application/json", "utf-8", "g-1", "[]")
    assert (obj.group_id, obj.result) == ("g-1", "[]")
    again = GroupResult.objects.store_group_result("application/json", "utf-8", "g-1", "[1]")
    assert again.pk == obj.pk
    assert again.result == "[1]"


@pytest.mark.django_db
def test_get_group_of_unknown_id_is_unsaved() -> None:
    group = GroupResult.objects.get_group("missing")
    assert group.pk is None
    assert group.group_id == "missing"


@pytest.mark.django_db
def test_delete_expired_on_a_named_database() -> None:
    TaskResult.objects.store_result("application/json", "utf-8", "old", "1", "SUCCESS")
    TaskResult.objects.filter(task_id="old").update(date_done=Now() - timedelta(days=2))
    deleted = TaskResult.objects.db_manager("default").delete_expired(expires=timedelta(days=1))
    assert deleted == 1


@pytest.mark.django_db
def test_repeated_miss_warns_when_the_driver_says_repeatable_read() -> None:
    driver = get_driver(connections["default"])
    with mock.patch.object(driver.ops, "uses_repeatable_read", return_value=True):
        TaskResult.objects.get_task("never-stored")
        with pytest.warns(TxIsolationWarning, match="repeatable-read"):
            TaskResult.objects.get_task("never-stored")


@pytest.mark.django_db
def test_no_warning_when_the_driver_says_no() -> None:
    TaskResult.objects.get_task("never-stored-2")
    TaskResult.objects.get_task("never-stored-2")  # filterwarnings=error would fail here
