"""Test helpers that differ per database vendor, looked up by ``connection.vendor``.

A driver registers its own versions with ``@break_connection.for_vendor("…")``, the way
SQLAlchemy's ``testing.provision`` lets dialects override helpers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import connections

from ..drivers import BaseDriver

R = TypeVar("R")


class VendorHelper(Generic[R]):
    """A helper with a generic default and per-vendor overrides."""

    def __init__(self, default: Callable[[BaseDriver], R]) -> None:
        self.default = default
        self.vendors: dict[str, Callable[[BaseDriver], R]] = {}
        self.__doc__ = default.__doc__

    def for_vendor(
        self, vendor: str
    ) -> Callable[[Callable[[BaseDriver], R]], Callable[[BaseDriver], R]]:
        """Register ``function`` as this helper for ``vendor``."""

        def decorator(function: Callable[[BaseDriver], R]) -> Callable[[BaseDriver], R]:
            self.vendors[vendor] = function
            return function

        return decorator

    def __call__(self, driver: BaseDriver) -> R:
        """Run the helper registered for the driver's vendor, or the default."""
        return self.vendors.get(driver.connection.vendor, self.default)(driver)


@VendorHelper
def break_connection(driver: BaseDriver) -> None:
    """Make the calling thread's connection fail on its next use, as a dropped one does."""
    connection = driver.connection
    connection.ensure_connection()
    connection.connection.close()  # behind Django's back: it still thinks it is open


@break_connection.for_vendor("postgresql")
def _terminate_postgres_backend(driver: BaseDriver) -> None:
    """Have the server kill our session from another connection (pg_terminate_backend)."""
    connection = driver.connection
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    _run_on_fresh_connection(driver.alias, "SELECT pg_terminate_backend(%s)", [pid])


@break_connection.for_vendor("mysql")
def _kill_mysql_connection(driver: BaseDriver) -> None:
    """Have the server kill our session from another connection (KILL)."""
    connection = driver.connection
    connection.ensure_connection()
    thread_id = connection.connection.thread_id()
    _run_on_fresh_connection(driver.alias, f"KILL {int(thread_id)}", [])


def _run_on_fresh_connection(alias: str, sql: str, params: list[int]) -> None:
    """Run one statement on a second connection to ``alias``, then close it."""
    other = connections.create_connection(alias)
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        other.close()
