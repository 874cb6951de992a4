"""``manage.py celery_results_cleanup`` on the default database."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from celery import states
from django.core.management import CommandError, call_command
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from django_celery_results.drivers import get_driver
from django_celery_results.models import GroupResult, TaskResult
from django_celery_results.testing.suite.helpers import new_id, row

pytestmark = pytest.mark.django_db(transaction=True)

RULES = {
    "RETENTION": [
        {"status": "FAILURE", "keep": timedelta(days=30), "name": "failures"},
        {"queue": "billing", "keep": None},
    ]
}


def store(days_old: float, status: str = states.SUCCESS, **columns: object) -> str:
    task_id = new_id()
    done = timezone.now() - timedelta(days=days_old)
    ops = get_driver(connections["default"]).ops
    ops.store_task_results([row(task_id, status, date_done=done, **columns)])
    return task_id


def run(*args: str) -> str:
    out = StringIO()
    call_command("celery_results_cleanup", *args, stdout=out)
    return out.getvalue()


def ids() -> set[str]:
    return set(TaskResult.objects.values_list("task_id", flat=True))


@override_settings(DJANGO_CELERY_RESULTS=RULES)
def test_deletes_by_the_rules_and_says_so() -> None:
    old_failure, recent_failure = store(40, states.FAILURE), store(3, states.FAILURE)
    billing, done = store(400, queue="billing"), store(3)
    output = run()
    assert ids() == {recent_failure, billing}
    assert {old_failure, done}.isdisjoint(ids())
    assert "failures (status FAILURE: 30 days): deleted 1 rows in" in output
    assert "result_expires (rows no rule matches: 1 day): deleted 1 rows in" in output
    assert "Total: deleted 2 rows" in output


@override_settings(DJANGO_CELERY_RESULTS=RULES)
def test_dry_run_counts_and_deletes_nothing() -> None:
    store(40, states.FAILURE)
    store(50, states.FAILURE)
    document = json.loads(run("--dry-run", "--format", "json"))
    assert len(ids()) == 2
    assert document["dry_run"] is True
    failures = next(step for step in document["steps"] if step["name"] == "failures")
    assert failures["rows"] == 2
    assert failures["oldest"] < failures["newest"]
    assert "would delete 2 rows, date_done" in run("--dry-run")


@override_settings(DJANGO_CELERY_RESULTS=RULES)
def test_rule_selects_one_step_by_name_or_number() -> None:
    failure, done = store(40, states.FAILURE), store(3)
    run("--rule", "result_expires")
    assert ids() == {failure}
    run("--rule", "1")
    assert ids() == set()
    assert done not in ids()
    with pytest.raises(CommandError, match=r"--rule nope: no such step\. This configuration runs"):
        run("--rule", "nope")


def test_one_off_rule() -> None:
    mail = store(10, states.FAILURE, task_name="mail.send", queue="q1")
    report = store(10, states.FAILURE, task_name="reports.build")
    young = store(1, states.FAILURE, task_name="mail.send")
    output = run("--status", "FAILURE", "--task-name", "mail.*", "--older-than", "7d")
    assert ids() == {report, young}
    assert mail not in ids()
    assert "one-off (status FAILURE, task_name mail.*: 7 days): deleted 1 rows" in output


def test_one_off_needs_older_than_and_a_span() -> None:
    with pytest.raises(CommandError, match="A one-off rule needs --older-than"):
        run("--status", "FAILURE")
    with pytest.raises(CommandError, match="--older-than 'soon' is not a span"):
        run("--older-than", "soon")


def test_max_seconds_stops_and_says_to_run_again() -> None:
    for _ in range(6):
        store(3)
    output = run("--batch-size", "2", "--max-seconds", "0.000001")
    assert "Stopped at --max-seconds before the end; run the command again" in output
    assert 0 < len(ids()) < 6
    run()
    assert ids() == set()


def test_groups_follow_group_retention() -> None:
    old = GroupResult.objects.create(group_id=new_id(), result="[]")
    GroupResult.objects.filter(pk=old.pk).update(date_done=timezone.now() - timedelta(days=3))
    with override_settings(DJANGO_CELERY_RESULTS={"GROUP_RETENTION": None}):
        run()
    assert GroupResult.objects.filter(pk=old.pk).exists()
    run()  # result_expires (one day in the tests' app) by default
    assert not GroupResult.objects.exists()


def test_an_invalid_configuration_deletes_nothing() -> None:
    store(40)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"RETENTION": [{"status": "FAILURE"}]}),
        pytest.raises(CommandError, match="Cleanup deleted nothing"),
    ):
        run()
    assert len(ids()) == 1


def test_bad_numbers() -> None:
    with pytest.raises(CommandError, match="--batch-size must be a whole number > 0"):
        run("--batch-size", "0")
    with pytest.raises(CommandError, match="--max-seconds must be a number of seconds > 0"):
        run("--max-seconds", "-1")
