"""The state precedence rule, and its SQL form for drivers."""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest
from celery import states as celery_states
from django.db import connections

from django_celery_results import states

ALL = ["PENDING", "RECEIVED", "STARTED", "RETRY", "PROGRESS", "FAILURE", "REVOKED", "SUCCESS"]


@pytest.mark.parametrize(
    ("stored", "new", "allowed"),
    [
        ("SUCCESS", "SUCCESS", False),
        ("SUCCESS", "FAILURE", False),
        ("SUCCESS", "STARTED", False),
        ("FAILURE", "SUCCESS", True),
        ("FAILURE", "REVOKED", False),  # a late revoke broadcast keeps the outcome
        ("REVOKED", "FAILURE", True),
        ("REVOKED", "REVOKED", True),
        ("REVOKED", "SUCCESS", True),
        ("FAILURE", "RETRY", False),
        ("REVOKED", "STARTED", False),
        ("STARTED", "RETRY", True),
        ("RETRY", "STARTED", True),
        ("STARTED", "PROGRESS", True),
        ("STARTED", "PENDING", False),
        ("PENDING", "PENDING", True),
        ("PENDING", "STARTED", True),
    ],
)
def test_may_overwrite(stored: str, new: str, allowed: bool) -> None:
    assert states.may_overwrite(stored, new) is allowed


def test_terminal_states_are_celerys_ready_states() -> None:
    assert states.TERMINAL_STATES == celery_states.READY_STATES


def test_final_state() -> None:
    assert states.final_state(["STARTED", "SUCCESS", "STARTED", "RETRY"]) == "SUCCESS"
    assert states.final_state(["FAILURE", "STARTED", "SUCCESS"]) == "SUCCESS"
    assert states.final_state([], initial="PENDING") == "PENDING"


@pytest.mark.django_db
def test_rank_case_sql_matches_rank() -> None:
    """The SQL form computes the same rank as Python, on a real database."""
    sql, params = states.rank_case_sql("s.state")
    values = " UNION ALL ".join("SELECT %s AS state" for _ in ALL)
    with connections["default"].cursor() as cursor:
        cursor.execute(f"SELECT s.state, {sql} FROM ({values}) s", [*params, *ALL])
        ranks = dict(cursor.fetchall())
    assert ranks == {state: states.rank(state) for state in ALL}


def test_overwritable_q_agrees_with_may_overwrite() -> None:
    """A stored state matches the filter exactly when the new state may overwrite it."""
    for stored, new in itertools.product(ALL, ALL):
        q = states.overwritable_q(new)
        child = q.children[0]
        field, value = cast(tuple[str, Any], child)
        matches = (stored in value) if field.endswith("__in") else stored == value
        if q.negated:
            matches = not matches
        assert matches is states.may_overwrite(stored, new), (stored, new)


def test_rank_case_literal_sql() -> None:
    sql = states.rank_case_literal_sql("status")
    assert "%s" not in sql
    assert "WHEN 'SUCCESS' THEN 4" in sql


@pytest.mark.django_db
def test_overwritable_sql_agrees_with_may_overwrite() -> None:
    """Run on a real database for every pair of states."""
    values = " UNION ALL ".join("SELECT %s AS state" for _ in ALL)
    with connections["default"].cursor() as cursor:
        for new in ALL:
            test = states.overwritable_sql(new, "s.state")
            cursor.execute(f"SELECT s.state FROM ({values}) s WHERE {test}", ALL)
            allowed = {state for (state,) in cursor.fetchall()}
            assert allowed == {s for s in ALL if states.may_overwrite(s, new)}, new


def test_precedence_class_groups_states_with_the_same_test() -> None:
    for first, second in itertools.product(ALL, ALL):
        same = states.overwritable_sql(first) == states.overwritable_sql(second)
        assert same is (states.precedence_class(first) == states.precedence_class(second))
