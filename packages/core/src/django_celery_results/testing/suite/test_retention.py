"""Retention rules: the first rule that matches a row decides, run in the database in chunks."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from celery import states
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from ... import retention
from ...cleanup import (
    CleanupRefused,
    configured_steps,
    delete_dead_chord_counters,
    one_off_step,
    run,
)
from ...models import GroupResult, TaskResult
from .helpers import new_id, request, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestRetention"]

DAY = timedelta(days=1)


def stored(driver: Any, days_old: float, status: str = states.SUCCESS, **columns: Any) -> str:
    """Store one row done ``days_old`` days ago; return its task id."""
    task_id = new_id()
    done = timezone.now() - timedelta(days=days_old)
    driver.ops.store_task_results([row(task_id, status, date_done=done, **columns)])
    return task_id


def left() -> set[str]:
    return set(TaskResult.objects.values_list("task_id", flat=True))


def rules(*entries: dict[str, Any]) -> Any:
    return override_settings(DJANGO_CELERY_RESULTS={"RETENTION": list(entries)})


#: Settings mistakes that must stop cleanup, and words the ERROR names each by.
INVALID_SETTINGS: list[tuple[dict[str, Any], str]] = [
    # One unknown key in one rule: the list used to be dropped whole.
    ({"RETENTION": [{"queue": "billing", "keep": None, "nmae": "x"}]}, "'nmae'"),
    # A near miss of a state: the rule would match nothing.
    ({"RETENTION": [{"status": "FAILED", "keep": 60}]}, "did you mean 'FAILURE'"),
    ({"RETENTION": [{"status": "failure", "keep": 60}]}, "did you mean 'FAILURE'"),
    ({"RETENTION": [{"queue": "billing", "keep": float("inf")}]}, "['keep']"),
    ({"RETENTION": [{"queue": "billing", "keep": timedelta.max}]}, "['keep']"),
    ({"RETENTION": [{"queue": "billing", "keep": 10**11}]}, "['keep']"),
    ({"GROUP_RETENTION": float("nan")}, "GROUP_RETENTION"),
    ({"RETENTON": [{"queue": "billing", "keep": None}]}, "did you mean 'RETENTION'"),
    ({"CUSTOM_STATES": "PROGRESS"}, "CUSTOM_STATES"),
]


class TestRetention:
    """``RETENTION`` rules through ``cleanup.run``, the backend's ``cleanup`` and the driver."""

    def test_the_first_matching_rule_decides(self, driver: Any) -> None:
        failed_old = stored(driver, 40, states.FAILURE)
        failed_recent = stored(driver, 10, states.FAILURE)
        billing_failed = stored(driver, 40, states.FAILURE, queue="billing")
        done_old = stored(driver, 2)
        done_recent = stored(driver, 0.5)
        with rules(
            {"queue": "billing", "keep": None},
            {"status": ["FAILURE"], "keep": timedelta(days=30)},
        ):
            report = run(configured_steps(DAY))
        # billing's rule comes first: its FAILURE is kept although FAILURE's rule expires it.
        assert left() == {failed_recent, billing_failed, done_recent}
        assert {o.name: o.rows for o in report.outcomes} == {
            "rule 2": 1,
            "result_expires": 1,
            "groups": 0,
        }
        assert failed_old not in left()
        assert done_old not in left()

    def test_globs_match_task_names_and_queues(self, driver: Any) -> None:
        report_old = stored(driver, 5, task_name="reports.monthly.build")
        other_old = stored(driver, 5, task_name="mail.send")
        literal = stored(driver, 5, task_name="reports_x")
        priority = stored(driver, 5, queue="priority-high")
        with rules(
            {"task_name": "reports.*", "keep": timedelta(days=3)},
            {"queue": "priority-*", "keep": None},
            {"task_name": "reports?x", "keep": None},
        ):
            run(configured_steps(None))  # result_expires None: rows no rule matches stay
        assert left() == {other_old, literal, priority}
        assert report_old not in left()

    def test_glob_characters_are_literal_in_plain_names(self, driver: Any) -> None:
        dotted = stored(driver, 5, task_name="a.b")
        lookalike = stored(driver, 5, task_name="aXb")
        with rules({"task_name": "a.b*", "keep": DAY}):
            run(configured_steps(None))
        assert left() == {lookalike}
        assert dotted not in left()

    def test_keep_none_keeps_forever(self, driver: Any) -> None:
        ancient = stored(driver, 3650, periodic_task_name="nightly-audit")
        with rules({"periodic_task_name": "nightly-audit", "keep": None}):
            run(configured_steps(DAY))
        assert left() == {ancient}

    def test_keep_in_seconds(self, driver: Any) -> None:
        old = stored(driver, 1 / 24, states.REVOKED)
        with rules({"status": "REVOKED", "keep": 60}):
            run(configured_steps(None))
        assert old not in left()

    def test_chunks_of_batch_size(self, driver: Any, db_alias: str) -> None:
        old = [stored(driver, 2) for _ in range(23)]
        fresh = stored(driver, 0)
        report = run(configured_steps(DAY), batch_size=5)
        assert report.complete
        assert left() == {fresh}
        assert report.outcomes[0].rows == len(old)

    def test_dry_run_deletes_nothing_and_counts(self, driver: Any) -> None:
        first = stored(driver, 9, states.FAILURE)
        stored(driver, 8, states.FAILURE)
        with rules({"status": "FAILURE", "keep": timedelta(days=7)}):
            report = run(configured_steps(DAY), dry_run=True)
        assert len(left()) == 2
        outcome = report.outcomes[0]
        assert (outcome.name, outcome.rows) == ("rule 1", 2)
        assert outcome.oldest is not None
        assert outcome.newest is not None
        assert outcome.oldest < outcome.newest
        assert TaskResult.objects.get(task_id=first).date_done == outcome.oldest

    def test_max_seconds_stops_and_a_second_run_goes_on(self, driver: Any) -> None:
        old = [stored(driver, 2) for _ in range(12)]
        report = run(configured_steps(DAY), batch_size=2, max_seconds=1e-9)
        assert not report.complete
        assert 0 < report.outcomes[0].rows < len(old)
        assert run(configured_steps(DAY), batch_size=2).complete
        assert not left()

    def test_one_off_rule(self, driver: Any) -> None:
        failed = stored(driver, 3, states.FAILURE, task_name="mail.send")
        other = stored(driver, 3, states.FAILURE, task_name="reports.build")
        rule = retention.Rule(
            "one-off", keep=DAY, status=frozenset({states.FAILURE}), task_name="mail.*"
        )
        run([one_off_step(rule)])
        assert left() == {other}
        assert failed not in left()

    def test_backend_cleanup_applies_the_rules(self, backend: Any) -> None:
        kept, expired = new_id(), new_id()
        backend.store_result(kept, None, states.FAILURE, request=request(kept, retries=2))
        backend.mark_as_done(expired, 1)
        TaskResult.objects.update(date_done=timezone.now() - timedelta(days=3))
        with rules({"status": "FAILURE", "keep": timedelta(days=30)}):
            backend.cleanup()  # result_expires is one hour in the suite's app
        assert left() == {kept}

    def test_an_invalid_setting_deletes_nothing(
        self, backend: Any, driver: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Every cleanup path refuses, and logs an ERROR naming the problem."""
        kept = stored(driver, 40, states.FAILURE, queue="billing")
        GroupResult.objects.create(group_id=new_id(), date_done=timezone.now() - 40 * DAY)
        for setting, named in INVALID_SETTINGS:
            caplog.clear()
            with (
                override_settings(DJANGO_CELERY_RESULTS=setting),
                caplog.at_level(logging.ERROR, logger="django_celery_results.cleanup"),
            ):
                with pytest.raises(CleanupRefused):
                    backend.cleanup()
                with pytest.raises(CleanupRefused):
                    configured_steps(DAY)
                with pytest.raises(CleanupRefused):
                    delete_dead_chord_counters(DAY)
            assert left() == {kept}, setting
            assert GroupResult.objects.count() == 1
            errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert errors, setting
            assert all("Cleanup deleted nothing" in message for message in errors)
            assert any(named in message for message in errors), errors

    def test_a_custom_state_is_known(self, backend: Any, driver: Any) -> None:
        """A declared state is matched by its rule; an undeclared one is only a warning."""
        progress = stored(driver, 40, "PROGRESS")
        mine = stored(driver, 40, "MY_STATE")
        setting = {
            "CUSTOM_STATES": ["PROGRESS"],
            "RETENTION": [
                {"status": "PROGRESS", "keep": None},
                {"status": "MY_STATE", "keep": None},
            ],
        }
        with override_settings(DJANGO_CELERY_RESULTS=setting):
            backend.cleanup()
        assert left() == {progress, mine}

    def test_cleanup_while_workers_write(self, driver: Any, backend: Any, db_alias: str) -> None:
        """No write is lost and no error escapes while a cleanup deletes around it."""
        for _ in range(60):
            stored(driver, 2)
        errors: list[BaseException] = []
        written: list[str] = []
        stop = threading.Event()

        def worker() -> None:
            try:
                while not stop.is_set() and len(written) < 200:
                    task_id = new_id()
                    backend.mark_as_started(task_id)
                    backend.mark_as_done(task_id, 1)
                    written.append(task_id)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        thread = threading.Thread(target=worker)
        thread.start()
        try:
            deadline = time.monotonic() + 5
            while len(written) < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            report = run(configured_steps(DAY), batch_size=7)
        finally:
            stop.set()
            thread.join(30)
        assert not errors
        assert report.outcomes[0].rows == 60
        stored_ids = set(
            TaskResult.objects.filter(task_id__in=written).values_list("task_id", flat=True)
        )
        assert stored_ids == set(written)
        assert set(
            TaskResult.objects.filter(task_id__in=written).values_list("status", flat=True)
        ) == {states.SUCCESS}
