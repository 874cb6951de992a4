"""System checks: the ``DJANGO_CELERY_RESULTS`` setting, and which driver serves each database."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Info, Tags, register
from django.db import connections

from .conf import SETTING_NAME, validate
from .drivers.manager import driver_class_for_vendor


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Report unknown keys and wrong types in ``DJANGO_CELERY_RESULTS``."""
    return [
        Error(
            problem,
            hint="Fix or remove the key; every key is listed in docs/settings.md.",
            id="django_celery_results.E001",
        )
        for problem in validate(getattr(settings, SETTING_NAME, None))
    ]


@register(Tags.database)
def check_drivers(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """Say which driver serves each database alias (``manage.py check --database …``)."""
    messages: list[CheckMessage] = []
    for alias in databases or ():
        vendor = connections[alias].vendor
        driver = driver_class_for_vendor(vendor)
        messages.append(
            Info(
                f"Database {alias!r} ({vendor}) is served by {driver.__module__}."
                f"{driver.__qualname__}.",
                hint=None
                if driver.vendor == vendor
                else f"Install a driver for {vendor} for faster writes, if there is one "
                "(e.g. django-celery-results[postgres] or [mysql]).",
                id="django_celery_results.I001",
            )
        )
    return messages
