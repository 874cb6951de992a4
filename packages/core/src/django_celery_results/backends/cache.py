"""Celery cache backend using the Django cache framework (``django-cache``).

It imports no models: a project that only uses the cache backend needs none of our tables.
"""

from __future__ import annotations

from typing import Any

from celery.backends.base import KeyValueStoreBackend
from django.core.cache import BaseCache, caches
from django.core.cache.backends.memcached import BaseMemcachedCache
from django.core.cache.backends.redis import RedisCache
from kombu.utils.encoding import bytes_to_str as _bytes_to_str

#: Django caches whose ``incr`` and ``add`` are atomic across processes (Redis INCR and
#: SET NX, memcached incr and add). Django's other caches implement ``incr`` as a read
#: then a write, so two workers could count one chord part: they use ``chord_unlock``.
ATOMIC_INCR_CACHES: tuple[type[BaseCache], ...] = (RedisCache, BaseMemcachedCache)


def bytes_to_str(key: str | bytes) -> str:
    """Return ``key`` as text: Django's cache key checks reject bytes."""
    return str(_bytes_to_str(key))  # type: ignore[no-untyped-call]


class CacheBackend(KeyValueStoreBackend):
    """Backend using the Django cache framework to store task metadata.

    ``CELERY_CACHE_BACKEND`` names the ``CACHES`` alias (``default`` when unset). Keys
    are text. ``result_expires`` keeps Celery's meaning: ``None`` or ``0`` keeps results
    without expiry (Django reads a timeout of 0 as "do not store").
    """

    #: Keys are built as text (Celery's default is bytes, which Django's key checks refuse).
    key_t = str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The Django cache pickles values itself: exceptions stay exception objects.
        self.serializer = "pickle"

    @property
    def implements_incr(self) -> bool:
        """Count chord parts with the cache's ``incr`` where Django makes it atomic."""
        return isinstance(self.cache_backend, ATOMIC_INCR_CACHES)

    @property
    def timeout(self) -> float | None:
        """The cache timeout of a result: ``result_expires``, ``None`` for no expiry."""
        return self.expires or None

    def get(self, key: str | bytes) -> Any:
        """Return the value stored under ``key``, or ``None``."""
        return self.cache_backend.get(bytes_to_str(key))

    def mget(self, keys: list[str | bytes]) -> list[Any]:
        """Return the values of ``keys``, in order, with one cache round trip."""
        text_keys = [bytes_to_str(key) for key in keys]
        found = self.cache_backend.get_many(text_keys)
        return [found.get(key) for key in text_keys]

    def task_result_exists(self, task_id: Any) -> bool:
        """Return True when a result of ``task_id`` is stored, in any state (Celery 5.7).

        Asks the cache for the key (``has_key``: Redis ``EXISTS``, one indexed lookup in a
        ``DatabaseCache``) instead of fetching and unpickling the result.
        """
        return bool(self.cache_backend.has_key(bytes_to_str(self.get_key_for_task(task_id))))

    def set(self, key: str | bytes, value: Any) -> None:
        """Store ``value`` under ``key`` for ``result_expires`` seconds (or for good)."""
        self.cache_backend.set(bytes_to_str(key), value, self.timeout)

    def delete(self, key: str | bytes) -> None:
        """Delete ``key``."""
        self.cache_backend.delete(bytes_to_str(key))

    def incr(self, key: str | bytes) -> int:
        """Add one to the counter at ``key``, creating it at 1; return the new value."""
        text_key, cache = bytes_to_str(key), self.cache_backend
        try:
            return int(cache.incr(text_key))
        except ValueError:  # no counter yet: the first part creates it, atomically
            if cache.add(text_key, 1, self.timeout):
                return 1
            return int(cache.incr(text_key))

    def expire(self, key: str | bytes, value: float | None) -> None:
        """Give ``key`` a new lifetime of ``value`` seconds (``None`` or 0: no expiry)."""
        self.cache_backend.touch(bytes_to_str(key), value or None)

    def encode(self, data: Any) -> Any:
        """Store values as they are: the Django cache pickles them itself."""
        return data

    def decode(self, data: Any) -> Any:
        """Return values as they are."""
        return data

    @property
    def cache_backend(self) -> BaseCache:
        """The Django cache named by ``CELERY_CACHE_BACKEND``, or the default cache."""
        return caches[self.app.conf.cache_backend or "default"]
