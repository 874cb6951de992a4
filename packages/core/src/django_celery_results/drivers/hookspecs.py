"""Hook specifications: what a database driver package may implement."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .base import BaseDriver

PROJECT = "django_celery_results"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Marker for a driver's hook implementations: ``@hookimpl def register_drivers(register): …``.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_drivers(register: Callable[[type[BaseDriver]], None]) -> None:
    """Register driver classes, one per database vendor.

    Call ``register(DriverClass)`` for each driver the package provides. The driver
    serves every Django database alias whose ``connection.vendor`` equals
    ``DriverClass.vendor``; aliases with no registered driver use the generic one.

    :param register: call it with a :class:`~django_celery_results.drivers.BaseDriver`
        subclass. Registering two different classes for one vendor is an error.
    """
