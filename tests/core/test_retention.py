"""Retention rules: parsing, validation messages, globs, and which rule a row falls under."""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import checks
from django.test import override_settings

from django_celery_results import retention
from django_celery_results.conf import app_settings, validate


@pytest.mark.parametrize(
    ("glob", "matching", "other"),
    [
        ("reports.*", ["reports.build", "reports."], ["reportsXbuild", "xreports.build"]),
        ("mail.send", ["mail.send"], ["mailXsend", "mail.send2"]),
        ("a?c", ["abc", "a-c"], ["ac", "abbc"]),
        ("q[12]", ["q1", "q2"], ["q3", "q12"]),
        ("q[!12]", ["q3"], ["q1"]),
        ("pri(ority)+", ["pri(ority)+"], ["priority"]),
        ("[oops", ["[oops"], ["o"]),
    ],
)
def test_globs(glob: str, matching: list[str], other: list[str]) -> None:
    pattern = retention.glob_regex(glob)
    for name in matching:
        assert re.search(pattern, name), name
    for name in other:
        assert not re.search(pattern, name), name


def test_parse_names_rules_and_normalises_keep() -> None:
    rules = retention.parse(
        [
            {"status": "FAILURE", "keep": timedelta(days=30)},
            {"queue": "billing", "keep": None, "name": "billing"},
            {"status": ["REVOKED", "FAILURE"], "task_name": "x.*", "keep": 60},
        ]
    )
    assert [r.name for r in rules] == ["rule 1", "billing", "rule 3"]
    assert rules[0].status == frozenset({"FAILURE"})
    assert rules[1].keep is None
    assert rules[2].keep == timedelta(seconds=60)
    assert retention.describe(rules[0]) == "status FAILURE: 30 days"
    assert retention.describe(rules[2]) == "status FAILURE/REVOKED, task_name x.*: 1 minute"


def test_rule_for_is_the_first_match() -> None:
    rules = retention.parse(
        [{"queue": "billing", "keep": None}, {"status": "FAILURE", "keep": 86400}]
    )
    billing_failure = SimpleNamespace(status="FAILURE", queue="billing", task_name=None)
    failure = SimpleNamespace(status="FAILURE", queue="celery", task_name=None)
    success = SimpleNamespace(status="SUCCESS", queue=None, task_name=None)
    assert retention.rule_for(rules, billing_failure) is rules[0]
    assert retention.rule_for(rules, failure) is rules[1]
    assert retention.rule_for(rules, success) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"status": "FAILURE"}, "[0] has no 'keep': say how long its rows are kept"),
        ({"keep": 10}, "[0] matches every row: give it one of status, task_name"),
        ({"status": "FAILURE", "keep": -1}, "[0]['keep'] must be a timedelta or a number"),
        ({"status": "FAILURE", "keep": "30d"}, "[0]['keep'] must be a timedelta"),
        ({"status": [], "keep": 1}, "[0]['status'] must be a state or a list of states"),
        ({"queue": "", "keep": 1}, "[0]['queue'] must be a name or a glob"),
        ({"queu": "x", "keep": 1}, "[0] has unknown keys ['queu']; a rule has: status"),
    ],
)
def test_problems_name_the_fix(value: dict[str, object], message: str) -> None:
    problems = validate({"RETENTION": [value]})
    assert any(message in problem for problem in problems), problems


def test_retention_must_be_a_list() -> None:
    [problem] = validate({"RETENTION": {"status": "FAILURE", "keep": 1}})
    assert "must be a list of rules" in problem


def test_group_retention() -> None:
    assert validate({"GROUP_RETENTION": timedelta(days=2)}) == []
    assert validate({"GROUP_RETENTION": None}) == []
    [problem] = validate({"GROUP_RETENTION": -5})
    assert "GROUP_RETENTION" in problem
    with override_settings(DJANGO_CELERY_RESULTS={"GROUP_RETENTION": 3600}):
        assert timedelta(hours=1) == app_settings().GROUP_RETENTION
    with override_settings(DJANGO_CELERY_RESULTS={}):
        assert app_settings().GROUP_RETENTION == "result_expires"


def test_system_check_reports_a_bad_rule() -> None:
    with override_settings(DJANGO_CELERY_RESULTS={"RETENTION": [{"status": "FAILURE"}]}):
        errors = [m for m in checks.run_checks() if m.id == "django_celery_results.E001"]
        assert len(errors) == 1
        assert "has no 'keep'" in errors[0].msg
        assert app_settings().RETENTION == ()  # an invalid value is not used


def test_plan_excludes_earlier_rules() -> None:
    from django.utils import timezone

    rules = retention.parse(
        [{"queue": "billing", "keep": None}, {"status": "FAILURE", "keep": 30 * 86400}]
    )
    steps = retention.plan(rules, timedelta(days=1), timezone.now())
    assert [s.name for s in steps] == ["rule 2", "result_expires"]
    assert "billing" in str(steps[0].condition)  # rule 1's rows are excluded from rule 2
    assert retention.plan(rules, None, timezone.now())[-1].name == "rule 2"
