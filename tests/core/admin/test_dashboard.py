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
    assert 'data-exception="KeyError"' in html
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
