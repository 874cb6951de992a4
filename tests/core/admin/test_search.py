"""The admin's search: index lookups, args only when switched on."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_celery_results.admin.search import (
    is_id_shaped,
    search,
    starts_with,
    suggested_names,
)
from django_celery_results.models import HistorySeries, TaskResult

LIST = "admin:django_celery_results_taskresult_changelist"

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


INDEXES = {
    "task_id": "task_id",
    "task_name": "django_cele_task_na_08aec9_idx",
    "worker": "django_cele_worker_d54dd8_idx",
    "periodic_task_name": "django_cele_periodi_1993cf_idx",
    "exception_type": "django_cele_excepti_0c5e3a_idx",
}


def plan(alias: str, queryset: Any) -> str:
    """The database's plan of ``queryset``, with sequential scans priced out (PostgreSQL)."""
    if connections[alias].vendor == "postgresql":
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            return str(queryset.explain())
    return str(queryset.explain())


@pytest.mark.django_db(databases="__all__", transaction=True)
class TestIndexUse:
    """Each prefix a search matches is an index range on every database."""

    @pytest.mark.parametrize("column", list(INDEXES))
    def test_each_prefix_is_served_by_its_index(self, db_alias: str, column: str) -> None:
        table = TaskResult.objects.order_by()  # no ORDER BY: no other index to walk
        queryset = table.filter(starts_with(table, column, "7b6f6a1e"))
        explained = plan(db_alias, queryset)
        vendor = connections[db_alias].vendor
        if vendor == "postgresql":
            assert "Seq Scan" not in explained, explained
            # The column's own index (task_id's is Django's ``…_like`` one).
            assert INDEXES[column] in explained, explained
            assert "Index Cond" in explained, explained
        elif vendor == "mysql":
            # possible_keys names the index: the condition is an index range (on a table
            # this small the optimizer still reads it whole; on a large one it ranges).
            assert INDEXES[column] in explained, explained
        else:
            # SEARCH (an index range), not SCAN (the whole table).
            assert "SEARCH" in explained, explained
            assert "INDEX" in explained.upper(), explained

    def test_the_whole_search_reads_no_table_scan_on_postgresql(self, db_alias: str) -> None:
        if connections[db_alias].vendor != "postgresql":
            pytest.skip("PostgreSQL's planner: the others are checked column by column")
        explained = plan(db_alias, search(TaskResult.objects.order_by(), "7b6f6a1e"))
        assert "Seq Scan" not in explained, explained

    def test_an_id_prefix_finds_its_rows(self, db_alias: str) -> None:
        TaskResult.objects.create(task_id=ID, task_name="proj.a")
        TaskResult.objects.create(task_id="7b6f6a1f-0000", task_name="proj.b")
        queryset = TaskResult.objects.all()
        assert list(search(queryset, "7b6f6a1e").values_list("task_id", flat=True)) == [ID]
        assert list(search(queryset, "7B6F6A1E-1D2C").values_list("task_id", flat=True)) == [ID]
        assert not search(queryset, "7b6f6a1").exists()  # 7 digits: not an id prefix


@pytest.mark.django_db
def test_a_search_that_finds_nothing_suggests_names_from_the_history(
    admin_client: Client,
) -> None:
    HistorySeries.objects.create(
        key="a" * 40, task_name="proj.billing.charge_card", state="SUCCESS"
    )
    HistorySeries.objects.create(key="b" * 40, task_name="proj.mail.send", state="SUCCESS")
    response = admin_client.get(reverse(LIST), {"q": "charge_card"})
    html = response.content.decode()
    assert 'id="dcr-suggestions"' in html
    assert "?q=proj.billing.charge_card" in html
    assert "proj.mail.send" not in html
    assert suggested_names("default", "xx") == []  # too short to suggest from
