"""The conformance suite against the generic driver, on every database leg."""

from django_celery_results.drivers import BaseDriver, GenericDriver
from django_celery_results.testing.suite import *  # noqa: F403

# One alias per server: the connection-option variants are the drivers' business.
CONFORMANCE_ALIASES = ["default", "postgres", "mysql"]


def test_core_runs_the_generic_driver(driver: BaseDriver) -> None:
    assert type(driver) is GenericDriver
