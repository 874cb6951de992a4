"""``TaskRow``: its column lists, ``values()`` and the batching merge cover every field."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import states

from django_celery_results.batching import merge
from django_celery_results.drivers import TaskRow
from django_celery_results.models import TaskResult

NAMES = [field.name for field in fields(TaskRow)]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def full_row(tag: str, status: str, seconds: int) -> TaskRow:
    """A row whose every field holds a value of its own (dates ``seconds`` apart)."""
    values: dict[str, Any] = {name: f"{tag}-{name}" for name in NAMES}
    for n, name in enumerate(TaskRow.DATE_COLUMNS):
        values[name] = T0 + timedelta(seconds=seconds + n)
    values.update(task_id="t1", status=status)
    return TaskRow(**values)


def test_columns_are_the_fields_with_the_dates_last() -> None:
    assert sorted(TaskRow.COLUMNS) == sorted(NAMES)
    assert TaskRow.COLUMNS[-len(TaskRow.DATE_COLUMNS) :] == TaskRow.DATE_COLUMNS
    assert TaskRow.COLUMNS[0] == "task_id"
    assert set(TaskRow.REPLACED) == set(NAMES) - {"task_id", *TaskRow.DATE_COLUMNS}
    assert TaskRow.KEPT_WHEN_NONE.issubset(TaskRow.REPLACED)


def test_descriptive_columns_follow_meta_in_field_order() -> None:
    # The backend builds rows by position: meta, then these, then date_started.
    start = NAMES.index("meta") + 1
    assert tuple(NAMES[start : start + len(TaskRow.DESCRIPTIVE)]) == TaskRow.DESCRIPTIVE
    assert NAMES[start + len(TaskRow.DESCRIPTIVE)] == "date_started"
    assert NAMES[: NAMES.index("meta") + 1] == [
        "task_id", "status", "content_type", "content_encoding", "result", "date_done",
        "traceback", "meta",
    ]  # fmt: skip


def test_columns_are_the_models_columns() -> None:
    model = {field.attname for field in TaskResult._meta.concrete_fields}
    # The history's bookkeeping is written by its catch-up, and ``retry_of`` by the
    # admin's Retry, never by a worker's write.
    assert set(TaskRow.COLUMNS) == model - {"id", "rolled_up", "history_mark", "retry_of"}


def test_values_follow_the_columns() -> None:
    row = full_row("a", states.SUCCESS, 0)
    assert row.values() == tuple(getattr(row, name) for name in TaskRow.COLUMNS)
    assert row.columns() == {name: getattr(row, name) for name in TaskRow.COLUMNS}
    new = TaskRow(**{**row.columns(), "date_created": None})
    assert new.columns()["date_created"] == new.date_done  # a new row: created when done


def test_merge_takes_every_field_from_one_of_the_rows() -> None:
    """A field added to ``TaskRow`` but not to ``merge`` would come out as its default."""
    queued, new = full_row("queued", states.STARTED, 0), full_row("new", states.SUCCESS, 10)
    merged = merge(queued, new)
    started_from_queued = {"date_started", "date_created"}
    for name in NAMES:
        source = queued if name in started_from_queued else new
        assert getattr(merged, name) == getattr(source, name), name
    bare = TaskRow(**{**new.columns(), **dict.fromkeys(TaskRow.KEPT_WHEN_NONE)})
    kept = merge(queued, bare)
    for name in TaskRow.KEPT_WHEN_NONE:
        assert getattr(kept, name) == getattr(queued, name), name
