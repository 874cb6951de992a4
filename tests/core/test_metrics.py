"""The Prometheus view, on every database, parsed with prometheus_client's own parser."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from django_celery_results.models import TaskResult

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
URL = "/metrics/"
TOKEN = "s3cret-token-of-some-length"


def put(task_id: str, status: str, *, ago: float = 30, **columns: Any) -> None:
    TaskResult.objects.create(task_id=task_id, status=status, **columns)
    TaskResult.objects.filter(task_id=task_id).update(
        date_done=timezone.now() - timedelta(seconds=ago)
    )


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def test_counters_and_gauges_equal_the_table(admin_client: Client, db_alias: str) -> None:
    put("a", "SUCCESS", task_name="proj.add", queue="fast", worker="celery@a")
    put("b", "SUCCESS", task_name="proj.add", queue="fast", worker="celery@a")
    put("c", "FAILURE", task_name="proj.add", queue="slow", worker="celery@b")
    put("d", "STARTED", task_name="proj.mul", worker="celery@c", ago=7200)
    put("e", "SUCCESS", task_name="proj.add", queue="fast", ago=4 * 3600)
    response = admin_client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    found = samples(response.content)
    ok = (("queue", "fast"), ("state", "SUCCESS"), ("task", "proj.add"), ("worker", "celery@a"))
    assert found[("celery_results_tasks_total", ok)] == 2
    failed = (
        ("queue", "slow"),
        ("state", "FAILURE"),
        ("task", "proj.add"),
        ("worker", "celery@b"),
    )
    assert found[("celery_results_tasks_total", failed)] == 1
    older = (("queue", "fast"), ("state", "SUCCESS"), ("task", "proj.add"), ("worker", ""))
    assert found[("celery_results_tasks_total", older)] == 1  # a total, not a window
    exception = (("exception", "(unknown)"), ("task", "proj.add"), ("worker", "celery@b"))
    assert found[("celery_results_task_exceptions_total", exception)] == 1
    too_long = (("reason", "too_long"), ("worker", "celery@c"))
    assert found[("celery_results_stuck_tasks", too_long)] == 1
    on_lost = (("reason", "lost_worker"), ("worker", "celery@c"))
    assert found[("celery_results_stuck_tasks", on_lost)] == 0


def test_a_counter_never_goes_down(admin_client: Client, db_alias: str) -> None:
    put("c", "FAILURE", task_name="proj.add", queue="slow", worker="celery@b")
    admin_client.get(URL)
    row = TaskResult.objects.get(task_id="c")
    row.status = "SUCCESS"  # its final state changes: a retry of the run succeeded
    row.save()
    found = samples(admin_client.get(URL).content)
    labels = (("queue", "slow"), ("task", "proj.add"), ("worker", "celery@b"))
    assert (
        found[("celery_results_tasks_total", (*labels[:1], ("state", "FAILURE"), *labels[1:]))]
        == 1
    )
    assert (
        found[("celery_results_tasks_total", (*labels[:1], ("state", "SUCCESS"), *labels[1:]))]
        == 1
    )


def test_run_times_are_a_histogram(admin_client: Client, db_alias: str) -> None:
    now = timezone.now()
    for n, seconds in enumerate((0.2, 0.7, 3.0)):
        TaskResult.objects.create(task_id=f"r{n}", status="SUCCESS", task_name="proj.add")
        TaskResult.objects.filter(task_id=f"r{n}").update(
            date_started=now - timedelta(seconds=seconds), date_done=now
        )
    found = samples(admin_client.get(URL).content)
    name = "celery_results_task_run_time_seconds"
    assert found[(f"{name}_count", (("task", "proj.add"),))] == 3
    assert found[(f"{name}_bucket", (("le", "1.0"), ("task", "proj.add")))] == 2
    assert found[(f"{name}_bucket", (("le", "+Inf"), ("task", "proj.add")))] == 3
    assert found[(f"{name}_sum", (("task", "proj.add"),))] == pytest.approx(3.9, rel=1e-3)


def test_the_window_gauges_are_kept(admin_client: Client, db_alias: str) -> None:
    put("a", "SUCCESS", task_name="proj.add", queue="fast", worker="celery@a")
    put("e", "SUCCESS", task_name="proj.add", queue="fast", ago=4 * 3600)
    tasks = (("queue", "fast"), ("state", "SUCCESS"), ("task", "proj.add"))
    hour = samples(admin_client.get(URL, {"window": "1h"}).content)
    assert hour[("celery_results_tasks", tasks)] == 1
    assert hour[("celery_results_window_sampled", ())] == 0
    wide = samples(admin_client.get(URL, {"window": "5h"}).content)
    assert wide[("celery_results_tasks", tasks)] == 2


def test_a_token_lets_a_scraper_in(client: Client, db_alias: str) -> None:
    assert client.get(URL).status_code == 403
    with override_settings(DJANGO_CELERY_RESULTS={"METRICS_TOKEN": TOKEN}):
        assert client.get(URL, headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.get(URL, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_staff_without_the_view_permission_is_refused(client: Client, db_alias: str) -> None:
    client.force_login(User.objects.create_user("staff", is_staff=True))
    assert client.get(URL).status_code == 403


def test_a_bad_window_says_what_is_accepted(admin_client: Client, db_alias: str) -> None:
    for window in ("forever", "31d", "0m"):
        response = admin_client.get(URL, {"window": window})
        assert response.status_code == 400
        assert b"at most 30d" in response.content


def test_the_worker_registry_by_state_and_heartbeat_age(
    admin_client: Client, db_alias: str
) -> None:
    from django_celery_results.models import Worker
    from django_celery_results.workers import registry
    from django_celery_results.workers.registry import WorkerInfo

    names = ("celery@live", "celery@silent", "celery@stopped")
    infos = {name.split("@")[1]: WorkerInfo(name, "host", 1) for name in names}
    for info in infos.values():
        registry.register(info, db_alias)
    registry.stop(infos["stopped"], db_alias)
    Worker.objects.filter(hostname="celery@silent").update(
        heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    found = samples(admin_client.get(URL).content)
    for state in ("live", "silent", "stopped"):
        assert found[("celery_results_workers", (("state", state),))] == 1
    ages = {
        labels[0][1]: value
        for (name, labels), value in found.items()
        if name == "celery_results_worker_heartbeat_age_seconds"
    }
    assert set(ages) == {"celery@live", "celery@silent"}  # a stopped worker has no age
    assert ages["celery@live"] < 60
    assert 240 < ages["celery@silent"] < 400


def test_lost_workers_tasks_settlements_and_write_counts(
    admin_client: Client, db_alias: str
) -> None:
    from django_celery_results.losses import WriteCounts
    from django_celery_results.models import Worker
    from django_celery_results.workers import lifeline, registry
    from django_celery_results.workers.registry import WorkerInfo

    lost = WorkerInfo("celery@lost", "host", 1, boot="1" * 32)
    registry.register(lost, db_alias)
    counts = WriteCounts()
    counts.add(retried=4, lost=2)
    registry.beat(lost, db_alias, counts)
    put("on-lost", "STARTED", task_name="proj.mul", worker="celery@lost", lifeline="1" * 32)
    Worker.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=50))  # silent
    lifeline.count(db_alias, lifeline.SETTLED, 3)
    found = samples(admin_client.get(URL).content)
    on_lost = (("reason", "lost_worker"), ("worker", "celery@lost"))
    assert found[("celery_results_stuck_tasks", on_lost)] == 1
    assert found[("celery_results_lifeline_settled_total", ())] == 3
    assert found[("celery_results_lifeline_awaiting_redelivery_total", ())] == 0
    worker = (("worker", "celery@lost"),)
    assert found[("celery_results_worker_writes_retried", worker)] == 4
    assert found[("celery_results_worker_writes_lost", worker)] == 2


def test_pending_rows_no_live_worker_consumes(admin_client: Client, db_alias: str) -> None:
    import json

    from django_celery_results.workers import registry
    from django_celery_results.workers.registry import WorkerInfo

    bound = {"queue": "celery", "exchange": "", "type": "direct", "routing_key": "celery"}
    registry.register(WorkerInfo("celery@a", "host", 1, queues=(bound,), boot="a" * 32), db_alias)
    put("waits", "PENDING", task_name="proj.add", queue="celery", ago=900)
    put("stranded-1", "PENDING", task_name="proj.add", queue="reports", ago=900)
    put("stranded-2", "PENDING", task_name="proj.add", queue="reports", ago=900)
    put("fresh", "PENDING", task_name="proj.add", queue="reports", ago=10)  # not yet
    with override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}):
        found = samples(admin_client.get(URL).content)
        assert found[("celery_results_unconsumed_pending_tasks", ())] == 2
        from django_celery_results import report

        backlog = report.build(timezone.now() - timedelta(hours=1)).backlog
    assert backlog is not None
    assert backlog.unconsumed_queues == {"reports": 2}
    assert not backlog.unconsumed_capped
    assert json.dumps(backlog.unconsumed_queues)
    # A key counted only up to the bound says so: the total is a lower bound.
    with (
        override_settings(DJANGO_CELERY_RESULTS={"TRACK_PENDING": True}),
        mock.patch.object(report, "MAX_BACKLOG", 1),
    ):
        capped = report.build(timezone.now() - timedelta(hours=1)).backlog
    assert capped is not None
    assert (capped.unconsumed, capped.unconsumed_capped) == (1, True)
