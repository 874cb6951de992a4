"""Test helpers that differ per database vendor, looked up by ``connection.vendor``.

A driver package registers its own versions in a ``provision`` module of its own, with
``@break_connection.for_vendor("…")``, the way SQLAlchemy's dialects override the helpers
of ``testing.provision``; core imports that module for the vendor under test.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from django.db import connections

from ..drivers import BaseDriver
from ..drivers.manager import ENTRY_POINT_GROUP

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
        vendor = driver.connection.vendor
        load_vendor_provision(vendor)
        return self.vendors.get(vendor, self.default)(driver)


@VendorHelper
def break_connection(driver: BaseDriver) -> None:
    """Make the calling thread's connection fail on its next use, as a dropped one does."""
    connection = driver.connection
    connection.ensure_connection()
    connection.connection.close()  # behind Django's back: it still thinks it is open


def run_on_fresh_connection(alias: str, sql: str, params: list[int]) -> None:
    """Run one statement on a second connection to ``alias``, then close it."""
    other = connections.create_connection(alias)
    try:
        with other.cursor() as cursor:
            cursor.execute(sql, params)
    finally:
        other.close()


#: Vendors whose driver package's ``provision`` module was looked for already.
_loaded: set[str] = set()


def load_vendor_provision(vendor: str) -> None:
    """Import the ``provision`` module of the driver package installed for ``vendor``.

    The package is the one whose ``django_celery_results.drivers`` entry point is named
    after the vendor; its helpers then serve every driver on that vendor's databases (the
    generic one too). A package without a ``provision`` module keeps the defaults.
    """
    if vendor in _loaded:
        return
    _loaded.add(vendor)
    for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=vendor):
        package = entry_point.module.rpartition(".")[0] or entry_point.module
        name = f"{package}.provision"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
