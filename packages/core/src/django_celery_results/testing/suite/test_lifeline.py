"""The lifeline: what a STARTED write records, who is elected, and what a sweep settles.

Every settlement is a conditional update, so sweeps racing settle each row once; the
election is the database's own (a session lock) or a leased row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery import states
from django.conf import settings
from django.db import connections
from django.db.models.functions import Now
from django.test import override_settings
from django.utils import timezone

from ...models import Counter, TaskResult, Worker
from ...workers import election, life, lifeline, registry
from ...workers.registry import WorkerInfo
from .helpers import new_id, request

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestElection", "TestLifeline", "TestUnconsumed", "lifeline_boot"]

#: The worker the suite's requests name (``helpers.request``).
WORKER = "celery@conformance"
STARTED_META = {"pid": 1, "hostname": WORKER}


@pytest.fixture
def lifeline_boot(result_app: Any) -> Iterator[str]:
    """This process as a registered worker's life; its task ``tests.late`` acks late."""

    @result_app.task(name="tests.late", acks_late=True, shared=False)
    def late() -> None:
        """A task whose message is acknowledged when it ends."""

    boot = life.begin()
    try:
        yield boot
    finally:
        life.end()


def register(alias: str, boot: str, *, silent_for: timedelta | None = None) -> Worker:
    """Register the worker ``request()`` names as the life ``boot``; backdate its heartbeat."""
    registry.register(WorkerInfo(WORKER, "host-x", 7, boot=boot), alias)
    if silent_for is not None:
        Worker.objects.filter(boot=boot).update(heartbeat_at=Now() - silent_for)
    return Worker.objects.get(boot=boot)


def start(backend: Any, task: str = "tests.add") -> str:
    """Store a STARTED write as a worker's pool does; return the task id."""
    task_id = new_id()
    backend.store_result(
        task_id, STARTED_META, states.STARTED, request=request(task_id, task=task)
    )
    return task_id


def stored(task_id: str) -> TaskResult:
    return TaskResult.objects.get(task_id=task_id)


def sweep(backend: Any, alias: str) -> lifeline.Sweep:
    done = lifeline.sweep(backend.app, alias, "sweeper")
    assert done is not None, "not elected"
    return done


def lifeline_settings(**keys: Any) -> Any:
    """``override_settings`` of ``DJANGO_CELERY_RESULTS`` keys, the others kept."""
    current = getattr(settings, "DJANGO_CELERY_RESULTS", None) or {}
    return override_settings(DJANGO_CELERY_RESULTS={**current, **keys})


def counted(name: str) -> int:
    return Counter.objects.filter(name=name).values_list("value", flat=True).first() or 0


