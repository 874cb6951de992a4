"""The django-cache backend on every shareable cache Django ships, on the real services.

DatabaseCache (SQLite, PostgreSQL, MariaDB), FileBasedCache, RedisCache (the local
Redis) and PyMemcacheCache (a memcached server started for the run).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from celery import Celery, states
from celery.result import GroupResult
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

import tests.routers
from django_celery_results.backends import CacheBackend
from tests.brokers import REDIS_CACHE_URL
from tests.databases import reachable, strict

MEMCACHED = shutil.which("memcached") or "/usr/bin/memcached"


def kinds() -> list[Any]:
    """The caches under test; DatabaseCache once per database leg of this run."""
    params = []
    for alias in ("default", "postgres", "mysql"):
        if alias in settings.DATABASES:
            mark = pytest.mark.django_db(databases=[alias], transaction=True)
        else:
            mark = pytest.mark.skip(reason=settings.CONFORMANCE_SKIPPED_DATABASES[alias])
        params.append(pytest.param(f"db-{alias}", marks=mark, id=f"db-{alias}"))
    return [*params, "file", "redis", "memcached"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def memcached() -> Iterator[str]:
    """A memcached server of our own on a free port, stopped after the module."""
    if not Path(MEMCACHED).exists():
        if strict():
            pytest.fail("memcached is not installed: run scripts/bootstrap --system-deps")
        pytest.skip("memcached is not installed; apt-get install memcached")
    port = free_port()
    command = [MEMCACHED, "-l", "127.0.0.1", "-p", str(port), "-U", "0"]
    if os.geteuid() == 0:
        command += ["-u", "root"]  # memcached refuses root unless told which user to be
    server = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 10
        while not reachable("127.0.0.1", port):
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.fail("memcached did not start")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(params=kinds())
def cache_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """One shareable cache as the ``results`` alias, reachable or skipped (failing in CI)."""
    kind = request.param
    if kind.startswith("db-"):
        tests.routers.cache_alias = kind.removeprefix("db-")
        config = {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "my_cache_table",
        }
    elif kind == "file":
        config = {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    elif kind == "redis":
        if not strict() and not reachable("127.0.0.1", 6379):
            pytest.skip("Redis is not running on 127.0.0.1:6379")
        config = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
        }
    else:
        config = {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": request.getfixturevalue("memcached"),
        }
    try:
        with override_settings(CACHES={**settings.CACHES, "results": config}):
            caches["results"].clear()
            yield config
    finally:
        tests.routers.cache_alias = None


@pytest.fixture
def app(cache_config: dict[str, Any]) -> Iterator[Celery]:
    app = Celery(set_as_current=False)
    app.conf.update(result_backend="django-cache", cache_backend="results", result_expires=60)
    yield app
    app.close()


def test_backend_and_text_keys(app: Celery) -> None:
    backend = app.backend
    assert isinstance(backend, CacheBackend)
    assert backend.cache_backend is caches["results"]
    assert backend.get_key_for_task("t") == "celery-task-meta-t"
    backend.set(b"celery-task-meta-b", {"status": states.SUCCESS})
    assert backend.get(b"celery-task-meta-b") == {"status": states.SUCCESS}
    assert backend.mget([b"celery-task-meta-b", "missing"]) == [{"status": states.SUCCESS}, None]
    backend.delete(b"celery-task-meta-b")
    assert backend.get("celery-task-meta-b") is None


def test_success_and_failure(app: Celery) -> None:
    backend = app.backend
    backend.mark_as_done("t1", {"x": 1})
    backend.mark_as_failure("t2", KeyError("k"), traceback="tb")
    assert app.AsyncResult("t1", backend=backend).get(timeout=5) == {"x": 1}
    failed = backend.get_task_meta("t2")
    assert failed["status"] == states.FAILURE
    assert isinstance(failed["result"], KeyError)
    assert failed["traceback"] == "tb"


def test_success_is_not_overwritten(app: Celery) -> None:
    backend = app.backend
    backend.mark_as_done("t3", 1)
    backend.mark_as_started("t3")
    assert backend.get_task_meta("t3", cache=False)["status"] == states.SUCCESS


def test_exists_is_a_stored_key(app: Celery) -> None:
    """``AsyncResult.exists()``: a stored result in any state, PENDING included."""
    backend = app.backend
    backend.store_result("pending-1", None, states.PENDING)
    backend.mark_as_done("done-1", 1)
    assert app.AsyncResult("pending-1").exists() is True
    assert app.AsyncResult("done-1").exists() is True
    assert app.AsyncResult("never-sent").exists() is False
    app.AsyncResult("done-1").forget()
    assert app.AsyncResult("done-1").exists() is False
    if "Memcache" not in type(backend.cache_backend).__name__:  # memcached has no EXISTS
        with mock.patch.object(backend.cache_backend, "get", side_effect=AssertionError):
            assert backend.task_result_exists("pending-1") is True  # the key, not the value


def test_uuid_task_ids(app: Celery) -> None:
    """A ``uuid.UUID`` id names the same result as its text, as Celery's key-value backends."""
    backend, task_id = app.backend, uuid.uuid4()
    backend.mark_as_done(task_id, {"x": 1})
    assert backend.get_key_for_task(task_id) == f"celery-task-meta-{task_id}"
    assert backend.get_task_meta(task_id)["result"] == {"x": 1}
    assert app.AsyncResult(str(task_id)).get(timeout=5) == {"x": 1}
    assert backend.task_result_exists(task_id) is True
    other = uuid.uuid4()
    backend.mark_as_done(other, 2)
    joined = {key: meta["result"] for key, meta in backend.get_many([task_id, other], timeout=5)}
    assert joined == {task_id: {"x": 1}, other: 2}
    backend.forget(task_id)
    assert backend.task_result_exists(task_id) is False


