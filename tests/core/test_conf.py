"""The DJANGO_CELERY_RESULTS setting: validation, defaults and the system checks."""

from __future__ import annotations

import pytest
from celery import Celery
from django.core import checks
from django.test import override_settings

from django_celery_results.conf import AppSettings, BatchWrites, app_settings, validate


def test_defaults() -> None:
    with override_settings(DJANGO_CELERY_RESULTS={}):
        assert app_settings() == AppSettings()


def test_valid_values_are_used() -> None:
    value = {"MAX_RETRIES": 0, "RETRY_BACKOFF": 1, "DISABLED_DRIVERS": ["mysql"]}
    with override_settings(DJANGO_CELERY_RESULTS=value):
        conf = app_settings()
    assert (conf.MAX_RETRIES, conf.RETRY_BACKOFF, conf.DISABLED_DRIVERS) == (0, 1, ("mysql",))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"ALLOW_EDIT": True}, "'ALLOW_EDIT'] is not a known key. Did you mean 'ALLOW_EDITS'?"),
        ({"STUCK_AFTER": 0}, "'STUCK_AFTER'] must be a timedelta or a number of seconds > 0"),
        ({"METRICS_TOKEN": "short"}, "'METRICS_TOKEN'] must be a string of at least 16"),
        ({"ALLOW_EDITS": "yes"}, "'ALLOW_EDITS'] must be True or False, not 'yes' (str)"),
        ({"MAX_RETRIES": -1}, "'MAX_RETRIES'] must be a whole number from 0 to 100, not -1"),
        ({"MAX_RETRIES": True}, "must be a whole number from 0 to 100, not True (bool)"),
        ({"RETRY_BACKOFF": 0}, "'RETRY_BACKOFF'] must be a number of seconds > 0 and <= 60"),
        ({"CLEANUP_BATCH_SIZE": 0}, "must be a whole number from 1 to 1000000, not 0"),
        ({"DISABLED_DRIVERS": "mysql"}, "must be a list of vendor names such as ['mysql']"),
        ({"DISABLED_DRIVERS": [1]}, "must be a list of vendor names such as ['mysql'], not [1]"),
        (["ALLOW_EDITS"], "DJANGO_CELERY_RESULTS must be a dict, not list"),
        ({"BATCH_WRITES": 100}, "'BATCH_WRITES'] must be None, True or a dict such as"),
        (
            {"BATCH_WRITES": {"max_delay": 5}},
            "['BATCH_WRITES']['max_delay'] is not a known key. Known keys: max_delay_ms, max_rows",
        ),
        (
            {"BATCH_WRITES": {"max_delay_ms": 0}},
            "['BATCH_WRITES']['max_delay_ms'] must be a number of milliseconds > 0 and <= 60000",
        ),
        (
            {"BATCH_WRITES": {"max_rows": 2.5}},
            "['BATCH_WRITES']['max_rows'] must be a whole number > 0 and <= 100000, not 2.5",
        ),
    ],
)
def test_problems_are_explained(value: object, message: str) -> None:
    problems = validate(value)
    assert len(problems) == 1
    assert message in problems[0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (False, None),
        (True, BatchWrites()),
        ({}, BatchWrites()),
        ({"max_delay_ms": 5, "max_rows": 20}, BatchWrites(max_delay_ms=5, max_rows=20)),
        ({"max_delay_ms": -1}, None),  # invalid: the check reports it, batching stays off
    ],
)
def test_batch_writes(value: object, expected: BatchWrites | None) -> None:
    with override_settings(DJANGO_CELERY_RESULTS={"BATCH_WRITES": value}):
        assert expected == app_settings().BATCH_WRITES


def test_invalid_values_keep_the_default() -> None:
    with override_settings(DJANGO_CELERY_RESULTS={"MAX_RETRIES": "many"}):
        assert app_settings().MAX_RETRIES == AppSettings.MAX_RETRIES


def test_check_reports_bad_keys() -> None:
    with override_settings(DJANGO_CELERY_RESULTS={"MAX_RETRIES": "many", "BATCH": 1}):
        # Our settings check only: Django 6.1's model checks connect to MySQL databases.
        messages = checks.run_checks(tags=[checks.Tags.compatibility])
        errors = [m for m in messages if m.id == "django_celery_results.E001"]
    assert len(errors) == 2
    assert all(e.level == checks.ERROR for e in errors)
    assert "docs/settings.md" in (errors[0].hint or "")


def test_check_is_quiet_when_valid(app: Celery) -> None:
    app.conf.task_track_started = True  # the lifeline has STARTED rows to watch (W006)
    with override_settings(DJANGO_CELERY_RESULTS={"ALLOW_EDITS": True}):
        messages = checks.run_checks(tags=[checks.Tags.compatibility, checks.Tags.caches])
        assert not [m for m in messages if (m.id or "").startswith("django_celery_results")]


def test_check_names_the_driver_of_each_database() -> None:
    messages = checks.run_checks(databases=["default"], tags=[checks.Tags.database])
    info = [m for m in messages if m.id == "django_celery_results.I001"]
    assert len(info) == 1
    assert "'default' (sqlite) is served by django_celery_results.drivers.generic" in info[0].msg
    assert "Install a driver for sqlite" in (info[0].hint or "")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"LIFELINE_GRACE": 10, "WORKER_HEARTBEAT": 15}, "shorter than two heartbeat"),
        ({"LIFELINE_GRACE": "60"}, "LIFELINE_GRACE"),
        ({"LIFELINE_GRAECE": 60}, "did you mean 'LIFELINE_GRACE'"),
        ({"SETTLE_UNCONSUMED": "yes"}, "SETTLE_UNCONSUMED"),
    ],
)
def test_an_invalid_lifeline_setting_is_a_problem_of_the_lifeline(
    settings: dict[str, object], problem: str
) -> None:
    from django.test import override_settings

    from django_celery_results.conf import lifeline_problems

    with override_settings(DJANGO_CELERY_RESULTS=settings):
        assert problem in " ".join(lifeline_problems())


def test_valid_lifeline_settings_are_no_problem() -> None:
    from datetime import timedelta

    from django.test import override_settings

    from django_celery_results.conf import app_settings, lifeline_problems

    keys = {"LIFELINE_GRACE": 0, "WORKER_HEARTBEAT": 5, "UNCONSUMED_AFTER": 60}
    with override_settings(DJANGO_CELERY_RESULTS=keys):
        assert lifeline_problems() == []
        assert timedelta(minutes=1) == app_settings().UNCONSUMED_AFTER
        assert not app_settings().LIFELINE_GRACE
