"""Batched state updates (``BATCH_WRITES``): coalescing, group commit, nothing lost."""

from __future__ import annotations

import contextlib
import itertools
import logging
import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from celery import states
from celery.signals import worker_process_shutdown
from django.db import DatabaseError, connections, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ... import batching
from ...drivers import driver_for
from ...models import TaskResult
from ..provision import break_connection
from .helpers import new_id, request, row, status_of, stored
from .test_concurrency import SEQUENCE, close_before_fork, run_threads
from .test_state_precedence import ALL as STATES

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = [
    "TestCoalescing",
    "TestGroupCommit",
    "TestNothingLost",
    "TestPrecedence",
    "TestReadYourWrites",
    "TestTransactions",
    "batched",
    "test_batching_is_off_by_default",
]

#: Queued non-terminal states wait for a terminal write, a read or a flush.
HOLD = {"BATCH_WRITES": {"max_delay_ms": 60_000}}
#: Queued non-terminal states are written by the flusher thread almost at once.
QUICK = {"BATCH_WRITES": {"max_delay_ms": 20}}


@pytest.fixture
def batched(db_alias: str) -> Iterator[None]:
    """Batching on (held until written by a terminal state, a read or a flush)."""
    with override_settings(DJANGO_CELERY_RESULTS=HOLD):
        try:
            yield
        finally:
            # The flusher threads hold connections that would keep the test database
            # from being dropped.
            assert batching.release(10), "a flusher thread did not stop"


def exists(task_id: str) -> bool:
    """Return True when a row of ``task_id`` is stored (read past the queue)."""
    return TaskResult.objects.filter(task_id=task_id).exists()


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


@pytest.mark.usefixtures("batched")
class TestCoalescing:
    """A task's non-terminal states wait in the queue and merge with its next state."""

    def test_started_then_success_is_one_write(self, backend: Any, driver: Any) -> None:
        task_id = new_id()
        with CaptureQueriesContext(driver.connection) as started_queries:
            before = timezone.now()
            backend.store_result(task_id, {"pid": 1}, states.STARTED, request=request(task_id))
            after = timezone.now()
        assert len(started_queries) == 0
        assert not exists(task_id)
        with CaptureQueriesContext(driver.connection) as done_queries:
            backend.store_result(task_id, 3, states.SUCCESS, request=request(task_id))
        if driver.features.supports_single_statement_upsert:
            assert len(done_queries) == 1, [q["sql"] for q in done_queries]
        saved = stored(task_id)
        assert saved.status == states.SUCCESS
        assert saved.result == "3"
        assert saved.date_started is not None
        assert before <= saved.date_started <= after
        assert saved.date_created == saved.date_started
        assert saved.date_done >= after
        assert saved.task_name == "tests.add"

    def test_progress_states_merge_into_one_row(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.RECEIVED, request=request(task_id))
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        backend.store_result(task_id, {"done": 50}, "PROGRESS", request=request(task_id))
        assert not exists(task_id)
        assert batching.flush(10)
        saved = stored(task_id)
        assert (saved.status, saved.result) == ("PROGRESS", '{"done": 50}')
        assert saved.date_started is not None

    def test_terminal_write_takes_the_queue_with_it(self, backend: Any) -> None:
        waiting, done = new_id(), new_id()
        backend.store_result(waiting, None, states.STARTED, request=request(waiting))
        backend.store_result(done, 1, states.SUCCESS, request=request(done))
        assert status_of(waiting) == states.STARTED
        assert status_of(done) == states.SUCCESS

    def test_flusher_writes_after_max_delay(self, backend: Any) -> None:
        task_id = new_id()
        with override_settings(DJANGO_CELERY_RESULTS=QUICK):
            backend.store_result(task_id, None, states.STARTED, request=request(task_id))
            assert wait_until(lambda: exists(task_id)), "the flusher never wrote the row"
        assert status_of(task_id) == states.STARTED

    def test_flusher_wakes_from_idle_sleep(self, backend: Any) -> None:
        # After IDLE seconds with nothing queued the flusher closes its connection and
        # sleeps until a row is queued; each later row must still be written.
        first, second = new_id(), new_id()
        with (
            override_settings(DJANGO_CELERY_RESULTS=QUICK),
            mock.patch.object(batching, "IDLE", 0.05),
        ):
            backend.store_result(first, None, states.STARTED, request=request(first))
            assert wait_until(lambda: exists(first)), "the flusher never wrote the row"
            batcher = batching.batchers()[driver_for(TaskResult).alias]
            for task_id in (second, new_id()):
                assert wait_until(lambda: batcher.flusher_asleep), "the flusher never slept"
                backend.store_result(task_id, None, states.STARTED, request=request(task_id))
                assert wait_until(lambda: exists(task_id)), "the sleeping flusher never woke"  # noqa: B023
        assert status_of(second) == states.STARTED

    def test_max_rows_writes_without_waiting(self, backend: Any) -> None:
        ids = [new_id() for _ in range(5)]
        settings = {"BATCH_WRITES": {"max_delay_ms": 60_000, "max_rows": 5}}
        with override_settings(DJANGO_CELERY_RESULTS=settings):
            for task_id in ids:
                backend.store_result(task_id, None, states.STARTED, request=request(task_id))
            assert wait_until(lambda: TaskResult.objects.filter(task_id__in=ids).count() == 5)


