"""The worker's history thread: turns on time, and never across a fork of its process."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from django_celery_results.history import keeper
from django_celery_results.history.rollup import Progress


@pytest.fixture
def slow_turns(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Each catch-up takes 0.3 s and records when it ended."""
    seen: dict[str, Any] = {"entered": threading.Event(), "ended": []}

    def catch_up(alias: str, budget: float) -> Progress:
        seen["entered"].set()
        time.sleep(0.3)
        seen["ended"].append(time.monotonic())
        return Progress()

    monkeypatch.setattr(keeper, "catch_up", catch_up)
    monkeypatch.setattr("django_celery_results.history.backlog.sample", lambda alias: False)
    return seen


def test_a_fork_waits_for_the_turn_under_way(slow_turns: dict[str, Any]) -> None:
    """A pool process forked mid-turn would inherit the database library's locks held."""
    started = keeper.start(0.01)
    try:
        assert slow_turns["entered"].wait(5)
        pid = os.fork()
        if pid == 0:
            os._exit(0)  # the child: nothing to do
        forked = time.monotonic()
        os.waitpid(pid, 0)
    finally:
        keeper.stop()
    assert started is not None
    started.join(5)
    assert slow_turns["ended"], "the turn never ended"
    assert slow_turns["ended"][0] <= forked


def test_no_interval_starts_no_thread() -> None:
    assert keeper.start(0) is None


@pytest.mark.django_db(databases="__all__", transaction=True)
def test_a_turn_counts_the_rows_and_samples_the_backlog(db_alias: str) -> None:
    from django_celery_results.models import HistoryBacklog, HistoryCount, TaskResult

    TaskResult.objects.create(task_id="done", status="SUCCESS", task_name="proj.add")
    TaskResult.objects.create(task_id="waits", status="PENDING", queue="q")
    keeper.Keeper(interval=10).turn()
    assert not TaskResult.objects.filter(rolled_up=False).exists()  # PENDING: an empty mark
    assert HistoryCount.objects.filter(series__task_name="proj.add", count=1).count() == 5
    assert HistoryBacklog.objects.filter(queue="q", count=1).exists()
