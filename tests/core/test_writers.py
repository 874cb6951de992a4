"""The background writers' registry, wired to the process by ``lifecycle``."""

from __future__ import annotations

from celery.signals import before_task_publish, worker_process_shutdown

from django_celery_results import lifecycle, writers


def ours(signal: object) -> list[object]:
    lookups = [key for key, _ in signal.receivers]  # type: ignore[attr-defined]
    return [key for key in lookups if "django_celery_results" in str(key[0])]


def test_ready_installs_both_writers_once() -> None:
    assert [writer.name for writer in writers._writers] == ["batching", "pending"]
    lifecycle.install()  # a second ready() adds nothing
    assert [writer.name for writer in writers._writers] == ["batching", "pending"]
    assert len(ours(worker_process_shutdown)) == 1
    assert len(ours(before_task_publish)) == 1