class TestPrecedence:
    """Merging in the queue stores what writing each state in turn would store."""

    @pytest.mark.parametrize(("first", "second"), list(itertools.product(STATES, STATES)))
    def test_merge_matches_two_writes(self, driver: Any, first: str, second: str) -> None:
        one_by_one, merged = new_id(), new_id()
        earlier = row(one_by_one, first, date_started=timezone.now(), worker="w1")
        later = row(one_by_one, second, task_name="tests.add", worker=None)
        driver.ops.store_task_results([earlier])
        driver.ops.store_task_results([later])
        combined = batching.merge(
            row(merged, first, date_started=earlier.date_started, worker="w1",
                date_done=earlier.date_done),
            row(merged, second, task_name="tests.add", worker=None, date_done=later.date_done),
        )  # fmt: skip
        driver.ops.store_task_results([combined])
        a, b = stored(one_by_one), stored(merged)
        columns = ("status", "result", "task_name", "worker", "date_started", "date_created")
        assert [getattr(b, c) for c in columns] == [getattr(a, c) for c in columns]

    @pytest.mark.usefixtures("batched")
    def test_late_started_in_a_later_batch_never_regresses(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        backend.store_result(task_id, 1, states.SUCCESS, request=request(task_id))
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        backend.store_result(task_id, None, states.RETRY, request=request(task_id))
        assert batching.flush(10)
        assert status_of(task_id) == states.SUCCESS

    @pytest.mark.usefixtures("batched")
    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_threads_out_of_order(self, backend: Any) -> None:
        ids = [new_id() for _ in range(20)]

        def write(n: int) -> None:
            order = SEQUENCE[n % 2 :] + SEQUENCE[: n % 2]
            for state, task_id in itertools.product(order, ids):
                backend.store_result(task_id, state, state, request=request(task_id))

        assert run_threads(write, 6) == []
        assert batching.flush(10)
        statuses = dict(
            TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status")
        )
        assert statuses == dict.fromkeys(ids, states.SUCCESS)


@pytest.mark.usefixtures("batched")
class TestGroupCommit:
    """Terminal writers arriving during a write are written together by the next one."""

    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_waiting_writers_share_one_write(self, backend: Any, driver: Any) -> None:
        batcher = batching.batcher_for(driver)
        assert batcher is not None
        release_first = threading.Event()
        batches: list[list[str]] = []
        real = driver.ops.store_task_results

        def slow_first(rows: list[Any]) -> None:
            batches.append([r.task_id for r in rows])
            if len(batches) == 1:
                release_first.wait(10)
            real(rows)

        ids = [new_id() for _ in range(6)]
        with mock.patch.object(driver.ops, "store_task_results", slow_first):

            def finish(n: int) -> None:
                try:
                    if n > 0:  # the others arrive while the first write runs
                        assert wait_until(lambda: len(batches) == 1)
                    backend.store_result(ids[n], n, states.SUCCESS, request=request(ids[n]))
                finally:
                    connections.close_all()

            threads = [threading.Thread(target=finish, args=(n,)) for n in range(6)]
            for thread in threads:
                thread.start()
            assert wait_until(lambda: batcher.waiting_callers() == 5)
            release_first.set()
            for thread in threads:
                thread.join(30)
        assert batches[0] == [ids[0]]
        assert sorted(batches[1]) == sorted(ids[1:])
        assert len(batches) == 2
        assert all(status_of(t) == states.SUCCESS for t in ids)


@pytest.mark.usefixtures("batched")
class TestReadYourWrites:
    """A read of a queued task id in the same process flushes first."""

    def test_get_task_meta_sees_a_queued_state(self, backend: Any, result_app: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, {"step": 1}, "PROGRESS", request=request(task_id))
        assert not exists(task_id)
        assert backend.get_task_meta(task_id, cache=False)["status"] == "PROGRESS"
        assert exists(task_id)

    def test_get_many_sees_queued_states(self, backend: Any, result_app: Any) -> None:
        ids = [new_id() for _ in range(3)]
        for task_id in ids:
            backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        found = dict(backend.get_many(ids, timeout=0.2, interval=0.05, max_iterations=1))
        assert found == {}
        assert TaskResult.objects.filter(task_id__in=ids).count() == 3

    def test_forget_drops_a_queued_state(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        backend.forget(task_id)
        assert batching.flush(10)
        assert not exists(task_id)

    def test_read_in_a_transaction_is_flushed_by_the_flusher(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        with transaction.atomic(using=TaskResult.objects.db):
            assert backend.get_task_meta(task_id, cache=False)["status"] == states.STARTED
        assert exists(task_id)


@pytest.mark.usefixtures("batched")
class TestTransactions:
    """A write inside the caller's transaction is part of it, as without batching."""

    def test_write_in_a_transaction_rolls_back_with_it(self, backend: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        seen = []
        with contextlib.suppress(RuntimeError), transaction.atomic(using=TaskResult.objects.db):
            backend.store_result(task_id, 1, states.SUCCESS, request=request(task_id))
            seen.append(status_of(task_id))
            raise RuntimeError("roll back")
        assert seen == [states.SUCCESS]
        assert status_of(task_id) == states.STARTED  # written before, outside it


def _child_stores_and_shuts_down(backend: Any, parent_id: str, child_id: str, out: Any) -> None:
    try:
        connections.close_all()
        # The parent's queued row is not this process's to write.
        out.put(("holds parent", any(b.holds([parent_id]) for b in batching.batchers().values())))
        backend.store_result(child_id, None, states.STARTED, request=request(child_id))
        worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
        out.put(("done", True))
    except BaseException as exc:
        out.put(("error", repr(exc)))
    finally:
        connections.close_all()


@pytest.mark.usefixtures("batched")
class TestNothingLost:
    """Shutdown flushes, a fork starts empty, a failed write says whose rows it lost."""

    def test_flush_writes_everything_queued(self, backend: Any) -> None:
        ids = [new_id() for _ in range(10)]
        for task_id in ids:
            backend.store_result(task_id, None, states.RETRY, request=request(task_id))
        assert batching.flush(10)
        assert TaskResult.objects.filter(task_id__in=ids, status=states.RETRY).count() == 10

    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_forked_child_starts_empty_and_flushes_at_shutdown(
        self, backend: Any, driver: Any
    ) -> None:
        parent_id, child_id = new_id(), new_id()
        backend.store_result(parent_id, None, states.STARTED, request=request(parent_id))
        context = multiprocessing.get_context("fork")
        out = context.Queue()
        close_before_fork()
        child = context.Process(
            target=_child_stores_and_shuts_down, args=(backend, parent_id, child_id, out)
        )
        child.start()
        child.join(60)
        reports = dict(out.get(timeout=5) for _ in range(2))
        assert reports == {"holds parent": False, "done": True}
        assert child.exitcode == 0
        assert exists(child_id), "the child's queued state was not flushed at shutdown"
        assert not exists(parent_id), "the child wrote its parent's queue"
        assert batching.flush(10)
        assert exists(parent_id)

    def test_terminal_caller_gets_the_error(
        self, backend: Any, driver: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        queued, failed = new_id(), new_id()
        backend.store_result(queued, None, states.STARTED, request=request(queued))
        broken = DatabaseError("disk full")
        with (
            mock.patch.object(driver.ops, "store_task_results", side_effect=broken),
            caplog.at_level(logging.ERROR, logger="django_celery_results.losses"),
            pytest.raises(DatabaseError, match="disk full"),
        ):
            backend.store_result(failed, 1, states.SUCCESS, request=request(failed))
        lines = [record.getMessage() for record in caplog.records]
        # Each lost write once: the queued one by the batcher, the caller's by its call.
        assert [line for line in lines if queued in line] == [
            f"Lost the STARTED state of task {queued}: database {driver.alias!r} refused the "
            "write after 1 attempt: DatabaseError: disk full"
        ]
        assert len([line for line in lines if failed in line]) == 1
        assert not exists(failed)

    def test_one_bad_row_fails_only_its_task(self, backend: Any, driver: Any) -> None:
        good, bad = new_id(), new_id()
        real = driver.ops.store_task_results

        def refuse_bad(rows: list[Any]) -> None:
            if any(r.task_id == bad for r in rows):
                raise DatabaseError("value too long")
            real(rows)

        backend.store_result(bad, None, states.STARTED, request=request(bad))
        with mock.patch.object(driver.ops, "store_task_results", refuse_bad):
            backend.store_result(good, 1, states.SUCCESS, request=request(good))
        assert status_of(good) == states.SUCCESS
        assert not exists(bad)

    def test_dropped_connection_is_retried(self, backend: Any, driver: Any) -> None:
        task_id = new_id()
        backend.store_result(task_id, None, states.STARTED, request=request(task_id))
        break_connection(driver)
        backend.store_result(task_id, 1, states.SUCCESS, request=request(task_id))
        saved = stored(task_id)
        assert (saved.status, saved.date_started is not None) == (states.SUCCESS, True)


def test_batching_is_off_by_default(driver: Any) -> None:
    assert batching.batcher_for(driver) is None
