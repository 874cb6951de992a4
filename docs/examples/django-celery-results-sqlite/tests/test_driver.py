"""The driver serves SQLite: the suite ran against it, not the generic driver."""

from typing import Any

from django_celery_results_sqlite import SQLiteDriver


def test_the_suite_uses_this_driver(driver: Any) -> None:
    assert isinstance(driver, SQLiteDriver)
