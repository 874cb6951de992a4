"""The PostgreSQL driver's features, on the real server."""

from __future__ import annotations

from typing import Any

from django_celery_results.drivers import GenericDriver

CONFORMANCE_ALIASES = ["postgres"]


def test_the_fast_paths_are_on(driver: Any) -> None:
    features = driver.features
    assert features.supports_single_statement_upsert
    assert features.supports_multi_row_upsert
    assert features.supports_atomic_chord_decrement
    assert features.supports_notify
    assert features.supports_concurrent_processes


def test_statements_run_on_psycopg_s_cursor_not_a_plain_one(driver: Any) -> None:
    assert not driver.features.can_run_plain_client_cursor
    assert not GenericDriver(driver.alias).features.can_run_plain_client_cursor
    driver.connection.ensure_connection()
    cursor = driver.ops.new_client_cursor(driver.connection)
    assert type(cursor).__module__.startswith("psycopg")
