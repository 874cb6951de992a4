"""Fault injection: settings mistakes, bad ids, corrupt rows and bad request parameters.

Each case is a promise to the people who run this: a mistake is reported with its fix,
never crashes a process that reads the settings, and never deletes or loses a result.
The database-specific faults (lock timeouts, killed connections, refused connections)
live beside their drivers' tests, the permission matrix in ``admin/test_permissions.py``.
"""

from __future__ import annotations

import base64
import logging
import math
import pickle
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from celery import Celery
from django.core import checks
from django.core.management import CommandError, call_command
from django.test import Client, override_settings
from django.urls import reverse

from django_celery_results.conf import AppSettings, app_settings, cleanup_problems, validate
from django_celery_results.models import GroupResult, TaskResult
from django_celery_results.testing.suite.helpers import new_id

DASHBOARD = "admin:django_celery_results_dashboard"
LIST = "admin:django_celery_results_taskresult_changelist"
CHANGE = "admin:django_celery_results_taskresult_change"
GROUPS = "admin:django_celery_results_groupresult_changelist"
GROUP = "admin:django_celery_results_groupresult_change"


# -- settings ------------------------------------------------------------------------------

INF, NAN = math.inf, math.nan
#: The check tags our setting checks are registered under (others may need a database).
OURS = [checks.Tags.compatibility, checks.Tags.security]
PREFIX = "django_celery_results."

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
        errors = [m for m in checks.run_checks(tags=OURS) if m.id == "django_celery_results.E001"]
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
        # "status": None would match every row: the billing rows kept forever with it.
        {"RETENTION": [{"status": None, "keep": 86400}, {"queue": "billing", "keep": None}]},
        {"RETENTION": [{"queue": None, "keep": 86400}]},
        {"RETENTION": [{"status": "S" * 51, "keep": 86400}]},
        {1: "a key that is not text"},
    ],
)
def test_a_mistake_in_a_deletion_setting_stops_cleanup(value: object) -> None:
    with override_settings(DJANGO_CELERY_RESULTS=value):
        assert cleanup_problems()


@pytest.mark.parametrize(
    "value",
    [{"NOTIFFY": True}, {"MAX_RETRIES": -1}, {}, None, {"GROUP_RETENTION": "result_expires"}],
)
def test_a_mistake_elsewhere_leaves_cleanup_on(value: object) -> None:
    with override_settings(DJANGO_CELERY_RESULTS=value):
        assert not cleanup_problems()


class Unprintable:
    """A value whose ``repr`` and comparisons raise: a message must still be built."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparison")

    __hash__ = object.__hash__


@pytest.mark.parametrize(
    "value",
    [
        {Unprintable(): 1},
        {"STUCK_AFTER": Unprintable()},
        {"RETENTION": [{"queue": Unprintable(), "keep": 1}]},
        {"RETENTION": [{Unprintable(): 1, "keep": 1, "queue": "q"}]},
        {"GROUP_RETENTION": Unprintable()},
        {"BATCH_WRITES": {"max_rows": 10**400}},
    ],
)
def test_no_value_makes_the_settings_raise(value: dict[Any, Any]) -> None:
    with override_settings(DJANGO_CELERY_RESULTS=value):
        assert validate(value)
        app_settings()
        cleanup_problems()
        checks.run_checks(tags=[checks.Tags.compatibility])


def test_a_huge_batch_size_says_the_range() -> None:
    (problem,) = validate({"BATCH_WRITES": {"max_rows": 10**400}})
    assert "must be a whole number > 0 and <= 100000" in problem


@pytest.mark.django_db
@pytest.mark.parametrize("expires", [-86400, INF, NAN, timedelta.max, 10**11])
def test_an_impossible_result_expires_deletes_nothing(expires: object) -> None:
    from django_celery_results.cleanup import (
        CleanupRefused,
        configured_steps,
        delete_dead_chord_counters,
    )

    put(new_id())
    with pytest.raises(CleanupRefused, match="result_expires"):
        configured_steps(expires)  # type: ignore[arg-type]
    with pytest.raises(CleanupRefused, match="result_expires"):
        delete_dead_chord_counters(expires)  # type: ignore[arg-type]
    with pytest.raises(CleanupRefused, match="result_expires"):
        TaskResult.objects.delete_expired(expires)  # type: ignore[arg-type]
    assert TaskResult.objects.count() == 1


@pytest.mark.django_db
def test_upstreams_delete_expired_refuses_an_invalid_retention() -> None:
    from django_celery_results.cleanup import CleanupRefused

    put(new_id())
    TaskResult.objects.update(date_done=datetime(2020, 1, 1, tzinfo=UTC))
    with (
        override_settings(DJANGO_CELERY_RESULTS={"RETENTION": [{"status": "FAILED", "keep": 1}]}),
        pytest.raises(CleanupRefused),
    ):
        TaskResult.objects.delete_expired(86400)
    assert TaskResult.objects.count() == 1


def ours(message: Any) -> bool:
    """Is ``message`` one of our checks'?"""
    return bool((message.id or "").startswith("django_celery_results."))


