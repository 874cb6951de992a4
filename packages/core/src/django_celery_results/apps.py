"""The app's configuration: ``ready()`` wires the process hooks (``lifecycle``)."""

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
        """Wire the app's process hooks (``lifecycle``) and register its checks.

        The checks are also logged when a worker or beat starts.
        """
        from . import lifecycle  # its checks module registers them on import

        lifecycle.install()
        # Registers the Celery task that runs the admin's jobs (in every worker).
        from .operations import jobs  # noqa: F401

        if django.VERSION >= (6, 0):
            # Registers the Celery task that runs django.tasks tasks (in every worker).
            from . import tasks  # noqa: F401
