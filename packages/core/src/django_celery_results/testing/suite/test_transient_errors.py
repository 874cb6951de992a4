"""Transient errors: a dropped connection is reopened and the write retried, within bounds."""

from __future__ import annotations

import logging
from typing import Any
from unittest import mock

import pytest
from celery import states
from django.db import IntegrityError, transaction
from django.db.utils import InterfaceError, OperationalError
from django.test import override_settings

from ... import losses
from ...models import TaskResult
from ..provision import break_connection
from .helpers import new_id, status_of

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestTransientErrors"]

NO_PAUSE = {"DJANGO_CELERY_RESULTS": {"RETRY_BACKOFF": 0.001, "MAX_RETRIES": 3}}


class TestTransientErrors:
    """``is_transient_error`` and core's retry around every driver operation."""

    def test_write_after_the_connection_dropped(self, backend: Any, driver: Any) -> None:
        task_id = new_id()
        backend.mark_as_started(task_id)
        break_connection(driver)
        backend.mark_as_done(task_id, 1)
        assert status_of(task_id) == states.SUCCESS
        assert TaskResult.objects.filter(task_id=task_id).count() == 1

    def test_read_after_the_connection_dropped(self, backend: Any, driver: Any) -> None:
        task_id = new_id()
        backend.mark_as_done(task_id, 1)
        break_connection(driver)
        assert backend.get_task_meta(task_id, cache=False)["status"] == states.SUCCESS

    def test_dropped_connection_is_transient(self, driver: Any) -> None:
        assert driver.ops.is_transient_error(InterfaceError("connection already closed"))
        assert not driver.ops.is_transient_error(IntegrityError("duplicate key"))
        assert not driver.ops.is_transient_error(ValueError("not a database error"))

    @override_settings(**NO_PAUSE)
    def test_retries_are_bounded(self, backend: Any, driver: Any) -> None:
        failure = OperationalError("server closed the connection unexpectedly")
        with (
            mock.patch.object(driver.ops, "store_task_results", side_effect=failure) as store,
            mock.patch.object(driver.ops, "is_transient_error", return_value=True),
            pytest.raises(OperationalError),
        ):
            backend.mark_as_done(new_id(), 1)
        assert store.call_count == 4  # the first try and MAX_RETRIES=3 retries

    @override_settings(**NO_PAUSE)
    def test_a_lost_write_is_logged_with_its_task(
        self, backend: Any, driver: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """When the retries run out: one ERROR line with everything needed to redo it."""
        failure = OperationalError("server closed the connection unexpectedly")
        task_id = new_id()
        lost_before = losses.COUNTS.lost
        retried_before = losses.COUNTS.retried
        with (
            mock.patch.object(driver.ops, "store_task_results", side_effect=failure),
            mock.patch.object(driver.ops, "is_transient_error", return_value=True),
            caplog.at_level(logging.ERROR, logger="django_celery_results.losses"),
            pytest.raises(OperationalError),
        ):
            backend.mark_as_done(task_id, 1)
        (record,) = caplog.records
        message = record.getMessage()
        assert f"Lost the SUCCESS state of task {task_id}" in message
        assert repr(driver.alias) in message
        assert "after 4 attempts" in message
        assert "server closed the connection unexpectedly" in message
        assert losses.COUNTS.lost == lost_before + 1
        assert losses.COUNTS.retried == retried_before + 3

    @override_settings(**NO_PAUSE)
    def test_a_write_celery_retries_into_success_is_not_lost(
        self, backend: Any, driver: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With ``result_backend_always_retry`` a loss is only logged once Celery gives up."""
        failure = OperationalError("server closed the connection unexpectedly")
        task_id = new_id()
        real = driver.ops.store_task_results
        calls = {"n": 0}

        def flaky(rows: Any) -> Any:
            calls["n"] += 1
            if calls["n"] <= 4:  # our four attempts fail; Celery's retry then succeeds
                raise failure
            return real(rows)

        with (
            mock.patch.object(backend, "always_retry", True),
            mock.patch.object(backend, "max_retries", 3),
            mock.patch.object(driver.ops, "store_task_results", side_effect=flaky),
            mock.patch.object(driver.ops, "is_transient_error", return_value=True),
            caplog.at_level(logging.ERROR, logger="django_celery_results.losses"),
        ):
            backend.mark_as_done(task_id, 1)
        assert status_of(task_id) == states.SUCCESS
        assert not caplog.records

    @override_settings(**NO_PAUSE)
    def test_other_errors_are_raised_at_once(self, backend: Any, driver: Any) -> None:
        with (
            mock.patch.object(
                driver.ops, "store_task_results", side_effect=IntegrityError("bug")
            ) as store,
            pytest.raises(IntegrityError),
        ):
            backend.mark_as_done(new_id(), 1)
        assert store.call_count == 1

    @override_settings(**NO_PAUSE)
    def test_no_retry_inside_the_callers_transaction(
        self, backend: Any, driver: Any, db_alias: str
    ) -> None:
        failure = OperationalError("deadlock detected")
        with (
            mock.patch.object(driver.ops, "store_task_results", side_effect=failure) as store,
            pytest.raises(OperationalError),
            transaction.atomic(using=db_alias),
        ):
            backend.mark_as_done(new_id(), 1)
        assert store.call_count == 1

    def test_celery_retry_hook_agrees(self, backend: Any) -> None:
        assert backend.exception_safe_to_retry(InterfaceError("connection already closed"))
        assert not backend.exception_safe_to_retry(IntegrityError("duplicate key"))
