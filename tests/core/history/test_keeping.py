"""The history outlives the rows: deleting never changes it; cleanup prunes it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from django_celery_results import cleanup
from django_celery_results.history.buckets import HOUR, MINUTE
from django_celery_results.history.rollup import catch_up
from django_celery_results.history.windows import series_counts, window
from django_celery_results.models import HistoryCount, HistoryLabel, TaskResult
from tests.core.admin import operating

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def put(task_id: str, status: str, ago: float, **columns: Any) -> None:
    TaskResult.objects.create(task_id=task_id, status=status, task_name="proj.add", **columns)
    done = timezone.now() - timedelta(seconds=ago)
    TaskResult.objects.filter(task_id=task_id).update(date_done=done)


def finished(alias: str, days: float = 3) -> int:
    now = timezone.now()
    return sum(e.count for e in series_counts(window(now - timedelta(days=days), now, now), alias))


def test_cleanup_counts_rows_before_it_deletes_them(db_alias: str) -> None:
    put("old", "SUCCESS", 2 * 86_400)
    put("new", "SUCCESS", 60)
    # Nothing counted yet: cleanup catches up first, then deletes.
    steps = cleanup.configured_steps(timedelta(days=1))
    report = cleanup.run(steps)
    assert report.rows >= 1
    assert list(TaskResult.objects.values_list("task_id", flat=True)) == ["new"]
    assert finished(db_alias) == 2


def test_forget_and_delete_expired_keep_the_history(db_alias: str, app: Any) -> None:
    put("a", "SUCCESS", 60)
    put("b", "FAILURE", 2 * 86_400)
    app.backend.forget("a")
    assert TaskResult.objects.delete_expired(timedelta(days=1)) == 1
    assert not TaskResult.objects.exists()
    assert finished(db_alias) == 2


def test_forget_counts_only_the_row_it_deletes(db_alias: str, app: Any) -> None:
    """A forget() after an upgrade with millions of rows waiting does not wait for them all."""
    put("a", "SUCCESS", 60)
    put("b", "FAILURE", 60)
    app.backend.forget("a")
    assert list(TaskResult.objects.values_list("task_id", "rolled_up")) == [("b", False)]
    assert finished(db_alias) == 1
    catch_up()
    assert finished(db_alias) == 2


def test_the_admins_delete_counts_the_rows_it_deletes(db_alias: str, admin_client: Any) -> None:
    for task_id in ("a", "b", "c"):
        put(task_id, "SUCCESS", 60)
    ids = list(TaskResult.objects.filter(task_id__in=["a", "b"]).values_list("pk", flat=True))
    changelist = "/admin/django_celery_results/taskresult/"
    response = operating.confirm(admin_client, "delete_tasks", ids)  # a preview, then a job
    assert response.status_code == 200
    assert list(TaskResult.objects.values_list("task_id", "rolled_up")) == [("c", False)]
    assert finished(db_alias) == 2
    response = admin_client.post(
        f"{changelist}{TaskResult.objects.get().pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert finished(db_alias) == 3


def test_cleanup_prunes_buckets_past_their_retention(db_alias: str) -> None:
    put("a", "SUCCESS", 10 * 86_400)
    catch_up()
    assert HistoryCount.objects.filter(tier=MINUTE).exists()
    cleanup.run(cleanup.configured_steps(None))
    assert not HistoryCount.objects.filter(tier=MINUTE).exists()  # minutes: 8 days
    assert HistoryCount.objects.filter(tier=HOUR).exists()
    with override_settings(DJANGO_CELERY_RESULTS={"HISTORY_RETENTION": 86_400}):
        cleanup.run(cleanup.configured_steps(None))
    assert not HistoryCount.objects.exists()


def test_a_bad_history_retention_stops_cleanup(db_alias: str) -> None:
    put("a", "SUCCESS", 10 * 86_400)
    with (
        override_settings(DJANGO_CELERY_RESULTS={"HISTORY_RETENTION": 60}),
        pytest.raises(cleanup.CleanupRefused),
    ):
        cleanup.configured_steps(timedelta(days=1))
    assert TaskResult.objects.count() == 1


def test_the_command_counts_every_stored_row(db_alias: str) -> None:
    for n in range(25):
        put(f"t{n}", "SUCCESS", 60 + n)
    TaskResult.objects.create(
        task_id="f",
        status="FAILURE",
        content_type="application/json",
        result='{"exc_type": "KeyError", "exc_module": "builtins", "exc_message": []}',
    )
    out, err = StringIO(), StringIO()
    call_command("celery_results_history", database=db_alias, stdout=out, stderr=err)
    assert "Counted 26 rows" in out.getvalue()
    assert "26/26 rows" in err.getvalue()
    assert not TaskResult.objects.filter(rolled_up=False).exists()
    # The stored JSON failure's exception type is filled in as it is counted.
    assert TaskResult.objects.get(task_id="f").exception_type == "KeyError"


def test_the_command_vacuums_postgresql_after_counting(
    db_alias: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_celery_results.management.commands import celery_results_history

    monkeypatch.setattr(celery_results_history, "VACUUM_AFTER", 1)
    put("a", "SUCCESS", 60)
    out = StringIO()
    call_command("celery_results_history", "--quiet", database=db_alias, stdout=out)
    assert ("Vacuumed" in out.getvalue()) == (db_alias.startswith("postgres"))
    put("b", "SUCCESS", 60)
    out = StringIO()
    call_command("celery_results_history", "--no-vacuum", database=db_alias, stdout=out)
    assert "Vacuumed" not in out.getvalue()


def test_label_values_past_the_bound_count_as_other(db_alias: str, admin_client: Any) -> None:
    with override_settings(DJANGO_CELERY_RESULTS={"METRICS_MAX_LABEL_VALUES": 2}):
        for n in range(4):
            put(f"w{n}", "SUCCESS", 60, worker=f"pod-{n}")
        catch_up()
    workers = set(HistoryLabel.objects.filter(label="worker").values_list("value", flat=True))
    assert workers == {"pod-0", "pod-1"}
    body = admin_client.get("/metrics/").content.decode()
    counters = [line for line in body.splitlines() if line.startswith("celery_results_tasks_")]
    assert any('worker="other"' in line and line.endswith(" 2.0") for line in counters)
    assert not any('worker="pod-3"' in line for line in counters)