def test_an_undeclared_state_is_a_warning_not_an_error(app: Celery) -> None:
    app.conf.task_track_started = True  # the lifeline has STARTED rows to watch (W006)
    setting = {"RETENTION": [{"status": "PROGRESS", "keep": 60}]}
    with override_settings(DJANGO_CELERY_RESULTS=setting):
        messages = [
            m
            for m in checks.run_checks(tags=OURS)
            if (m.id or "").startswith("django_celery_results.")
        ]
        assert not cleanup_problems()
    messages = [m for m in messages if m.id != "django_celery_results.W005"]  # tests route views
    assert [m.id for m in messages] == ["django_celery_results.W004"]
    assert "CUSTOM_STATES" in (messages[0].hint or "")


def test_a_declared_state_is_known(app: Celery) -> None:
    app.conf.task_track_started = True  # the lifeline has STARTED rows to watch (W006)
    setting = {"CUSTOM_STATES": ["PROGRES"], "RETENTION": [{"status": "PROGRES", "keep": 60}]}
    with override_settings(DJANGO_CELERY_RESULTS=setting):
        ids = {
            m.id
            for m in checks.run_checks(tags=OURS)
            if (m.id or "").startswith("django_celery_results.")
        }
    assert not ids - {"django_celery_results.W005"}


@pytest.mark.parametrize(
    ("value", "alias"),
    [("django_db", "django-db"), ("Django-DB", "django-db"), ("django_cache", "django-cache")],
)
def test_a_near_miss_of_our_backend_alias_is_an_error(value: str, alias: str) -> None:
    with override_settings(CELERY_RESULT_BACKEND=value):
        (error,) = [
            m for m in checks.run_checks(tags=OURS) if m.id == "django_celery_results.E008"
        ]
    assert repr(alias) in (error.hint or "")


@pytest.mark.parametrize(
    "value", ["django-db", "redis://localhost", "db+sqlite:///x", "myapp.backends:Backend"]
)
def test_real_backends_are_not_near_misses(value: str) -> None:
    with override_settings(CELERY_RESULT_BACKEND=value):
        assert not [
            m for m in checks.run_checks(tags=OURS) if m.id == "django_celery_results.E008"
        ]


# -- corrupt rows: shown as unreadable, never a server error -------------------------------

#: A FAILURE whose stored exception nests deeper than Python's JSON reader goes (1,000
#: levels already on 3.11; 3.13 reads deeper).
DEEP = '{"exc_type": ' + "[" * 100_000 + "]" * 100_000 + "}"


