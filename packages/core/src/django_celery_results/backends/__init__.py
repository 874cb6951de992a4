"""Celery result backends: ``django-db`` (the database) and ``django-cache`` (the cache).

Each is imported when first named, so ``django-cache`` alone loads none of our models.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache import CacheBackend
    from .database import DatabaseBackend

__all__ = ["CacheBackend", "DatabaseBackend"]

_MODULES = {"CacheBackend": ".cache", "DatabaseBackend": ".database"}


def __getattr__(name: str) -> Any:
    """Import a backend class on first use (PEP 562)."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
