"""The worker registry's admin: read-only, by the view permission, states by the DB's clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from django_celery_results.models import Worker
from django_celery_results.workers import registry
from django_celery_results.workers.registry import WorkerInfo

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)
LIST = "/admin/django_celery_results/worker/"


def test_the_list_shows_each_worker_s_state(admin_client: Client, db_alias: str) -> None:
    queue = {"queue": "q", "exchange": "", "type": "direct", "routing_key": "q"}
    info = WorkerInfo(
        "celery@a", "host-a", 7, "celery.concurrency.prefork.TaskPool", 4, (queue,), boot="a" * 32
    )
    registry.register(info, db_alias)
    registry.register(WorkerInfo("celery@b", "host-b", 8, boot="b" * 32), db_alias)
    Worker.objects.filter(hostname="celery@b").update(
        heartbeat_at=timezone.now() - timedelta(hours=2)
    )
    html = admin_client.get(LIST).content.decode()
    assert "celery@a" in html
    assert "prefork" in html
    assert ">live<" in html
    assert ">silent<" in html
    assert "Add worker" not in html


def test_nobody_adds_changes_or_deletes_a_worker(admin_client: Client, db_alias: str) -> None:
    registry.register(WorkerInfo("celery@a", "h", 1), db_alias)
    pk = Worker.objects.get().pk
    assert admin_client.get(f"{LIST}add/").status_code == 403
    assert admin_client.post(f"{LIST}{pk}/change/", {"hostname": "x"}).status_code == 403
    assert admin_client.post(f"{LIST}{pk}/delete/", {"post": "yes"}).status_code == 403
    assert Worker.objects.get().hostname == "celery@a"


def test_staff_need_the_view_permission(client: Client, db_alias: str) -> None:
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(LIST).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_worker"))
    assert client.get(LIST).status_code == 200


def test_a_worker_s_page_lists_its_running_and_finished_tasks(
    admin_client: Client, db_alias: str
) -> None:
    from django_celery_results.models import TaskResult

    registry.register(WorkerInfo("celery@a", "h", 1, boot="a" * 32), db_alias)
    TaskResult.objects.create(task_id="runs-here", status="STARTED", worker="celery@a")
    TaskResult.objects.create(task_id="no-extended", status="STARTED", lifeline="a" * 32)
    TaskResult.objects.create(task_id="done-here", status="SUCCESS", worker="celery@a")
    TaskResult.objects.create(task_id="elsewhere", status="STARTED", worker="celery@b")
    pk = Worker.objects.get().pk
    html = admin_client.get(f"{LIST}{pk}/change/").content.decode()
    running = html.split('id="dcr-worker-running"')[1].split("</fieldset>")[0]
    finished = html.split('id="dcr-worker-recent"')[1].split("</fieldset>")[0]
    assert 'data-task-id="runs-here"' in running
    assert 'data-task-id="no-extended"' in running  # its STARTED row named its life
    assert 'data-task-id="done-here"' in finished
    assert "elsewhere" not in html
