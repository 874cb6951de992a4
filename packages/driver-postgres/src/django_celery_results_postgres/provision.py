"""Test helpers of the conformance suite for PostgreSQL (core imports this for the vendor)."""

from django_celery_results.drivers import BaseDriver
from django_celery_results.testing.provision import break_connection, run_on_fresh_connection


@break_connection.for_vendor("postgresql")
def terminate_backend(driver: BaseDriver) -> None:
    """Have the server kill our session from another connection (pg_terminate_backend)."""
    connection = driver.connection
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    run_on_fresh_connection(driver.alias, "SELECT pg_terminate_backend(%s)", [pid])
