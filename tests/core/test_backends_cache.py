"""The django-cache backend: text keys, expiry and reads of many keys at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery import Celery, states
from django.core.cache import caches

from django_celery_results.backends import CacheBackend


@pytest.fixture
def app() -> Iterator[Celery]:
    app = Celery(set_as_current=False)
    app.conf.update(result_backend="django-cache", cache_backend="default", result_expires=60)
    yield app
    app.close()


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    caches["default"].clear()


def test_backend_class(app: Celery) -> None:
    assert isinstance(app.backend, CacheBackend)
    assert app.backend.cache_backend is caches["default"]


def test_store_and_read(app: Celery) -> None:
    backend = app.backend
    backend.store_result("t1", {"x": 1}, states.SUCCESS)
    assert backend.get_task_meta("t1")["result"] == {"x": 1}
    assert caches["default"].get("celery-task-meta-t1")["status"] == states.SUCCESS


def test_bytes_keys_become_text(app: Celery) -> None:
    backend = app.backend
    backend.set(b"celery-task-meta-b", {"status": states.SUCCESS})
    assert backend.get(b"celery-task-meta-b") == {"status": states.SUCCESS}
    assert backend.mget([b"celery-task-meta-b", "missing"]) == [{"status": states.SUCCESS}, None]
    backend.delete(b"celery-task-meta-b")
    assert backend.get("celery-task-meta-b") is None


def test_exceptions_are_kept_as_objects(app: Celery) -> None:
    backend = app.backend
    backend.mark_as_failure("t2", KeyError("k"))
    assert isinstance(backend.get_task_meta("t2")["result"], KeyError)


def test_success_is_not_overwritten(app: Celery) -> None:
    backend = app.backend
    backend.mark_as_done("t3", 1)
    backend.mark_as_started("t3")
    assert backend.get_task_meta("t3", cache=False)["status"] == states.SUCCESS


def test_named_cache(app: Celery) -> None:
    app.conf.cache_backend = "dummy"
    assert app.backend.cache_backend is caches["dummy"]
