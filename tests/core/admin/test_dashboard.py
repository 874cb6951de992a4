"""The "Task results dashboard" admin page, on every database."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_celery_results.models import TaskResult

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
DASHBOARD = "admin:django_celery_results_dashboard"


def put(task_id: str, status: str, name: str, ago: float, **columns: Any) -> None:
    TaskResult.objects.create(task_id=task_id, status=status, task_name=name, **columns)
    done = timezone.now() - timedelta(seconds=ago)
    TaskResult.objects.filter(task_id=task_id).update(date_done=done)


def figure(html: str, attribute: str) -> str:
    match = re.search(rf"{attribute}>([^<]*)<", html)
    assert match, attribute
    return match.group(1)


def test_the_numbers_are_the_tables(admin_client: Client, db_alias: str) -> None:
    put("a", "SUCCESS", "proj.add", 60, worker="celery@a")
    put("b", "FAILURE", "proj.add", 60, worker="celery@a", content_type="application/json",
        result='{"exc_type": "KeyError", "exc_message": ["x"]}')  # fmt: skip
    put("c", "SUCCESS", "proj.mul", 2 * 86_400)  # outside 24 h, inside 7 days
    html = admin_client.get(reverse(DASHBOARD)).content.decode()
    assert figure(html, 'data-figure="total"') == "2"
    assert figure(html, 'data-state="FAILURE"') == "1"
    assert figure(html, 'data-figure="failure-rate"') == "50%"
    assert 'data-exception="KeyError"' in html  # an incident, by exception and task
    assert 'data-task="proj.mul"' not in html
    assert "<svg" in html
    # The chart is server-rendered: no script beyond the admin's own static files.
    assert all(
        src.startswith("/static/") for src in re.findall(r'<script[^>]* src="([^"]+)"', html)
    )
    week = admin_client.get(reverse(DASHBOARD), {"window": "7d"}).content.decode()
    assert figure(week, 'data-figure="total"') == "3"
    assert 'data-task="proj.mul"' in week


def test_an_unknown_window_falls_back_to_a_day(admin_client: Client, db_alias: str) -> None:
    response = admin_client.get(reverse(DASHBOARD), {"window": "1y"})
    assert response.status_code == 200
    assert response.context["window"] == "24h"


def test_staff_only(client: Client, db_alias: str) -> None:
    response = client.get(reverse(DASHBOARD))
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse(DASHBOARD)).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_taskresult"))
    assert client.get(reverse(DASHBOARD)).status_code == 200


def test_the_list_links_to_the_dashboard(admin_client: Client, db_alias: str) -> None:
    html = admin_client.get(reverse("admin:django_celery_results_taskresult_changelist"))
    assert reverse(DASHBOARD) in html.content.decode()


def test_every_window_is_offered_and_exact(admin_client: Client, db_alias: str) -> None:
    put("recent", "SUCCESS", "proj.add", 120)
    put("older", "SUCCESS", "proj.add", 20 * 86_400)
    for window, total in (("15m", 1), ("1h", 1), ("6h", 1), ("24h", 1), ("7d", 1), ("30d", 2)):
        html = admin_client.get(reverse(DASHBOARD), {"window": window}).content.decode()
        assert figure(html, 'data-figure="total"') == str(total), window
        assert 'id="dcr-coverage"' in html


def test_each_task_sits_beside_its_previous_window(admin_client: Client, db_alias: str) -> None:
    now = timezone.now()
    for n, (ago, run) in enumerate([(600, 0.5), (620, 0.5), (4200, 0.1), (4300, 0.1)]):
        put(f"t{n}", "SUCCESS", "proj.slow", ago)
        done = now - timedelta(seconds=ago)
        started = done - timedelta(seconds=run)
        # Without TRACK_PENDING the first write creates the row as the task starts.
        TaskResult.objects.filter(task_id=f"t{n}").update(
            date_created=started, date_started=started, date_done=done
        )
    html = admin_client.get(reverse(DASHBOARD), {"window": "1h"}).content.decode()
    row = html[html.index('data-task="proj.slow"') :]
    row = row[: row.index("</tr>")]
    assert figure(row, 'data-col="total"') == "2"
    assert 'class="dcr-before">2<' in row  # the hour before held two as well
    assert "dcr-worse" in row  # 0.5 s against 0.1 s: flagged
    assert 'data-col="wait-missing"' in row  # no TRACK_PENDING: not measured, not zero


def test_the_chart_links_each_bar_to_its_rows(admin_client: Client, db_alias: str) -> None:
    put("a", "SUCCESS", "proj.add", 120)
    html = admin_client.get(reverse(DASHBOARD), {"window": "1h"}).content.decode()
    assert html.count("data-bar=") == 61  # 60 minutes, and the one the window starts in
    assert "date_done__gte=" in html
    assert 'class="partial"' in html
    picked = admin_client.get(reverse(DASHBOARD), {"window": "1h", "task": "proj.add"})
    assert picked.context["task"] == "proj.add"


def test_a_picked_task_charts_its_own_tasks_and_failures(
    admin_client: Client, db_alias: str
) -> None:
    for n in range(3):
        put(f"mul-{n}", "SUCCESS", "proj.mul", 120)
    put("add-1", "SUCCESS", "proj.add", 120)
    put("add-2", "FAILURE", "proj.add", 120)
    every = admin_client.get(reverse(DASHBOARD), {"window": "1h"}).context
    assert (every["chart_top"], every["failed_top"]) == (5, 1)
    picked = admin_client.get(reverse(DASHBOARD), {"window": "1h", "task": "proj.mul"}).context
    assert (picked["task"], picked["chart_top"], picked["failed_top"]) == ("proj.mul", 3, 0)
    unknown = admin_client.get(reverse(DASHBOARD), {"window": "1h", "task": "proj.nope"}).context
    assert (unknown["task"], unknown["chart_top"]) == (None, 5)  # every task's, then


def test_auto_refresh_is_a_meta_refresh(admin_client: Client, db_alias: str) -> None:
    html = admin_client.get(reverse(DASHBOARD), {"refresh": "30"}).content.decode()
    assert '<meta http-equiv="refresh" content="30">' in html
    plain = admin_client.get(reverse(DASHBOARD), {"refresh": "7"}).content.decode()
    assert 'http-equiv="refresh"' not in plain