class TestLifeline:
    """A lost worker's STARTED rows are settled once; nothing else is."""

    def test_a_started_write_records_the_life_and_acks_late(
        self, backend: Any, lifeline_boot: str
    ) -> None:
        plain, late = start(backend), start(backend, "tests.late")
        assert stored(plain).lifeline == lifeline_boot
        assert stored(late).lifeline == f"{lifeline_boot} acks_late"
        backend.mark_as_done(plain, 1, request=request(plain))
        assert stored(plain).lifeline is None  # only a running task carries it

    def test_no_life_no_lifeline(self, backend: Any) -> None:
        assert stored(start(backend)).lifeline is None

    def test_a_lost_worker_s_task_is_settled_once(
        self, backend: Any, db_alias: str, lifeline_boot: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        task_id = start(backend)
        register(db_alias, lifeline_boot, silent_for=timedelta(minutes=5))
        before = counted(lifeline.SETTLED)
        with caplog.at_level(logging.ERROR, logger=lifeline.__name__):
            assert sweep(backend, db_alias).settled == 1
        row = stored(task_id)
        assert row.status == states.FAILURE
        assert str(row.exception_type).endswith("WorkerLostError")
        meta = backend.get_task_meta(task_id)
        assert f"Worker {WORKER} (pid 7 on host-x) was lost" in str(meta["result"])
        assert task_id in caplog.text
        assert counted(lifeline.SETTLED) == before + 1
        assert sweep(backend, db_alias).settled == 0  # settled already

    def test_a_live_worker_s_task_is_left_running(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        task_id = start(backend)
        register(db_alias, lifeline_boot, silent_for=timedelta(seconds=10))
        assert sweep(backend, db_alias).settled == 0
        assert stored(task_id).status == states.STARTED

    def test_rows_of_unregistered_workers_are_never_settled(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        """The lost life never registered (no row), or wrote no lifeline (upstream, older)."""
        unregistered = start(backend)
        life.end()
        upstream = start(backend)
        register(db_alias, "f" * 32, silent_for=timedelta(hours=1))
        assert sweep(backend, db_alias).settled == 0
        assert stored(unregistered).status == stored(upstream).status == states.STARTED

    def test_a_custom_state_of_a_running_task_is_watched_too(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        task_id = start(backend)
        backend.store_result(task_id, {"done": 1}, "PROGRESS", request=request(task_id))
        assert stored(task_id).lifeline == lifeline_boot
        register(db_alias, lifeline_boot, silent_for=timedelta(minutes=5))
        with lifeline_settings(CUSTOM_STATES=["PROGRESS"]):
            assert sweep(backend, db_alias).settled == 1
        assert stored(task_id).status == states.FAILURE

    def test_a_run_written_by_another_worker_is_left_alone(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        """A worker that does not know the column (upstream's) ran the task again."""
        task_id = start(backend)
        TaskResult.objects.filter(task_id=task_id).update(worker="celery@upstream")
        register(db_alias, lifeline_boot, silent_for=timedelta(minutes=5))
        assert sweep(backend, db_alias).settled == 0
        assert stored(task_id).status == states.STARTED

    def test_a_life_is_gone_by_its_own_heartbeat_interval(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        """A worker beating every 5 minutes, silent for 10: three beats not yet missed."""
        task_id = start(backend)
        register(db_alias, lifeline_boot, silent_for=timedelta(minutes=10))
        Worker.objects.filter(boot=lifeline_boot).update(interval=300)
        assert sweep(backend, db_alias).settled == 0
        Worker.objects.filter(boot=lifeline_boot).update(interval=15)
        assert sweep(backend, db_alias).settled == 1
        assert stored(task_id).status == states.FAILURE

    def test_retry_rows_are_not_settled(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        task_id = start(backend)
        backend.mark_as_retry(task_id, ValueError("again"), request=request(task_id))
        register(db_alias, lifeline_boot, silent_for=timedelta(hours=1))
        assert sweep(backend, db_alias).settled == 0
        assert stored(task_id).status == states.RETRY

    def test_an_acks_late_task_awaits_redelivery_then_is_settled(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        task_id = start(backend, "tests.late")
        register(db_alias, lifeline_boot, silent_for=timedelta(minutes=5))
        with lifeline_settings(LIFELINE_REDELIVERY_GRACE=120):
            assert sweep(backend, db_alias).awaiting == 1
            row = stored(task_id)
            assert (row.status, row.lifeline) == (states.STARTED, f"{lifeline_boot} awaiting")
            assert sweep(backend, db_alias).settled == 0  # within the grace
            TaskResult.objects.filter(task_id=task_id).update(
                date_done=row.date_done - timedelta(minutes=3)
            )
            assert sweep(backend, db_alias).settled == 1
        assert stored(task_id).status == states.FAILURE
        # The redelivered run ends after all: its SUCCESS replaces the settled FAILURE.
        backend.mark_as_done(task_id, 42, request=request(task_id, task="tests.late"))
        assert (stored(task_id).status, backend.get_task_meta(task_id)["result"]) == (
            states.SUCCESS, 42,
        )  # fmt: skip

    def test_a_redelivered_run_ends_the_wait(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        task_id = start(backend, "tests.late")
        register(db_alias, lifeline_boot, silent_for=timedelta(minutes=5))
        sweep(backend, db_alias)
        life.begin()  # the run starts again in another worker's life
        backend.store_result(
            task_id, STARTED_META, states.STARTED, request=request(task_id, task="tests.late")
        )
        assert stored(task_id).lifeline == f"{life.BOOT} acks_late"
        with lifeline_settings(LIFELINE_REDELIVERY_GRACE=0):
            assert sweep(backend, db_alias).settled == 0
        assert stored(task_id).status == states.STARTED

    def test_sweeps_racing_settle_each_row_once(
        self, backend: Any, db_alias: str, lifeline_boot: str
    ) -> None:
        """The election bypassed: four sweeps at once over the same lost life."""
        task_ids = [start(backend) for _ in range(20)]
        gone = register(db_alias, lifeline_boot, silent_for=timedelta(minutes=5))
        totals: list[int] = []
        barrier = threading.Barrier(4)

        def race() -> None:
            try:
                barrier.wait(timeout=30)
                totals.append(
                    lifeline.settle_lives(backend.app, db_alias, {gone.boot: gone}).settled
                )
            finally:
                connections.close_all()

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sum(totals) == len(task_ids)
        assert set(
            TaskResult.objects.filter(task_id__in=task_ids).values_list("status", flat=True)
        ) == {states.FAILURE}

    @pytest.mark.parametrize(
        "keys",
        [
            pytest.param({"LIFELINE_GRACE": "60"}, id="grace not a number"),
            pytest.param({"LIFELINE_GRACE": 10, "WORKER_HEARTBEAT": 15}, id="grace too short"),
            pytest.param({"LIFELINE_GRAEC": 60}, id="a misspelt key"),
        ],
    )
    def test_an_invalid_setting_settles_nothing_and_says_why(
        self,
        backend: Any,
        db_alias: str,
        lifeline_boot: str,
        keys: dict[str, Any],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        task_id = start(backend)
        register(db_alias, lifeline_boot, silent_for=timedelta(hours=1))
        lifeline._logged.clear()
        with lifeline_settings(**keys), caplog.at_level(logging.ERROR):
            assert lifeline.sweep(backend.app, db_alias, "sweeper") is None
        assert stored(task_id).status == states.STARTED
        assert "The lifeline settles nothing" in caplog.text


class TestUnconsumed:
    """PENDING rows no live worker consumes: settled only with ``SETTLE_UNCONSUMED``."""

    def test_only_rows_of_unconsumed_keys_are_settled_when_asked(
        self, backend: Any, db_alias: str
    ) -> None:
        bound = {"queue": "celery", "exchange": "", "type": "direct", "routing_key": "celery"}
        registry.register(WorkerInfo("celery@a", "h", 1, queues=(bound,), boot="a" * 32), db_alias)
        old = timezone.now() - timedelta(minutes=10)
        rows = {"consumed": "celery", "stranded": "reports", "recent": "reports"}
        for task_id, key in rows.items():
            TaskResult.objects.create(task_id=task_id, status=states.PENDING, queue=key)
        TaskResult.objects.exclude(task_id="recent").update(date_done=old)
        with lifeline_settings(TRACK_PENDING=True):
            assert sweep(backend, db_alias).unconsumed == 0  # off by default
            with lifeline_settings(SETTLE_UNCONSUMED=True):
                assert sweep(backend, db_alias).unconsumed == 1
        assert stored("stranded").status == states.FAILURE
        assert "No live worker consumes the routing key 'reports'" in str(
            backend.get_task_meta("stranded")["result"]
        )
        assert stored("consumed").status == stored("recent").status == states.PENDING
        assert counted(lifeline.UNCONSUMED) == 1


@pytest.mark.requires_feature("supports_concurrent_processes")
class TestElection:
    """One holder at a time, on the database's own lock or a leased row."""

    def test_one_holder_at_a_time(self, db_alias: str) -> None:
        term = timedelta(minutes=1)
        held = threading.Event()
        done = threading.Event()
        seen: list[bool] = []

        def first() -> None:
            try:
                with election.elected("duty", db_alias, "first", term) as chosen:
                    seen.append(chosen)
                    held.set()
                    done.wait(timeout=30)
            finally:
                connections.close_all()

        thread = threading.Thread(target=first)
        thread.start()
        assert held.wait(timeout=30)
        try:
            with election.elected("duty", db_alias, "second", term) as chosen:
                seen.append(chosen)
        finally:
            done.set()
            thread.join(timeout=30)
        assert seen == [True, False]

    def test_behind_a_transaction_pooler_a_row_is_leased(self, db_alias: str) -> None:
        """No session lock where two statements may reach two sessions (PgBouncer)."""
        from ...models import Lease

        settings_dict = connections[db_alias].settings_dict
        before = dict(settings_dict)
        settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
        try:
            with election.elected("duty", db_alias, "first", timedelta(minutes=1)) as chosen:
                assert chosen
        finally:
            settings_dict.clear()
            settings_dict.update(before)
        assert Lease.objects.filter(name="duty", holder="first").exists()

    def test_a_lease_expires_and_its_holder_renews_it(self, db_alias: str) -> None:
        term = timedelta(minutes=1)
        assert election.lease("duty", db_alias, "first", term)
        assert election.lease("duty", db_alias, "first", term)  # renewed
        assert not election.lease("duty", db_alias, "second", term)
        from ...models import Lease

        Lease.objects.filter(name="duty").update(expires_at=Now() - timedelta(seconds=1))
        assert election.lease("duty", db_alias, "second", term)
        election.release("duty", db_alias, "second")
        assert election.lease("duty", db_alias, "first", term)
