"""``manage.py celery_results_stats`` on the default database."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from celery import states
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from django_celery_results.drivers import get_driver
from django_celery_results.testing.suite.helpers import new_id, row

pytestmark = pytest.mark.django_db(transaction=True)


def store(name: str, final: str, waited: float, ran: float) -> None:
    ops = get_driver(connections["default"]).ops
    task_id = new_id()
    sent = timezone.now() - timedelta(minutes=5)
    started = sent + timedelta(seconds=waited)
    ops.store_pending_results([row(task_id, states.PENDING, date_done=sent, task_name=name)])
    ops.store_task_results([row(task_id, states.STARTED, date_done=started, date_started=started)])
    ops.store_task_results([row(task_id, final, date_done=started + timedelta(seconds=ran))])


def run(*args: str) -> str:
    out = StringIO()
    call_command("celery_results_stats", *args, stdout=out)
    return out.getvalue()


def test_table() -> None:
    store("proj.add", states.SUCCESS, 1, 2)
    store("proj.add", states.FAILURE, 3, 4)
    output = run("--since", "1h")
    assert "proj.add" in output
    assert "FAILURE=1 SUCCESS=1" in output
    assert "50.0%" in output


def test_json_and_task_filter() -> None:
    store("proj.add", states.SUCCESS, 1, 2)
    store("proj.mul", states.SUCCESS, 1, 2)
    document = json.loads(run("--since", "1h", "--task", "proj.mul", "--format", "json"))
    [entry] = document["tasks"]
    assert entry["task_name"] == "proj.mul"
    assert entry["states"] == {"SUCCESS": 1}
    # From the history's bins: within 2% of the exact durations.
    assert entry["waiting"]["max"] == pytest.approx(1.0, rel=0.0201)
    assert entry["processing"]["max"] == pytest.approx(2.0, rel=0.0201)


def test_empty_window() -> None:
    assert "No task finished in this window." in run("--since", "2099-01-01T00:00")


def test_bad_since_says_what_is_accepted() -> None:
    with pytest.raises(CommandError, match="90m, 24h or 7d"):
        run("--since", "yesterday")


def test_stuck_tasks_and_unconsumed_pending_are_told_apart() -> None:
    from django.test import override_settings

    from django_celery_results.models import TaskResult, Worker
    from django_celery_results.workers import registry
    from django_celery_results.workers.registry import WorkerInfo

    bound = {"queue": "celery", "exchange": "", "type": "direct", "routing_key": "celery"}
    lost = WorkerInfo("celery@lost", "h", 1, queues=(bound,), boot="1" * 32)
    registry.register(lost, "default")
    registry.register(WorkerInfo("celery@live", "h", 2, queues=(bound,)), "default")
    Worker.objects.filter(boot=lost.boot).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    ops = get_driver(connections["default"]).ops
    started = timezone.now() - timedelta(seconds=30)
    on_lost = row(new_id(), states.STARTED, date_done=started, date_started=started,
                  worker="celery@lost", lifeline=lost.boot)  # fmt: skip
    ops.store_task_results([on_lost])
    stranded = new_id()
    ops.store_pending_results([row(stranded, states.PENDING, queue="reports")])
    TaskResult.objects.filter(task_id=stranded).update(
        date_done=timezone.now() - timedelta(minutes=10)
    )
    with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
        output = run("--since", "1h")
    assert "Stuck on lost workers (registered, no longer live): 1 (celery@lost=1)" in output
    assert "Stuck running too long" in output
    assert "Unconsumed PENDING (no live worker consumes the routing key): 1 (reports=1)" in output
