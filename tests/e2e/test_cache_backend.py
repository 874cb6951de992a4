"""The getting-started page's ``django-cache`` example, end to end with a real worker.

``CELERY_RESULT_BACKEND = "django-cache"``, ``CELERY_CACHE_BACKEND = "default"`` and a
``DatabaseCache`` at ``my_cache_table``: the configuration that failed in upstream's
worker with bytes keys (#179, #230).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, chord, group
from celery.exceptions import ChordError

from .conftest import TIMEOUT, Brokers, Combo, Worker, combo_params, wait_until

T = "demo_app.tasks."
EXPIRES = 4.0

pytestmark = pytest.mark.parametrize(
    "combo",
    combo_params([Combo("default", "generic", "redis", "prefork")]),
    indirect=True,
    scope="module",
)


@pytest.fixture(scope="module")
def cache_worker(combo: Combo, brokers: Brokers, django_db_setup: None) -> Iterator[Worker]:
    brokers.ensure(combo.broker)
    worker = Worker(
        combo,
        queue=f"e2e-cache-{uuid.uuid4().hex[:10]}",
        extra_env={"DEMO_RESULT_BACKEND": "django-cache", "DEMO_RESULT_EXPIRES": str(EXPIRES)},
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def app(cache_worker: Worker, combo: Combo) -> Iterator[Celery]:
    """The sender reads results from the same DatabaseCache table as the worker."""
    from celery import _state

    from .conftest import BROKERS

    app = Celery("e2e-cache", set_as_current=False)
    app.conf.update(
        broker_url=BROKERS[combo.broker],
        result_backend="django-cache",
        cache_backend="database",  # tests.settings: DatabaseCache at my_cache_table
        task_default_queue=cache_worker.queue,
        result_expires=EXPIRES,
    )
    previous = _state.get_current_app()
    app.set_current()
    try:
        yield app
    finally:
        previous.set_current()
        app.close()


def test_success_and_failure(app: Any) -> None:
    assert app.send_task(T + "add", args=(2, 2)).get(timeout=TIMEOUT) == 4
    with pytest.raises(ValueError, match="boom"):
        app.send_task(T + "fail", args=("boom",)).get(timeout=TIMEOUT)


def test_group_join(app: Any) -> None:
    result = group(app.signature(T + "add", args=(i, i)) for i in range(10)).apply_async()
    assert result.get(timeout=TIMEOUT) == [2 * i for i in range(10)]


def test_chord_callback_fires_once(app: Any) -> None:
    header = [app.signature(T + "add", args=(i, 1)) for i in range(10)]
    result = chord(header)(app.signature(T + "tsum"))
    assert result.get(timeout=TIMEOUT) == sum(i + 1 for i in range(10))
    failing = chord([app.signature(T + "fail", args=("x",))])(app.signature(T + "tsum"))
    callback = app.AsyncResult(failing.id)
    # chord_unlock marks the callback failed with a ChordError naming the header task.
    wait_until(lambda: callback.state == "FAILURE", what="the callback to fail")
    assert isinstance(callback.result, ChordError)


def test_results_expire(app: Any) -> None:
    result = app.send_task(T + "add", args=(1, 1))
    assert result.get(timeout=TIMEOUT) == 2
    time.sleep(EXPIRES + 1)
    assert app.AsyncResult(result.id).state == "PENDING"  # gone from the cache
