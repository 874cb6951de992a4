"""The plugin manager: loads driver packages and finds the driver for a connection."""

from __future__ import annotations

import functools
import logging
import os
import threading

import pluggy
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.dispatch import receiver

from ..conf import app_settings
from . import hookspecs
from .base import BaseDriver
from .generic import GenericDriver

#: Entry point group of driver packages; each entry point is named after its vendor.
ENTRY_POINT_GROUP = "django_celery_results.drivers"
#: Set this environment variable to log every hook call (pluggy's tracing).
TRACE_ENV = "DJANGO_CELERY_RESULTS_TRACE_DRIVERS"

logger = logging.getLogger(__name__)
_instances: dict[str, BaseDriver] = {}
# Reentrant: a garbage-collected AsyncResult may look a driver up while this thread
# holds it (loading plugins, say).
_lock = threading.RLock()


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """Build the plugin manager once: specs, blocked drivers, entry points, checks."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in app_settings().DISABLED_DRIVERS:
        pm.set_blocked(name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(logger.info)
        pm.enable_tracing()
    return pm


@functools.cache
def registered_drivers() -> dict[str, type[BaseDriver]]:
    """Return the driver classes the loaded packages registered, by vendor."""
    drivers: dict[str, type[BaseDriver]] = {}

    def register(driver_class: type[BaseDriver]) -> None:
        if not (isinstance(driver_class, type) and issubclass(driver_class, BaseDriver)):
            raise ImproperlyConfigured(
                f"register_drivers() got {driver_class!r}; register a BaseDriver subclass."
            )
        vendor = driver_class.vendor
        if not vendor:
            raise ImproperlyConfigured(f"{driver_class.__qualname__}.vendor is empty.")
        if drivers.get(vendor, driver_class) is not driver_class:
            raise ImproperlyConfigured(
                f"Two drivers registered for vendor {vendor!r}: {drivers[vendor]!r} and "
                f"{driver_class!r}. Uninstall one, or name one in "
                "DJANGO_CELERY_RESULTS['DISABLED_DRIVERS']."
            )
        drivers[vendor] = driver_class

    get_plugin_manager().hook.register_drivers(register=register)
    return drivers


def driver_class_for_vendor(vendor: str) -> type[BaseDriver]:
    """Return the driver class serving ``vendor``: a registered one, or the generic one."""
    return registered_drivers().get(vendor, GenericDriver)


def get_driver(connection: BaseDatabaseWrapper) -> BaseDriver:
    """Return the driver serving ``connection``'s alias (one instance per alias)."""
    return driver_for_alias(connection.alias)


def driver_for_alias(alias: str) -> BaseDriver:
    """Return the driver serving the database ``alias`` (one instance per alias).

    Every backend call looks its driver up, so the common case is one dict lookup: the
    connection (a thread-local, slow to reach) is only touched to create the driver.
    """
    driver = _instances.get(alias)
    if driver is None:
        with _lock:
            driver = _instances.get(alias)
            if driver is None:
                vendor = connections[alias].vendor
                settings = app_settings()
                driver_class = driver_class_for_vendor(vendor)
                driver = driver_class(
                    alias,
                    pending_rows=settings.TRACK_PENDING,
                    notify=settings.NOTIFY and driver_class.features_class.supports_notify,
                )
                _instances[alias] = driver
    return driver


def driver_for_model(model: type[Model], *, write: bool = True) -> BaseDriver:
    """Return the driver of the database Django's routers pick for ``model``."""
    alias = router.db_for_write(model) if write else router.db_for_read(model)
    return driver_for_alias(alias or "default")


def driver_for(model: type[Model], using: str | None = None, *, write: bool = True) -> BaseDriver:
    """Return the driver of ``using`` when given, else of the database routed for ``model``."""
    return driver_for_alias(using) if using else driver_for_model(model, write=write)


@receiver(setting_changed)
def _restrategize_drivers(setting: str, **kwargs: object) -> None:
    """Give the built drivers the strategies of changed settings (tests override them).

    Runs after ``conf`` forgot the old settings (its receiver was connected first).
    """
    if setting == "DJANGO_CELERY_RESULTS":
        settings = app_settings()
        with _lock:
            for driver in _instances.values():
                driver.pending_rows = settings.TRACK_PENDING
                driver.notify = settings.NOTIFY and driver.features.supports_notify


def reset() -> None:
    """Forget loaded plugins and driver instances (for tests that change settings)."""
    with _lock:
        _instances.clear()
        registered_drivers.cache_clear()
        get_plugin_manager.cache_clear()
