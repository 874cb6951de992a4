"""The conformance suite through the MySQL driver, on MariaDB."""

from django_celery_results_mysql import MySQLDriver

from django_celery_results.testing.suite import *  # noqa: F403

CONFORMANCE_ALIASES = ["mysql"]


def test_the_mysql_driver_serves(driver: object) -> None:
    assert type(driver) is MySQLDriver
