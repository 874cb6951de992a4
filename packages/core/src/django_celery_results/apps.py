"""Application configuration."""

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
        """Register the system checks and the publish-time PENDING handler."""
        from . import (
            checks,  # noqa: F401 - registers the checks on import
            pending,  # noqa: F401 - connects before_task_publish on import
        )