def put(task_id: str, status: str = "SUCCESS", **columns: Any) -> TaskResult:
    values = {"content_type": "application/json", "content_encoding": "utf-8"}
    return TaskResult.objects.create(task_id=task_id, status=status, **{**values, **columns})


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_deeply_nested_failure_takes_no_page_down(
    admin_client: Client, db_alias: str, app: Celery
) -> None:
    bad = put(new_id(), "FAILURE", result=DEEP)
    good = put(new_id(), "SUCCESS", result="1")
    for window in ("1h", "24h", "7d"):
        page = admin_client.get(reverse(DASHBOARD), {"window": window})
        assert page.status_code == 200, window
    assert admin_client.get("/metrics/").status_code == 200
    detail = admin_client.get(reverse(CHANGE, args=[bad.pk]))
    assert detail.status_code == 200
    assert bad.task_id in detail.content.decode()
    out = StringIO()
    call_command("celery_results_stats", stdout=out)
    assert "(unknown) in (no name)=1" in out.getvalue()  # its type cannot be read
    status = Client().get(f"/results/task/status/{bad.task_id}/").json()["task"]
    assert status["error"].startswith(f"The stored result of {bad.task_id} cannot be read")
    other = Client().get(f"/results/task/status/{good.task_id}/").json()["task"]
    assert (other["status"], other["result"]) == ("SUCCESS", 1)


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_date_at_the_end_of_the_calendar_takes_no_page_down(
    admin_client: Client, db_alias: str
) -> None:
    far = put(new_id(), "SUCCESS", result="1")
    end = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    TaskResult.objects.filter(pk=far.pk).update(date_done=end, date_created=end)
    group = GroupResult.objects.create(group_id=new_id(), result="[]")
    GroupResult.objects.filter(pk=group.pk).update(date_done=end, date_created=end)
    rules = {"RETENTION": [{"queue": "q", "keep": 86400}]}
    # East of UTC that date has no local time at all.
    with override_settings(DJANGO_CELERY_RESULTS=rules, TIME_ZONE="Asia/Tokyo"):
        assert admin_client.get(reverse(CHANGE, args=[far.pk])).status_code == 200
        assert admin_client.get(reverse(LIST)).status_code == 200
        assert admin_client.get(reverse(GROUPS)).status_code == 200
        assert admin_client.get(reverse(GROUP, args=[group.pk])).status_code == 200


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("corrupt", ["{not json", "pickled set"])
def test_one_corrupt_member_leaves_its_group_readable(
    db_alias: str, app: Celery, corrupt: str
) -> None:
    good, bad = new_id(), new_id()
    put(good, "SUCCESS", result="7")
    if corrupt == "pickled set":  # decodes (pickle accepted), but is no JSON to answer
        app.conf.update(
            accept_content=["json", "pickle"], result_accept_content=["json", "pickle"]
        )
        encoded = base64.b64encode(pickle.dumps({1, 2})).decode()
        put(bad, "SUCCESS", result=encoded, content_type="application/x-python-serialize",
            content_encoding="binary")  # fmt: skip
    else:
        put(bad, "SUCCESS", result=corrupt)
    group_id = new_id()
    app.GroupResult(group_id, [app.AsyncResult(good), app.AsyncResult(bad)]).save()
    for url in (f"/results/group/status/{group_id}/", f"/results/group/done/{group_id}/"):
        response = Client().get(url)
        assert response.status_code == 200, url
        members = response.json()["group"]["results"]
        assert len(members) == 2
        assert next(m for m in members if "error" in m)["id"] == bad
        assert [m for m in members if "error" not in m]


# -- bad request parameters: 400 or a fallback, never a server error ----------------------


#: Keyset cursors no row has: more digits than any id, ids past bigint, dates that have
#: no UTC time (an offset past the calendar's end), no such day, no date at all.
IMPOSSIBLE_CURSORS = [
    "2026-01-01T00:00:00+00:00~" + "9" * 5000,
    "2026-01-01T00:00:00+00:00~99999999999999999999",
    "9999-12-31T23:59:59-14:00~5",
    "0001-01-01T00:00:00+14:00~5",
    "2024-02-30T00:00:00~5",
    "x" * 10_000 + "~5",
]


@pytest.mark.django_db
def test_an_impossible_cursor_falls_back_to_the_newest(admin_client: Client) -> None:
    newest = put(new_id())
    for cursor in IMPOSSIBLE_CURSORS:
        response = admin_client.get(reverse(LIST), {"before": cursor})
        assert response.status_code == 200, cursor[:40]
        assert newest.task_id in response.content.decode()


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_nul_in_a_filter_is_a_400(admin_client: Client, db_alias: str) -> None:
    """PostgreSQL refuses NUL in text: the list answers 400 on every database alike."""
    for query in ({"status__exact": "FAIL\x00URE"}, {"q": "abc\x00"}, {"x\x00": "1"}):
        assert admin_client.get(reverse(LIST), query).status_code == 400, query
        assert admin_client.get(reverse(GROUPS), query).status_code == 400, query


@pytest.mark.django_db
def test_an_impossible_metrics_window_is_a_400(admin_client: Client) -> None:
    for window in ("99999999999d", "1000000d", "9" * 5000 + "m", "1h\x00"):
        response = admin_client.get("/metrics/", {"window": window})
        assert response.status_code == 400, window[:20]
        assert b"at most 30d" in response.content


@pytest.mark.parametrize(
    ("command", "args", "accepted"),
    [
        ("celery_results_stats", ["--since", "2024-02-30T00:00"], "existing ISO datetime"),
        ("celery_results_stats", ["--since", "1000000d"], "at most 36,500 days"),
        ("celery_results_stats", ["--since", "9" * 5000 + "h"], "at most 36,500 days"),
        ("celery_results_cleanup", ["--older-than", "1000000d"], "at most 36,500 days"),
        ("celery_results_cleanup", ["--older-than", "1e300"], "at most 36,500 days"),
        ("celery_results_cleanup", ["--older-than", "nan"], "at most 36,500 days"),
    ],
)
def test_an_impossible_span_or_date_is_a_command_error(
    command: str, args: list[str], accepted: str
) -> None:
    """A CommandError (exit code 1 from the shell) that says what is accepted."""
    with pytest.raises(CommandError, match=accepted):
        call_command(command, *args, stdout=StringIO())
