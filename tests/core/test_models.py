"""Models: upstream's field texts and lengths, as_dict, __str__ and the timing helpers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from celery import Celery
from django.apps import apps
from django.utils import timezone

from django_celery_results.models import ChordCounter, GroupResult, TaskResult


def test_app_identity() -> None:
    config = apps.get_app_config("django_celery_results")
    assert type(config).__name__ == "CeleryResultConfig"
    assert config.default_auto_field == "django.db.models.AutoField"
    assert TaskResult._meta.db_table == "django_celery_results_taskresult"
    assert GroupResult._meta.db_table == "django_celery_results_groupresult"
    assert ChordCounter._meta.db_table == "django_celery_results_chordcounter"


def test_id_columns_follow_the_setting() -> None:
    """The test settings use 191, as upstream's suite does."""
    for model, field in [
        (TaskResult, "task_id"),
        (TaskResult, "task_name"),
        (GroupResult, "group_id"),
        (ChordCounter, "group_id"),
    ]:
        assert getattr(model._meta.get_field(field), "max_length", None) == 191


def test_field_texts() -> None:
    field = TaskResult._meta.get_field("result")
    assert str(field.verbose_name) == "Result Data"
    assert str(field.help_text) == (
        "The data returned by the task.  Use content_encoding and content_type fields to read."
    )
    assert str(TaskResult._meta.get_field("status").help_text) == (
        "Current state of the task being run"
    )
    assert not TaskResult._meta.get_field("status").choices


def test_index_names() -> None:
    assert {index.name for index in TaskResult._meta.indexes} == {
        "django_cele_task_na_08aec9_idx",
        "django_cele_status_9b6201_idx",
        "django_cele_worker_d54dd8_idx",
        "django_cele_date_cr_f04a50_idx",
        "django_cele_date_do_f59aad_idx",
        "django_cele_periodi_1993cf_idx",
        "django_cele_excepti_0c5e3a_idx",
        "django_cele_status_done_idx",
        "django_cele_rolled_up_idx",
        "django_cele_retry_of_idx",
    }
    assert {index.name for index in GroupResult._meta.indexes} == {
        "django_cele_date_cr_bd6c1d_idx",
        "django_cele_date_do_caae0e_idx",
    }


def test_task_result_as_dict_and_str() -> None:
    task = TaskResult(task_id="t1", status="SUCCESS", result="1", worker="w")
    assert set(task.as_dict()) == {
        "task_id",
        "task_name",
        "task_args",
        "task_kwargs",
        "status",
        "result",
        "date_done",
        "traceback",
        "meta",
        "worker",
    }
    assert str(task) == "<Task: t1 (SUCCESS)>"


def test_group_result_as_dict_and_str() -> None:
    group = GroupResult(group_id="g1", result="[]")
    assert set(group.as_dict()) == {"group_id", "result", "date_done"}
    assert str(group) == "<Group: g1>"


def test_processing_time() -> None:
    now = timezone.now()
    task = TaskResult(status="SUCCESS", date_started=now, date_done=now + timedelta(seconds=3))
    assert task.processing_time == timedelta(seconds=3)
    assert TaskResult(status="STARTED", date_started=now, date_done=now).processing_time is None
    assert TaskResult(status="SUCCESS", date_done=now).processing_time is None


@pytest.mark.django_db
def test_chord_counter_group_result() -> None:
    app = Celery(set_as_current=False)
    sub_tasks = json.dumps([[["a", None], None], [["b", None], None]])
    counter = ChordCounter.objects.create(group_id="g", sub_tasks=sub_tasks, count=2)
    result = counter.group_result(app=app)
    assert result.id == "g"
    assert [r.id for r in result.results] == ["a", "b"]
