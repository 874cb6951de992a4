"""The admin's search: index lookups, args only when switched on."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_celery_results.admin.search import is_id_shaped, search
from django_celery_results.models import TaskResult

ID = "7b6f6a1e-1d2c-4e0b-9a55-00000000000a"


@pytest.fixture
def rows() -> list[TaskResult]:
    return [
        TaskResult.objects.create(
            task_id=ID, task_name="proj.tasks.add", worker="celery@alpha", task_args='"(7, 8)"'
        ),
        TaskResult.objects.create(
            task_id="custom-id-1",
            task_name="proj.mail.send",
            periodic_task_name="nightly-mail",
            worker="celery@beta",
        ),
    ]


def found(term: str, **options: bool) -> list[str]:
    return sorted(
        search(TaskResult.objects.all(), term, **options).values_list("task_id", flat=True)
    )


def test_id_shape() -> None:
    assert is_id_shaped(ID)
    assert is_id_shaped(ID.replace("-", "").upper())
    assert not is_id_shaped("proj.tasks.add")
    assert not is_id_shaped(ID + "0")


@pytest.mark.django_db
@pytest.mark.usefixtures("rows")
class TestSearch:
    def test_an_id_is_an_exact_lookup(self) -> None:
        with CaptureQueriesContext(connection) as queries:
            assert found(ID) == [ID]
        sql = queries.captured_queries[0]["sql"]
        assert "LIKE" not in sql.upper()
        assert "UPPER(" not in sql.upper()

    def test_an_id_without_dashes_finds_the_row(self) -> None:
        assert found(ID.replace("-", "")) == [ID]

    def test_a_custom_id_is_found_exactly(self) -> None:
        assert found("custom-id-1") == ["custom-id-1"]
        assert found("custom-id") == []  # ids are not matched by prefix

    def test_names_and_workers_match_by_prefix(self) -> None:
        assert found("proj.tasks") == [ID]
        assert found("nightly") == ["custom-id-1"]
        assert found("celery@") == sorted([ID, "custom-id-1"])
        assert found("tasks.add") == []

    def test_args_only_when_switched_on(self) -> None:
        assert found("(7, 8") == []
        assert found("(7, 8", scan_args=True) == [ID]

    def test_a_blank_term_finds_everything(self) -> None:
        assert len(found("  ")) == 2
