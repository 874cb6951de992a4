"""The conformance suite through the PostgreSQL driver, with and without its pool."""

from django_celery_results_postgres import PostgresDriver

from django_celery_results.testing.suite import *  # noqa: F403

CONFORMANCE_ALIASES = ["postgres", "postgres_pool", "postgres_ssb"]


def test_the_postgres_driver_serves(driver: object) -> None:
    assert type(driver) is PostgresDriver
