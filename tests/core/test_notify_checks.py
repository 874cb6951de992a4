"""System checks of ``NOTIFY``: a database that can notify, and no transaction-mode pooler."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import override_settings

from django_celery_results.checks import check_notify
from django_celery_results.testing.router import use_alias

ON = override_settings(DJANGO_CELERY_RESULTS={"NOTIFY": True})


@pytest.fixture
def on_postgres() -> Iterator[None]:
    use_alias("postgres")
    try:
        yield
    finally:
        use_alias(None)


def test_off_says_nothing() -> None:
    assert check_notify() == []


@ON
def test_a_database_that_cannot_notify_is_an_error() -> None:
    [error] = check_notify()  # the tests' default database is SQLite
    assert error.id == "django_celery_results.E004"
    assert "'default' (sqlite)" in error.msg
    assert "django-celery-results[postgres]" in (error.hint or "")


@ON
@pytest.mark.usefixtures("on_postgres")
def test_postgres_with_its_driver_is_fine() -> None:
    assert check_notify() == []


@ON
@pytest.mark.usefixtures("on_postgres")
def test_a_transaction_mode_pooler_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connections["postgres"].settings_dict, "DISABLE_SERVER_SIDE_CURSORS", True)
    [warning] = check_notify()
    assert warning.id == "django_celery_results.W002"
    assert "PgBouncer" in warning.msg
