"""Database drivers: what a driver author imports, and how core finds a driver.

A driver package provides a :class:`BaseDriver` subclass for one database vendor and
registers it from a ``hooks`` module named by an entry point of group
``django_celery_results.drivers``::

    # django_celery_results_postgres/hooks.py
    from django_celery_results.drivers import hookimpl

    from .driver import PostgresDriver


    @hookimpl
    def register_drivers(register):
        register(PostgresDriver)

See ``docs/writing-a-driver.md``.
"""

from .base import (
    BaseDriver,
    BaseFeatures,
    BaseOperations,
    IdUsage,
    ListenerLost,
    NotificationsUnavailable,
    error_chain,
)
from .cursors import ClientCursors
from .generic import GenericDriver, GenericFeatures, GenericOperations
from .hookspecs import hookimpl
from .manager import driver_for, driver_for_alias, driver_for_model, get_driver
from .rows import TASK_META_COLUMNS, TaskRow
from .sql import ChunkSize, RangeWalk, SQLOperations

__all__ = [
    "TASK_META_COLUMNS",
    "BaseDriver",
    "BaseFeatures",
    "BaseOperations",
    "ChunkSize",
    "ClientCursors",
    "GenericDriver",
    "GenericFeatures",
    "GenericOperations",
    "IdUsage",
    "ListenerLost",
    "NotificationsUnavailable",
    "RangeWalk",
    "SQLOperations",
    "TaskRow",
    "driver_for",
    "driver_for_alias",
    "driver_for_model",
    "error_chain",
    "get_driver",
    "hookimpl",
]
