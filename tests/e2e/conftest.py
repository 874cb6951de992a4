"""Real ``celery worker`` processes of the example project, on real brokers and databases.

A combination is (database alias, driver, broker, pool). Each test module's worker serves
one combination, reads a queue no other run uses, and writes to the test database that
pytest-django made for that alias; the test process sends tasks through a Celery app of
its own and reads what the worker stored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.db import connections
from django.test import override_settings
from kombu.pools import ProducerPool

from django_celery_results.testing.router import use_alias
from tests.brokers import RABBITMQ_URL, REDIS_URL
from tests.databases import SQLITE_FILE, reachable, strict

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
BROKERS = {"rabbitmq": RABBITMQ_URL, "redis": REDIS_URL}
BROKER_PORTS = {"rabbitmq": 5672, "redis": 6379}
HOW_TO_START_BROKER = {
    "rabbitmq": "rabbitmq-server -detached",
    "redis": "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''",
}
#: How the ``brokers`` fixture starts a broker that is not running, and stops it again.
BROKER_START = {
    "rabbitmq": ["rabbitmq-server", "-detached"],
    "redis": ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
              "--save", "", "--appendonly", "no"],
}  # fmt: skip
BROKER_STOP = {
    "rabbitmq": ["rabbitmqctl", "stop"],
    "redis": ["redis-cli", "-p", "6379", "shutdown", "nosave"],
}
DEMO_DATABASE = {"default": "sqlite", "postgres": "postgres", "mysql": "mysql"}
VENDOR = {"default": "sqlite", "postgres": "postgresql", "mysql": "mysql"}
#: Longest any wait in these tests lasts: a test never hangs.
TIMEOUT = 90.0


@dataclass(frozen=True)
class Combo:
    """One database, driver, broker and pool a worker runs with."""

    alias: str
    driver: str  # "vendor" or "generic"
    broker: str
    pool: str
    #: The worker batches its state writes (``BATCH_WRITES``).
    batched: bool = False

    @property
    def id(self) -> str:
        batched = "-batched" if self.batched else ""
        return f"{self.alias}-{self.driver}-{self.broker}-{self.pool}{batched}"


#: Every scenario runs on one combination per database; a smoke set on the others.
FULL = [
    Combo("default", "generic", "redis", "prefork"),
    Combo("postgres", "vendor", "rabbitmq", "prefork"),
    Combo("mysql", "vendor", "rabbitmq", "threads"),
]
#: The full scenario set once more with batched writes, in every pool kind. Ordered so
#: that each half (:func:`shared`) has PostgreSQL and MySQL.
BATCHED = [
    Combo("postgres", "vendor", "redis", "prefork", batched=True),
    Combo("mysql", "vendor", "rabbitmq", "threads", batched=True),
    Combo("mysql", "vendor", "redis", "gevent", batched=True),
    Combo("postgres", "vendor", "rabbitmq", "gevent", batched=True),
]
SMOKE = [
    Combo("postgres", "generic", "redis", "threads"),
    Combo("mysql", "generic", "redis", "prefork"),
    Combo("default", "generic", "rabbitmq", "threads"),
]


def shared(combos: list[Combo]) -> list[Combo]:
    """The share of ``combos`` this run takes: all, or under ``DCR_E2E_SHARE=k/n`` every n-th.

    ``.ci/run`` gives each version leg half of the combinations that repeat what
    :data:`FULL` already covers on every database (batched writes in other pools, the
    smoke set): both legs together run them all, and each leg still runs every database.
    """
    share = os.environ.get("DCR_E2E_SHARE")
    if not share:
        return combos
    index, count = (int(part) for part in share.split("/"))
    return [combo for n, combo in enumerate(combos) if n % count == index - 1]


def combo_params(combos: list[Combo]) -> list[Any]:
    """Return pytest params for ``combos``, skipped (or failing, in CI) when a server is down."""
    params = []
    skipped = getattr(settings, "CONFORMANCE_SKIPPED_DATABASES", {})
    for combo in combos:
        reason = skipped.get(combo.alias)
        up = reachable("127.0.0.1", BROKER_PORTS[combo.broker])
        startable = shutil.which(BROKER_START[combo.broker][0]) is not None
        if reason is None and not strict() and not up and not startable:
            how = HOW_TO_START_BROKER[combo.broker]
            reason = f"{combo.broker} is not running; start it with: {how}"
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(combo, id=combo.id, marks=marks))
    return params


@dataclass
class Worker:
    """A running ``celery worker`` process and the queue it reads."""

    combo: Combo
    queue: str
    process: subprocess.Popen[bytes] | None = None
    #: More environment for the example project's settings (``DEMO_*``).
    extra_env: dict[str, str] | None = None
    #: The node name before ``@host`` (default: the queue); several workers need their own.
    node: str | None = None

    def environment(self) -> dict[str, str]:
        """Point the example project at this combination's test database and broker."""
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "demo_project.settings",
            "DEMO_DATABASE": DEMO_DATABASE[self.combo.alias],
            "DEMO_BROKER_URL": BROKERS[self.combo.broker],
            "DEMO_QUEUE": self.queue,
            "DEMO_TRACK_PENDING": "0",  # the sender (this test process) records PENDING
            # No history thread: each test's teardown TRUNCATEs every table, and on
            # PostgreSQL a catch-up at that moment can deadlock with it. Tests that want
            # the thread ask for it (test_control); the others' rows wait, uncounted.
            "DEMO_HISTORY_INTERVAL": "0",
        }
        if self.combo.alias == "default":
            env["DEMO_SQLITE_PATH"] = str(SQLITE_FILE)
        else:
            env["DEMO_DATABASE_NAME"] = connections[self.combo.alias].settings_dict["NAME"]
        if self.combo.driver == "generic":
            env["DEMO_DISABLED_DRIVERS"] = VENDOR[self.combo.alias]
        if self.combo.batched:
            env["DEMO_BATCH_WRITES"] = "1"
        env.pop("PYTEST_ADDOPTS", None)
        env.update(self.extra_env or {})
        return env

    def start(self) -> None:
        """Start the worker in a process group of its own (so it can be killed whole)."""
        command = [
            sys.executable, "-m", "celery", "-A", "demo_project", "worker",
            f"--pool={self.combo.pool}", "--concurrency=2", "--loglevel=warning",
            "-Q", self.queue, "-n", f"{self.node or self.queue}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=EXAMPLE,
            env=self.environment(),
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL to the group if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def client_app(combo: Combo, queue: str) -> Celery:
    """The sender's Celery app: same broker and queue, results read through ``django-db``.

    It publishes through pools of its own (:func:`own_pools`).
    """
    app = SenderApp("e2e", set_as_current=False)
    app.conf.update(
        broker_url=BROKERS[combo.broker],
        result_backend="django-db",
        result_extended=True,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
    )
    own_pools(app)
    return app


class SenderApp(Celery):
    """The tests' sending app: its own pools (:func:`own_pools`), closed with it."""

    def close(self) -> None:
        """Close this app's own pools, then the app."""
        close_pools(self)
        super().close()


def close_pools(app: Celery) -> None:
    """Close the connections of ``app``'s own pools (a dropped one closes quietly)."""
    for pool in (app._pool, app.amqp._producer_pool):
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.force_close_all()


def own_pools(app: Celery) -> None:
    """Give ``app`` new connection and producer pools, not kombu's process-wide ones.

    Celery publishes (and broadcasts control commands) through kombu's producer pool,
    which is global to the process and keyed by the broker's URL: a connection left idle
    there by an earlier test (minutes earlier, when the tests of one combination are
    spread over the run) may be gone, and the next publish fails on it.
    """
    close_pools(app)
    limit = app.conf.broker_pool_limit
    connections = app.connection_for_write().Pool(limit=limit)  # not kombu.pools'
    app._pool = connections
    app.amqp._producer_pool = ProducerPool(connections, limit=limit)  # type: ignore[no-untyped-call]


def wait_until(condition: Callable[[], Any], timeout: float = TIMEOUT, what: str = "") -> Any:
    """Poll ``condition`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what or condition}")
        time.sleep(0.1)


class Brokers:
    """Starts the brokers a test needs when they are not running; stops those it started."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def ensure(self, name: str) -> None:
        """Make sure broker ``name`` accepts connections (start it, wait up to 90 s)."""
        port = BROKER_PORTS[name]
        if reachable("127.0.0.1", port):
            return
        subprocess.run(BROKER_START[name], check=True, timeout=60, capture_output=True)
        self.started.append(name)
        wait_until(lambda: reachable("127.0.0.1", port), what=f"{name} to accept connections")

    def stop_started(self) -> None:
        """Stop the brokers this run started, leaving running ones as they were."""
        for name in self.started:
            subprocess.run(BROKER_STOP[name], timeout=60, capture_output=True, check=False)


@pytest.fixture(scope="session")
def brokers() -> Iterator[Brokers]:
    """The brokers of the end-to-end tests, started on demand for this run."""
    started = Brokers()
    try:
        yield started
    finally:
        started.stop_started()


@pytest.fixture(scope="module")
def combo(request: pytest.FixtureRequest) -> Combo:
    """The combination of the module's worker (parametrized by the test modules)."""
    return request.param  # type: ignore[no-any-return]


@contextlib.contextmanager
def running_worker(
    combo: Combo, brokers: Brokers, django_db_blocker: Any, extra_env: dict[str, str] | None = None
) -> Iterator[Worker]:
    """Start a worker for ``combo`` (and its broker), wait until it answers, stop it after."""
    brokers.ensure(combo.broker)
    worker = Worker(combo, queue=f"e2e-{uuid.uuid4().hex[:10]}", extra_env=extra_env)
    worker.start()
    app = client_app(combo, worker.queue)
    try:
        with django_db_blocker.unblock():
            use_alias(combo.alias)
            try:
                probe = app.send_task("demo_app.tasks.add", args=(0, 0))
                probe.get(timeout=TIMEOUT)
            finally:
                use_alias(None)
        yield worker
    finally:
        worker.stop()
        app.close()


@contextlib.contextmanager
def sender_app(worker: Worker, combo: Combo, conf: dict[str, Any]) -> Iterator[Celery]:
    """The sender's app, current, routed to the combination's database, with ``conf``."""
    from celery import _state

    app = client_app(combo, worker.queue)
    previous = _state.get_current_app()
    app.set_current()
    use_alias(combo.alias)
    try:
        with override_settings(DJANGO_CELERY_RESULTS=conf):
            yield app
    finally:
        from django_celery_results import pending

        pending.release()
        use_alias(None)
        previous.set_current()
        app.close()


@pytest.fixture(scope="module")
def worker(
    combo: Combo, brokers: Brokers, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Worker]:
    """A worker for ``combo``, started once per module and combination."""
    with running_worker(combo, brokers, django_db_blocker) as started:
        yield started


@pytest.fixture
def app(worker: Worker, combo: Combo) -> Iterator[Celery]:
    """The sender's app, current for the test, with publish-time PENDING rows on."""
    with sender_app(worker, combo, {"TRACK_PENDING": True}) as sender:
        yield sender


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test committed-transaction access to its combination's database only."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        combo = callspec.params.get("combo") if callspec else None
        if isinstance(combo, Combo) and not item.get_closest_marker("django_db"):
            item.add_marker(pytest.mark.django_db(databases=[combo.alias], transaction=True))
