"""Registers the MySQL driver: the module the ``mysql`` entry point names."""

from collections.abc import Callable

from django_celery_results.drivers import BaseDriver, hookimpl

from .driver import MySQLDriver


@hookimpl
def register_drivers(register: Callable[[type[BaseDriver]], None]) -> None:
    """Serve every database whose ``connection.vendor`` is ``mysql`` (MariaDB too)."""
    register(MySQLDriver)
