"""The entry point's module: registers the SQLite driver with core."""

from collections.abc import Callable

from django_celery_results.drivers import BaseDriver, hookimpl

from .driver import SQLiteDriver


@hookimpl
def register_drivers(register: Callable[[type[BaseDriver]], None]) -> None:
    """Serve Django's ``sqlite`` vendor."""
    register(SQLiteDriver)
