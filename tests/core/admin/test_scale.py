"""The task result list at any size, on every database: counts, deep pages, filters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.db import connections
from django.http import QueryDict
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_celery_results.admin import TaskResultAdmin, filters, paging
from django_celery_results.models import AdminJob, AdminJobItem, GroupResult, TaskResult

from . import operating

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
LIST = "admin:django_celery_results_taskresult_changelist"


def add(n: int, *, status: str = "SUCCESS", task_name: str = "proj.add", ago: float = 0) -> None:
    """Store ``n`` rows done ``ago`` seconds ago (several share one date_done: ties)."""
    done = timezone.now() - timedelta(seconds=ago)
    for _ in range(n):
        row = TaskResult.objects.create(task_id=_next_id(), status=status, task_name=task_name)
        TaskResult.objects.filter(pk=row.pk).update(date_done=done)


_counter = iter(range(10**9))


def _next_id() -> str:
    return f"scale-{next(_counter):06d}"


def listed(response: Any) -> list[str]:
    return [row.task_id for row in response.context["cl"].result_list]


@pytest.fixture
def small_bounds() -> Iterator[None]:
    """Count at most 5 rows, 3 per page: the bounds of a 10-million-row table, scaled down."""
    with (
        mock.patch.object(paging, "COUNT_LIMIT", 5),
        mock.patch.object(TaskResultAdmin, "list_per_page", 3),
    ):
        yield


def test_an_unfiltered_big_table_shows_the_estimate_without_counting(
    driver: Any, db_alias: str, admin_client: Client
) -> None:
    add(3)
    with (
        mock.patch.object(driver.ops, "estimated_row_count", return_value=5_000_000),
        CaptureQueriesContext(connections[db_alias]) as queries,
    ):
        response = admin_client.get(reverse(LIST))
    assert response.status_code == 200
    assert "about 5,000,000 task results" in response.content.decode()
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    paginator = response.context["cl"].paginator
    # Page numbers reach COUNT_LIMIT rows deep; "Older" goes on from there.
    assert paginator.num_pages == paging.COUNT_LIMIT // TaskResultAdmin.list_per_page


@pytest.mark.usefixtures("small_bounds")
def test_a_filtered_count_stops_at_its_bound(db_alias: str, admin_client: Client) -> None:
    add(8, status="FAILURE")
    add(2, status="SUCCESS")
    with CaptureQueriesContext(connections[db_alias]) as queries:
        response = admin_client.get(reverse(LIST), {"status__exact": "FAILURE"})
    assert "5+ task results" in response.content.decode()
    [count] = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "LIMIT" in count.upper()


@pytest.mark.usefixtures("small_bounds")
def test_older_links_walk_every_row_once_in_order(db_alias: str, admin_client: Client) -> None:
    add(4, status="FAILURE", ago=30)  # four rows with one date_done: ties broken by id
    add(3, status="FAILURE", ago=20)
    add(1, status="FAILURE", ago=10)
    add(2, status="SUCCESS")
    expected = list(
        TaskResult.objects.filter(status="FAILURE")
        .order_by("-date_done", "-pk")
        .values_list("task_id", flat=True)
    )
    seen: list[str] = []
    params: dict[str, str] = {"status__exact": "FAILURE"}
    for _ in range(10):
        first = admin_client.get(reverse(LIST), params)
        pages = first.context["cl"].paginator.num_pages
        seen += listed(first)
        last = first
        for number in range(2, pages + 1):
            # The page links the template renders (they keep the cursor).
            link = first.context["cl"].get_query_string({"p": number})
            last = admin_client.get(reverse(LIST) + link)
            seen += listed(last)
        older = last.context["cl"].older_url
        if older is None:
            break
        params = QueryDict(older.removeprefix("?")).dict()
        assert params["status__exact"] == "FAILURE"
    assert seen == expected


@pytest.mark.parametrize(
    "cursor", ["not-a-cursor", "2024-02-30T00:00:00~1", "2026-01-01T00:00:00~\u00b2", "~5"]
)
def test_a_malformed_cursor_shows_the_newest_rows(
    admin_client: Client, db_alias: str, cursor: str
) -> None:
    add(2)
    response = admin_client.get(reverse(LIST), {"before": cursor})
    assert response.status_code == 200
    assert len(listed(response)) == 2


@pytest.mark.usefixtures("small_bounds")
def test_a_new_search_starts_from_the_newest_rows(admin_client: Client, db_alias: str) -> None:
    add(8, status="FAILURE")
    first = admin_client.get(reverse(LIST), {"status__exact": "FAILURE"})
    last = admin_client.get(reverse(LIST) + first.context["cl"].get_query_string({"p": 2}))
    older = last.context["cl"].older_url
    assert older is not None
    behind = admin_client.get(reverse(LIST) + older).content.decode()
    assert 'type="hidden" name="status__exact"' in behind
    assert 'name="before"' not in behind  # the search form's hidden fields


@pytest.mark.usefixtures("small_bounds")
def test_an_action_on_all_rows_past_the_bound_previews_then_takes_them_all(
    admin_client: Client, db_alias: str
) -> None:
    add(8)
    first = TaskResult.objects.first()
    assert first is not None
    with mock.patch("django_celery_results.admin.celery_app.control.revoke") as revoke:
        page = operating.preview(admin_client, "revoke_tasks", [first.pk], across=True)
        revoke.assert_not_called()
        assert "More than 5 task results match" in page.content.decode()
        with mock.patch("django_celery_results.operations.jobs.run_admin_job.apply_async") as sent:
            operating.confirm(admin_client, "revoke_tasks", [first.pk], across=True)
    # Past one chunk of hand-picked rows, a worker runs the job: all 8 rows are fixed.
    job = AdminJob.objects.get()
    sent.assert_called_once_with((job.pk,))
    assert job.total == 8
    assert AdminJobItem.objects.filter(job=job).count() == 8


def test_a_group_search_is_an_exact_id(admin_client: Client, db_alias: str) -> None:
    for group_id in ("group-abc", "group-abcd"):
        GroupResult.objects.create(group_id=group_id, content_type="", content_encoding="")
    response = admin_client.get(
        reverse("admin:django_celery_results_groupresult_changelist"), {"q": "group-abc"}
    )
    assert [g.group_id for g in response.context["cl"].result_list] == ["group-abc"]


def test_state_choices_need_no_query(rf: Any, db_alias: str) -> None:
    with CaptureQueriesContext(connections[db_alias]) as queries:
        choices = filters.StatusFilter(rf.get("/"), {}, TaskResult, None).lookup_choices  # type: ignore[arg-type]
    assert ("FAILURE", "FAILURE") in choices
    assert queries.captured_queries == []


def test_name_choices_come_from_recent_rows(admin_client: Client, db_alias: str) -> None:
    add(1, task_name="proj.old", ago=86_400)
    add(3, task_name="proj.new")
    with mock.patch.object(filters, "RECENT_ROWS", 3):
        response = admin_client.get(reverse(LIST))
        offered = choices_of(response, "task_name__exact")
        assert "proj.new" in offered
        assert "proj.old" not in offered
        # A value chosen by link or by hand is still offered, and filters.
        chosen = admin_client.get(reverse(LIST), {"task_name__exact": "proj.old"})
    assert "proj.old" in choices_of(chosen, "task_name__exact")
    assert [TaskResult.objects.get(task_id=i).task_name for i in listed(chosen)] == ["proj.old"]


def choices_of(response: Any, parameter: str) -> list[str]:
    """The values a filter of the changelist offers."""
    html = response.content.decode()
    return sorted(set(re.findall(rf"\?{parameter}=([^\"&]+)", html)))


def test_an_id_search_finds_the_row(admin_client: Client, db_alias: str) -> None:
    add(3)
    wanted = TaskResult.objects.order_by("pk").first()
    assert wanted is not None
    response = admin_client.get(reverse(LIST), {"q": wanted.task_id})
    assert listed(response) == [wanted.task_id]
