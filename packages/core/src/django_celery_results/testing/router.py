"""A database router that sends our models to the alias under test."""

from __future__ import annotations

from typing import Any

APP_LABEL = "django_celery_results"

# A plain module global, not a ContextVar: threads and forked processes started by a test
# must write to the same database as the test itself.
_current_alias: str | None = None


def use_alias(alias: str | None) -> None:
    """Route our models to ``alias`` (``None``: Django's default routing)."""
    global _current_alias
    _current_alias = alias


def current_alias() -> str | None:
    """Return the alias our models are routed to, if one is set."""
    return _current_alias


class AliasRouter:
    """Route ``django_celery_results`` models to the alias set by :func:`use_alias`.

    Put ``"django_celery_results.testing.router.AliasRouter"`` first in the test settings'
    ``DATABASE_ROUTERS`` to run the conformance suite once per database alias.
    """

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        """Read our models from the alias under test."""
        return _current_alias if model._meta.app_label == APP_LABEL else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        """Write our models to the alias under test."""
        return _current_alias if model._meta.app_label == APP_LABEL else None