def test_group_join_reads_many_keys_at_once(app: Celery) -> None:
    backend = app.backend
    ids = [f"g{i}" for i in range(50)]
    for i, task_id in enumerate(ids):
        backend.mark_as_done(task_id, i)
    group = GroupResult("grp", [app.AsyncResult(t, backend=backend) for t in ids], app=app)
    calls: list[int] = []
    real = backend.cache_backend.get_many

    def counting(keys: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(keys))
        return real(keys, *args, **kwargs)

    backend.cache_backend.get_many = counting
    try:
        assert group.join_native(timeout=5) == list(range(50))
    finally:
        del backend.cache_backend.get_many
    assert calls == [50]


def test_groups_save_restore(app: Celery) -> None:
    backend = app.backend
    group = GroupResult("saved", [app.AsyncResult("a"), app.AsyncResult("b")], app=app)
    backend.save_group(group.id, group)
    assert [r.id for r in backend.restore_group(group.id).results] == ["a", "b"]


def test_result_expires(app: Celery) -> None:
    # Django's database cache stores expiry times in whole seconds (rounded down), so a
    # 1 s timeout may end at once: 2 s leave at least one whole second to read it back.
    app.conf.result_expires = 2
    backend = type(app.backend)(app=app)
    backend.mark_as_done("short", 1)
    assert backend.get_task_meta("short")["status"] == states.SUCCESS
    time.sleep(3.2)
    assert backend.get_task_meta("short", cache=False)["status"] == states.PENDING


@pytest.mark.parametrize("expires", [None, 0])
def test_none_and_zero_keep_results(app: Celery, expires: Any) -> None:
    """Celery's meaning; upstream passed 0 to Django, which then stored nothing."""
    app.conf.result_expires = expires
    backend = type(app.backend)(app=app)
    assert backend.timeout is None
    backend.mark_as_done("kept", 1)
    assert backend.get_task_meta("kept", cache=False)["status"] == states.SUCCESS


def test_timedelta_expires(app: Celery) -> None:
    app.conf.result_expires = timedelta(minutes=5)
    assert type(app.backend)(app=app).timeout == 300


def test_atomic_incr_where_django_makes_it_atomic(
    app: Celery, cache_config: dict[str, Any]
) -> None:
    backend = app.backend
    atomic = cache_config["BACKEND"].endswith(("RedisCache", "PyMemcacheCache"))
    assert backend.implements_incr is atomic
    if not atomic:
        return  # chords go through celery.chord_unlock instead
    results: list[int] = []

    def count() -> None:
        try:
            for _ in range(50):
                results.append(backend.incr("chord-unlock-c1"))
        finally:
            caches.close_all()  # this thread's own cache clients

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 201))


def test_chord_counts_parts_once(app: Celery, cache_config: dict[str, Any]) -> None:
    """With atomic incr the last part fires the callback, exactly once; else chord_unlock."""
    from unittest import mock

    from celery.canvas import Signature

    backend = app.backend
    ids = [f"part{i}" for i in range(5)]
    header = (f"chord-{cache_config['BACKEND'][-12:]}", [app.AsyncResult(i) for i in ids])
    callback = app.signature("tests.callback")
    if not backend.implements_incr:
        # No atomic incr: Celery's chord_unlock task polls the header instead.
        with mock.patch.object(type(backend), "fallback_chord_unlock") as unlock:
            backend.apply_chord(header, callback)
        assert unlock.call_count == 1
        return
    backend.apply_chord(header, callback)
    with mock.patch.object(Signature, "delay") as delay:
        from celery.app.task import Context

        for i, task_id in enumerate(ids):
            request = Context(id=task_id, group=header[0], chord=dict(callback))
            backend.mark_as_done(task_id, i, request=request)
    delay.assert_called_once_with([0, 1, 2, 3, 4])


def test_importing_the_cache_backend_loads_no_models(tmp_path: Path) -> None:
    """Upstream #25: a project on django-cache alone needs none of our tables."""
    code = """
import sys, django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=[],
    CACHES={"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                        "LOCATION": sys.argv[1]}},
)
django.setup()
from celery import Celery
app = Celery(set_as_current=False)
app.conf.result_backend = "django-cache"
app.backend.mark_as_done("t", 42)
assert app.AsyncResult("t", backend=app.backend).get(timeout=5) == 42
loaded = [m for m in sys.modules if m.startswith("django_celery_results.models")]
assert not loaded, loaded
print("ok")
"""
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, str(tmp_path / "c")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.stdout.strip() == "ok", completed.stderr[-2000:]
