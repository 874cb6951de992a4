"""Celery finds our backends by the aliases our packaging declares."""

from __future__ import annotations

from celery import Celery
from celery.app.backends import by_name

from django_celery_results.backends import CacheBackend, DatabaseBackend


def test_aliases_resolve() -> None:
    assert by_name("django-db") is DatabaseBackend
    assert by_name("django-cache") is CacheBackend


def test_dotted_path_resolves() -> None:
    app = Celery(set_as_current=False)
    app.conf.result_backend = "django_celery_results.backends:DatabaseBackend"
    assert isinstance(app.backend, DatabaseBackend)
    app.close()
