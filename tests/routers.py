"""Test-only routing of Django's DatabaseCache table to the database under test."""

from __future__ import annotations

from typing import Any

#: The alias DatabaseCache reads and writes (``None``: Django's default routing).
cache_alias: str | None = None


class CacheTableRouter:
    """Send ``DatabaseCache``'s model (app label ``django_cache``) to :data:`cache_alias`."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return cache_alias if model._meta.app_label == "django_cache" else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return cache_alias if model._meta.app_label == "django_cache" else None
