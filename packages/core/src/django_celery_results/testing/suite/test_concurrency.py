"""Concurrent writers: threads and processes writing the same task ids in any order."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from celery import states
from django.db import connections

from ...models import TaskResult
from .helpers import new_id, row

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestConcurrentWriters"]

#: What a task's writes can look like to the database: retries, a redelivered task that
#: reports again, a STARTED that arrives after the result.
SEQUENCE = [
    states.RECEIVED,
    states.STARTED,
    states.RETRY,
    states.STARTED,
    states.SUCCESS,
    states.STARTED,
    states.RETRY,
    states.SUCCESS,
]


def write_shuffled(driver: Any, ids: list[str], seed: int) -> None:
    """Write every state of SEQUENCE for every id, in an order of its own."""
    rng = random.Random(seed)
    writes = [(task_id, state) for task_id in ids for state in SEQUENCE]
    rng.shuffle(writes)
    for task_id, state in writes:
        driver.ops.store_task_results([row(task_id, state)])


def run_threads(target: Callable[[int], None], count: int) -> list[BaseException]:
    """Run ``target(n)`` in ``count`` threads started together; return what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(n)
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return errors


def close_before_fork() -> None:
    """Close every connection, and every connection pool: a forked child cannot use them."""
    connections.close_all()
    for connection in connections.all(initialized_only=True):
        close_pool = getattr(connection, "close_pool", None)
        if close_pool is not None and getattr(connection, "pool", None) is not None:
            close_pool()


def _process_main(driver: Any, ids: list[str], seed: int, failures: Any) -> None:
    try:
        connections.close_all()  # never share the parent's sockets
        write_shuffled(driver, ids, seed)
    except BaseException as exc:
        failures.put(repr(exc))
    finally:
        connections.close_all()


class TestConcurrentWriters:
    """No ``IntegrityError``, no lost row and no regression, whatever the interleaving."""

    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_first_writes_race(self, driver: Any) -> None:
        ids = [new_id() for _ in range(20)]

        def write(n: int) -> None:
            for task_id in ids:
                driver.ops.store_task_results([row(task_id, states.STARTED, worker=f"w{n}")])

        assert run_threads(write, 6) == []
        assert TaskResult.objects.filter(task_id__in=ids).count() == len(ids)

    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_threads_out_of_order(self, driver: Any) -> None:
        ids = [new_id() for _ in range(30)]
        errors = run_threads(lambda n: write_shuffled(driver, ids, seed=n), 8)
        assert errors == []
        statuses = dict(
            TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status")
        )
        assert statuses == dict.fromkeys(ids, states.SUCCESS)

    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_processes_out_of_order(self, driver: Any) -> None:
        ids = [new_id() for _ in range(30)]
        context = multiprocessing.get_context("fork")
        failures = context.Queue()
        close_before_fork()
        processes = [
            context.Process(target=_process_main, args=(driver, ids, seed, failures))
            for seed in range(3)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=180)
        assert [p.exitcode for p in processes] == [0, 0, 0]
        assert failures.empty(), failures.get()
        statuses = dict(
            TaskResult.objects.filter(task_id__in=ids).values_list("task_id", "status")
        )
        assert statuses == dict.fromkeys(ids, states.SUCCESS)
