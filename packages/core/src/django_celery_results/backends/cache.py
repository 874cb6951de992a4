"""Celery cache backend using the Django cache framework (``django-cache``).

It imports no models: a project that only uses the cache backend needs none of our tables.
"""

from __future__ import annotations

from typing import Any

from celery.backends.base import KeyValueStoreBackend
from django.core.cache import BaseCache, caches
from django.core.cache import cache as default_cache
from kombu.utils.encoding import bytes_to_str as _bytes_to_str


def bytes_to_str(key: str | bytes) -> str:
    """Return ``key`` as text: Django's cache key checks reject bytes."""
    return str(_bytes_to_str(key))  # type: ignore[no-untyped-call]


class CacheBackend(KeyValueStoreBackend):
    """Backend using the Django cache framework to store task metadata."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Must make sure backend doesn't convert exceptions to dict.
        self.serializer = "pickle"

    def get(self, key: str | bytes) -> Any:
        """Return the value stored under ``key``, or ``None``."""
        return self.cache_backend.get(bytes_to_str(key))

    def mget(self, keys: list[str | bytes]) -> list[Any]:
        """Return the values of ``keys``, in order, with one cache round trip."""
        text_keys = [bytes_to_str(key) for key in keys]
        found = self.cache_backend.get_many(text_keys)
        return [found.get(key) for key in text_keys]

    def set(self, key: str | bytes, value: Any) -> None:
        """Store ``value`` under ``key`` for ``result_expires`` seconds."""
        self.cache_backend.set(bytes_to_str(key), value, self.expires)

    def delete(self, key: str | bytes) -> None:
        """Delete ``key``."""
        self.cache_backend.delete(bytes_to_str(key))

    def encode(self, data: Any) -> Any:
        """Store values as they are: the Django cache pickles them itself."""
        return data

    def decode(self, data: Any) -> Any:
        """Return values as they are."""
        return data

    @property
    def cache_backend(self) -> BaseCache:
        """The Django cache named by ``CELERY_CACHE_BACKEND``, or the default cache."""
        backend = self.app.conf.cache_backend
        return caches[backend] if backend else default_cache
