"""Application configuration."""

import django
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

__all__ = ["CeleryResultConfig"]


class CeleryResultConfig(AppConfig):
    """Default configuration for the django_celery_results app."""

    name = "django_celery_results"
    label = "django_celery_results"
    verbose_name = _("Celery Results")
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        """Register the checks, the PENDING handler, the writers and the django.tasks runner.

        The checks are also logged when a worker or beat starts.
        """
        from . import (
            batching,
            checks,
            pending,
            writers,
        )

        pending.connect()
        checks.connect()
        writers.install(batching.WRITER, pending.WRITER)
        if django.VERSION >= (6, 0):
            # Registers the Celery task that runs django.tasks tasks (in every worker).
            from . import tasks  # noqa: F401
