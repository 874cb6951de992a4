"""Fault injection: settings mistakes, bad ids, corrupt rows and bad request parameters.

Each case is a promise to the people who run this: a mistake is reported with its fix,
never crashes a process that reads the settings, and never deletes or loses a result.
The database-specific faults (lock timeouts, killed connections, refused connections)
live beside their drivers' tests, the permission matrix in ``admin/test_permissions.py``.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from django_celery_results.conf import AppSettings, app_settings, cleanup_problems, validate

# -- settings ------------------------------------------------------------------------------

INF, NAN = math.inf, math.nan

#: (setting, the words its E001 must contain): values that crashed or slipped through.
BAD_VALUES = [
    ({"STUCK_AFTER": INF}, "STUCK_AFTER'] must be a timedelta or a number of seconds > 0 and up"),
    ({"STUCK_AFTER": NAN}, "STUCK_AFTER'] must be"),
    ({"STUCK_AFTER": 10**400}, "STUCK_AFTER'] must be"),
    ({"STUCK_AFTER": timedelta.max}, "STUCK_AFTER'] must be"),
    ({"GROUP_RETENTION": INF}, "GROUP_RETENTION'] must be"),
    ({"GROUP_RETENTION": NAN}, "GROUP_RETENTION'] must be"),
    ({"GROUP_RETENTION": timedelta.max}, "up to 36,500 days"),
    ({"RETRY_BACKOFF": NAN}, "RETRY_BACKOFF'] must be a number of seconds > 0 and <= 60"),
    ({"RETRY_BACKOFF_MAX": INF}, "RETRY_BACKOFF_MAX'] must be"),
    ({"MAX_RETRIES": 10**9}, "MAX_RETRIES'] must be a whole number from 0 to 100"),
    ({"CLEANUP_BATCH_SIZE": 10**12}, "CLEANUP_BATCH_SIZE'] must be"),
    ({"BATCH_WRITES": {"max_delay_ms": NAN}}, "'max_delay_ms'] must be"),
    ({"RETENTION": [{"queue": "q", "keep": INF}]}, "['keep'] must be"),
    ({"RETENTION": [{"queue": "q", "keep": NAN}]}, "['keep'] must be"),
    ({"RETENTION": [{"queue": "q", "keep": timedelta.max}]}, "['keep'] must be"),
    ({"RETENTION": [{"queue": "q", "keep": 10**11}]}, "['keep'] must be"),
    ({"RETENTION": [{"queue": "q", "keep": 10**400}]}, "['keep'] must be"),
    ({"RETENTION": [{"status": "FAILED", "keep": 60}]}, "did you mean 'FAILURE'"),
    ({"RETENTION": [{"status": ["failure"], "keep": 60}]}, "did you mean 'FAILURE'"),
    ({"CUSTOM_STATES": ["X" * 51]}, "CUSTOM_STATES'] must be"),
]


@pytest.mark.parametrize(("value", "message"), BAD_VALUES)
def test_a_bad_value_is_an_error_that_says_the_range(value: dict[str, Any], message: str) -> None:
    with override_settings(DJANGO_CELERY_RESULTS=value):
        errors = [m for m in checks.run_checks() if m.id == "django_celery_results.E001"]
        app_settings()  # never raises: the admin reads it at import time
    assert any(message in error.msg for error in errors), [e.msg for e in errors]


@pytest.mark.parametrize(("value", "message"), BAD_VALUES)
def test_validation_never_raises(value: dict[str, Any], message: str) -> None:
    assert validate(value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("STUCK_AFTER", INF), ("RETRY_BACKOFF", NAN), ("MAX_RETRIES", "many"), ("NOTIFY", 1)],
)
def test_a_bad_tuning_value_falls_back_and_says_so(
    key: str, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        override_settings(DJANGO_CELERY_RESULTS={key: value}),
        caplog.at_level(logging.WARNING, logger="django_celery_results.conf"),
    ):
        conf = app_settings()
    assert getattr(conf, key) == getattr(AppSettings(), key)
    (record,) = caplog.records
    assert key in record.getMessage()
    assert "Using the default" in record.getMessage()


def test_the_settings_are_read_once_per_process(caplog: pytest.LogCaptureFixture) -> None:
    with (
        override_settings(DJANGO_CELERY_RESULTS={"RETRY_BACKOFF": NAN}),
        caplog.at_level(logging.WARNING, logger="django_celery_results.conf"),
    ):
        app_settings()
        app_settings()
    assert len(caplog.records) == 1


@pytest.mark.parametrize(
    "value",
    [
        {"RETENTION": [{"queue": "billing", "keep": None, "nmae": "x"}]},
        {"GROUP_RETENTION": -1},
        {"RETENTON": []},
        {"GROUP_RETENTIONS": None},
        {"CUSTOM_STATES": [1]},
        ["RETENTION"],
    ],
)
def test_a_mistake_in_a_deletion_setting_stops_cleanup(value: object) -> None:
    with override_settings(DJANGO_CELERY_RESULTS=value):
        assert cleanup_problems()


@pytest.mark.parametrize("value", [{"NOTIFFY": True}, {"MAX_RETRIES": -1}, {}, None])
def test_a_mistake_elsewhere_leaves_cleanup_on(value: object) -> None:
    with override_settings(DJANGO_CELERY_RESULTS=value):
        assert not cleanup_problems()


def test_an_undeclared_state_is_a_warning_not_an_error() -> None:
    setting = {"RETENTION": [{"status": "PROGRESS", "keep": 60}]}
    with override_settings(DJANGO_CELERY_RESULTS=setting):
        messages = [m for m in checks.run_checks() if m.id.startswith("django_celery_results.")]
        assert not cleanup_problems()
    messages = [m for m in messages if m.id != "django_celery_results.W005"]  # tests route views
    assert [m.id for m in messages] == ["django_celery_results.W004"]
    assert "CUSTOM_STATES" in messages[0].hint


def test_a_declared_state_is_known() -> None:
    setting = {"CUSTOM_STATES": ["PROGRES"], "RETENTION": [{"status": "PROGRES", "keep": 60}]}
    with override_settings(DJANGO_CELERY_RESULTS=setting):
        ids = {m.id for m in checks.run_checks() if m.id.startswith("django_celery_results.")}
    assert not ids - {"django_celery_results.W005"}


@pytest.mark.parametrize(
    ("value", "alias"),
    [("django_db", "django-db"), ("Django-DB", "django-db"), ("django_cache", "django-cache")],
)
def test_a_near_miss_of_our_backend_alias_is_an_error(value: str, alias: str) -> None:
    with override_settings(CELERY_RESULT_BACKEND=value):
        (error,) = [m for m in checks.run_checks() if m.id == "django_celery_results.E008"]
    assert repr(alias) in error.hint


@pytest.mark.parametrize(
    "value", ["django-db", "redis://localhost", "db+sqlite:///x", "myapp.backends:Backend"]
)
def test_real_backends_are_not_near_misses(value: str) -> None:
    with override_settings(CELERY_RESULT_BACKEND=value):
        assert not [m for m in checks.run_checks() if m.id == "django_celery_results.E008"]
