"""Naming a failure's exception type: at write time, and from a stored JSON result."""

from __future__ import annotations

import json

import pytest
from celery import states

from django_celery_results.failures import MAX_LENGTH, exception_type_of, stored_exception_type

FAILED = json.dumps({"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"})
CUSTOM = json.dumps({"exc_type": "Timeout", "exc_message": [], "exc_module": "proj.errors"})


class Boom(Exception):
    pass


@pytest.mark.parametrize(
    ("content_type", "result", "name"),
    [
        ("application/json", FAILED, "ValueError"),
        ("application/json", CUSTOM, "proj.errors.Timeout"),
        ("application/x-python-serialize", "gASV", None),
        ("application/json", "{broken", None),
        ("application/json", "[1]", None),
        ("application/json", None, None),
        ("application/json", "[" * 100_000, None),
    ],
)
def test_a_stored_json_failure_is_named_and_nothing_else_is_decoded(
    content_type: str, result: str | None, name: str | None
) -> None:
    assert stored_exception_type(content_type, result) == name


def test_a_write_names_the_exception_as_celery_json_does() -> None:
    assert exception_type_of(Boom("x"), states.FAILURE) == f"{__name__}.Boom"
    assert exception_type_of(KeyError("x"), states.FAILURE) == "KeyError"
    assert exception_type_of(json.loads(CUSTOM), states.FAILURE) == "proj.errors.Timeout"
    assert exception_type_of(Boom("x"), states.RETRY) is None
    assert exception_type_of(42, states.FAILURE) is None


def test_a_long_name_is_cut_to_the_column() -> None:
    value = {"exc_type": "E" * 1000, "exc_module": "m"}
    assert len(exception_type_of(value, states.FAILURE) or "") == MAX_LENGTH
