"""Registers the PostgreSQL driver: the module the ``postgresql`` entry point names."""

from collections.abc import Callable

from django_celery_results.drivers import BaseDriver, hookimpl

from .driver import PostgresDriver


@hookimpl
def register_drivers(register: Callable[[type[BaseDriver]], None]) -> None:
    """Serve every database whose ``connection.vendor`` is ``postgresql``."""
    register(PostgresDriver)
