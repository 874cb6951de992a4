"""The permission matrix: every admin URL, the dashboard and /metrics, for every kind of user.

Nothing that changes a row or acts on a worker is allowed by a view permission: each
such action needs its own. Each cell is a real request (GET and POST) through the admin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_celery_results.models import AdminJob, GroupResult, TaskResult

TERMINATE = "django_celery_results.admin.celery_app.control.terminate"
REVOKE = "django_celery_results.admin.celery_app.control.revoke"
SEND_TASK = "django_celery_results.admin.celery_app.send_task"

#: The users of the matrix: (name, is_staff, is_superuser, permission codenames).
USERS = {
    "anonymous": None,
    "non-staff": (False, False, ["view_taskresult", "terminate_taskresult"]),
    "staff, no permission": (True, False, []),
    "staff, view": (True, False, ["view_taskresult", "view_groupresult"]),
    "staff, view + terminate": (True, False, ["view_taskresult", "terminate_taskresult"]),
    "staff, view + retry": (True, False, ["view_taskresult", "retry_taskresult"]),
    "staff, view + revoke": (True, False, ["view_taskresult", "revoke_taskresult"]),
    "staff, view + delete": (
        True,
        False,
        ["view_taskresult", "delete_taskresult", "view_groupresult", "delete_groupresult"],
    ),
    "staff, view + change": (True, False, ["view_taskresult", "change_taskresult"]),
    "superuser": (True, True, []),
}


def client_for(name: str) -> Client:
    client = Client()
    spec = USERS[name]
    if spec is None:
        return client
    staff, superuser, codenames = spec
    user = User.objects.create_user(
        name.replace(" ", "_").replace(",", "").replace("+", "and"),
        password="pw",
        is_staff=staff,
        is_superuser=superuser,
    )
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def has(name: str, codename: str) -> bool:
    """Whether the user holds ``codename`` (a superuser holds every one)."""
    spec = USERS[name]
    if spec is None:
        return False
    staff, superuser, codenames = spec
    return staff and (superuser or codename in codenames)


@pytest.fixture
def rows() -> tuple[TaskResult, GroupResult]:
    task = TaskResult.objects.create(task_id="matrix-task", status="STARTED", task_name="t")
    group = GroupResult.objects.create(group_id="matrix-group", result="[]")
    return task, group


def admin_url(name: str, *args: Any) -> str:
    return reverse(f"admin:django_celery_results_{name}", args=args)


def allowed(response: Any) -> bool:
    """The admin answered the page (not the login page, not 403)."""
    if response.status_code in (302, 301):
        return "/login/" not in response["Location"]
    return bool(response.status_code == 200)


PAGES: list[tuple[str, Callable[[TaskResult, GroupResult], str], str]] = [
    ("task list", lambda t, g: admin_url("taskresult_changelist"), "view_taskresult"),
    ("task detail", lambda t, g: admin_url("taskresult_change", t.pk), "view_taskresult"),
    ("dashboard", lambda t, g: admin_url("dashboard"), "view_taskresult"),
    ("group list", lambda t, g: admin_url("groupresult_changelist"), "view_groupresult"),
    ("group detail", lambda t, g: admin_url("groupresult_change", g.pk), "view_groupresult"),
    ("job list", lambda t, g: admin_url("adminjob_changelist"), "view_taskresult"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
@pytest.mark.parametrize(("page", "url", "codename"), PAGES, ids=[p[0] for p in PAGES])
def test_viewing_needs_the_view_permission(
    rows: tuple[TaskResult, GroupResult],
    user: str,
    page: str,
    url: Callable[[TaskResult, GroupResult], str],
    codename: str,
) -> None:
    response = client_for(user).get(url(*rows))
    assert allowed(response) == has(user, codename), (page, user, response.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
def test_terminating_needs_the_terminate_permission(
    rows: tuple[TaskResult, GroupResult], user: str
) -> None:
    task, _ = rows
    client = client_for(user)
    with mock.patch(TERMINATE) as terminate:
        client.post(
            admin_url("taskresult_changelist"),
            {"action": "terminate_task", "_selected_action": [task.pk]},
        )
        confirm(client, "terminate_task", task)
    assert terminate.called == has(user, "terminate_taskresult"), user


def confirm(client: Client, action: str, task: TaskResult) -> None:
    """POST a confirmed preview (with a token of our own: the preview may be refused)."""
    client.post(
        admin_url("taskresult_changelist"),
        {
            "action": action,
            "index": "0",
            "select_across": "0",
            "_selected_action": [task.pk],
            "dcr_confirm": "f" * 32,
            "succeeded": "1",
        },
    )


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
def test_revoking_needs_the_revoke_permission(
    rows: tuple[TaskResult, GroupResult], user: str
) -> None:
    task, _ = rows
    with mock.patch(REVOKE) as revoke:
        confirm(client_for(user), "revoke_tasks", task)
    assert revoke.called == has(user, "revoke_taskresult"), user


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
def test_retrying_needs_the_retry_permission(
    rows: tuple[TaskResult, GroupResult], user: str
) -> None:
    task, _ = rows
    TaskResult.objects.filter(pk=task.pk).update(
        status="FAILURE",
        content_type="application/json",
        meta=json.dumps({"children": [], "stored_call": {"body": "[[], {}]",
                         "content_type": "application/json", "content_encoding": "utf-8",
                         "serializer": "json"}}),
    )  # fmt: skip
    with mock.patch(SEND_TASK) as send_task:
        confirm(client_for(user), "retry_tasks", task)
    assert send_task.called == has(user, "retry_taskresult"), user
    assert TaskResult.objects.filter(retry_of=task.task_id).exists() == send_task.called


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
def test_cancelling_a_job_needs_its_action_permission(user: str) -> None:
    job = AdminJob.objects.create(
        token="t" * 32, action="revoke", state="running", beat_at=timezone.now()
    )
    client_for(user).post(admin_url("adminjob_cancel", job.pk))
    job.refresh_from_db()
    assert (job.state == "cancelling") == has(user, "revoke_taskresult"), user


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
@pytest.mark.parametrize("model", ["taskresult", "groupresult"])
def test_deleting_needs_the_delete_permission(
    rows: tuple[TaskResult, GroupResult], user: str, model: str
) -> None:
    obj = rows[0] if model == "taskresult" else rows[1]
    client = client_for(user)
    client.post(admin_url(f"{model}_delete", obj.pk), {"post": "yes"})
    client.post(
        admin_url(f"{model}_changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    if isinstance(obj, TaskResult):
        confirm(client, "delete_tasks", obj)
    exists = type(obj).objects.filter(pk=obj.pk).exists()
    assert exists != has(user, f"delete_{model}"), user


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
def test_nobody_edits_or_adds_without_allow_edits(
    rows: tuple[TaskResult, GroupResult], user: str
) -> None:
    """Results are written by workers: no POST changes or adds a row, superusers included."""
    task, group = rows
    client = client_for(user)
    client.post(admin_url("taskresult_change", task.pk), {"task_id": task.task_id, "status": "X"})
    client.post(admin_url("taskresult_add"), {"task_id": "added", "status": "SUCCESS"})
    client.post(admin_url("groupresult_change", group.pk), {"group_id": "changed"})
    client.post(admin_url("groupresult_add"), {"group_id": "added"})
    assert TaskResult.objects.get(pk=task.pk).status == "STARTED"
    assert not TaskResult.objects.filter(task_id="added").exists()
    assert GroupResult.objects.get(pk=group.pk).group_id == "matrix-group"
    assert not GroupResult.objects.filter(group_id="added").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("user", list(USERS))
@pytest.mark.parametrize("method", ["get", "post"])
def test_the_dashboard_and_metrics_change_nothing(
    rows: tuple[TaskResult, GroupResult], user: str, method: str
) -> None:
    """The read-only pages answer GET (and POST, as Django does) and never write."""
    client = client_for(user)
    dashboard = getattr(client, method)(admin_url("dashboard"))
    assert allowed(dashboard) == has(user, "view_taskresult"), user
    metrics = getattr(client, method)("/metrics/")
    assert (metrics.status_code == 200) == has(user, "view_taskresult"), user
    assert TaskResult.objects.count() == 1
    assert GroupResult.objects.count() == 1
