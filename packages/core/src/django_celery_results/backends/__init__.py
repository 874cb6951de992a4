"""Celery result backends: ``django-db`` (the database) and ``django-cache`` (the cache)."""

from .cache import CacheBackend
from .database import DatabaseBackend

__all__ = ["CacheBackend", "DatabaseBackend"]
