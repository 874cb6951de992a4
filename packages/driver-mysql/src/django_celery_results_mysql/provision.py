"""Test helpers of the conformance suite for MySQL/MariaDB (core imports this for the vendor)."""

from django_celery_results.drivers import BaseDriver
from django_celery_results.testing.provision import break_connection, run_on_fresh_connection


@break_connection.for_vendor("mysql")
def kill_connection(driver: BaseDriver) -> None:
    """Have the server kill our session from another connection (KILL)."""
    connection = driver.connection
    connection.ensure_connection()
    thread_id = connection.connection.thread_id()
    run_on_fresh_connection(driver.alias, f"KILL {int(thread_id)}", [])
