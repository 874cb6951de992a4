"""Tests of django_celery_results.views and .urls: JSON responses, routes, legacy URLs."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, uuid
from celery.exceptions import Retry
from django.core import checks
from django.test import Client
from django.test.utils import override_settings
from django.urls import NoReverseMatch, clear_url_caches, resolve, reverse

from django_celery_results import urls, views
from django_celery_results.models import TaskResult
from django_celery_results.urls import TaskPatternConverter

DEPRECATED = "ID first urls deprecated"
TRACEBACK = 'Traceback (most recent call last):\n  File "tasks.py", line 1\nValueError: boom\n'


@pytest.fixture
def backend(app: Celery) -> Any:
    return app.backend


def get_json(client: Client, name: str, object_id: str, status: int = 200) -> Any:
    response = client.get(reverse(name, args=[object_id]))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


@pytest.mark.django_db
class TestIsTaskSuccessful:
    def test_successful_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_done(task_id, 42)
        data = get_json(client, "celery-is_task_successful", task_id)
        assert data == {"task": {"id": task_id, "executed": True}}

    def test_failed_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_failure(task_id, ValueError("boom"), traceback=TRACEBACK)
        data = get_json(client, "celery-is_task_successful", task_id)
        assert data == {"task": {"id": task_id, "executed": False}}

    def test_missing_task(self, client: Client, app: Celery) -> None:
        data = get_json(client, "celery-is_task_successful", "no-such-task")
        assert data == {"task": {"id": "no-such-task", "executed": False}}

    def test_row_stored_through_the_manager(self, client: Client, app: Celery) -> None:
        TaskResult.objects.store_result("application/json", "utf-8", "by-manager", "7", "SUCCESS")
        data = get_json(client, "celery-is_task_successful", "by-manager")
        assert data == {"task": {"id": "by-manager", "executed": True}}


@pytest.mark.django_db
class TestTaskStatus:
    def test_successful_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_done(task_id, {"answer": 42})
        data = get_json(client, "celery-task_status", task_id)
        assert data == {"task": {"id": task_id, "status": "SUCCESS", "result": {"answer": 42}}}

    def test_started_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_started(task_id, pid=1234)
        data = get_json(client, "celery-task_status", task_id)
        assert data["task"]["status"] == "STARTED"
        assert data["task"]["result"] == {"pid": 1234}

    def test_custom_state(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.store_result(task_id, {"done": 3, "total": 10}, "PROGRESS")
        data = get_json(client, "celery-task_status", task_id)
        assert data == {
            "task": {"id": task_id, "status": "PROGRESS", "result": {"done": 3, "total": 10}}
        }

    def test_missing_task_is_pending(self, client: Client, app: Celery) -> None:
        data = get_json(client, "celery-task_status", "no-such-task")
        assert data == {"task": {"id": "no-such-task", "status": "PENDING", "result": None}}

    def test_failed_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_failure(task_id, ValueError("boom"), traceback=TRACEBACK)
        data = get_json(client, "celery-task_status", task_id)
        assert data == {
            "task": {
                "id": task_id,
                "status": "FAILURE",
                "result": "ValueError('boom')",
                "exc": "builtins.ValueError",
                "traceback": TRACEBACK,
            }
        }

    def test_revoked_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_revoked(task_id, reason="terminated")
        data = get_json(client, "celery-task_status", task_id)["task"]
        assert data["status"] == "REVOKED"
        assert data["exc"] == "celery.exceptions.TaskRevokedError"
        assert data["result"] == "TaskRevokedError('terminated')"
        assert "traceback" in data

    def test_retrying_task(self, client: Client, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_retry(task_id, Retry("again", when=10), traceback=TRACEBACK)
        data = get_json(client, "celery-task_status", task_id)["task"]
        assert data["status"] == "RETRY"
        assert data["exc"] == "celery.exceptions.Retry"
        assert data["traceback"] == TRACEBACK
        assert isinstance(data["result"], str)

    def test_view_called_directly(self, rf: Any, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_done(task_id, "ok")
        response = views.task_status(rf.get("/"), task_id)
        assert json.loads(response.content) == {
            "task": {"id": task_id, "status": "SUCCESS", "result": "ok"}
        }


def save_group(app: Celery, *task_ids: str) -> str:
    group_id: str = uuid()
    app.GroupResult(group_id, [app.AsyncResult(task_id) for task_id in task_ids]).save()
    return group_id


@pytest.mark.django_db
class TestIsGroupSuccessful:
    def test_group(self, client: Client, app: Celery, backend: Any) -> None:
        done, failed, pending = uuid(), uuid(), uuid()
        backend.mark_as_done(done, 1)
        backend.mark_as_failure(failed, KeyError("k"), traceback=TRACEBACK)
        group_id = save_group(app, done, failed, pending)
        data = get_json(client, "celery-is_group_successful", group_id)
        assert data == {
            "group": {
                "id": group_id,
                "results": [
                    {"id": done, "executed": True},
                    {"id": failed, "executed": False},
                    {"id": pending, "executed": False},
                ],
            }
        }

    def test_missing_group(self, client: Client, app: Celery) -> None:
        data = get_json(client, "celery-is_group_successful", "no-such-group")
        assert data == {"group": {"id": "no-such-group", "results": []}}


@pytest.mark.django_db
class TestGroupStatus:
    def test_group(self, client: Client, app: Celery, backend: Any) -> None:
        done, pending = uuid(), uuid()
        backend.mark_as_done(done, [1, 2])
        group_id = save_group(app, done, pending)
        data = get_json(client, "celery-group_status", group_id)
        assert data == {
            "group": {
                "id": group_id,
                "results": [
                    {"result": [1, 2], "status": "SUCCESS"},
                    {"result": None, "status": "PENDING"},
                ],
            }
        }

    def test_missing_group_is_a_json_404(self, client: Client, app: Celery) -> None:
        # Upstream raised AttributeError here, i.e. a 500 page.
        data = get_json(client, "celery-group_status", "no-such-group", status=404)
        assert data["group"] == {"id": "no-such-group", "results": []}
        assert "no-such-group" in data["error"]


class TestNounFirstUrls:
    @pytest.mark.parametrize(
        ("name", "path", "view"),
        [
            ("celery-is_task_successful", "/results/task/done/{}/", views.is_task_successful),
            ("celery-task_status", "/results/task/status/{}/", views.task_status),
            ("celery-is_group_successful", "/results/group/done/{}/", views.is_group_successful),
            ("celery-group_status", "/results/group/status/{}/", views.group_status),
        ],
        ids=["is_task_successful", "task_status", "is_group_successful", "group_status"],
    )
    @pytest.mark.parametrize(
        "object_id", ["abc", "3f2e-11ee.b1_x", "0b6e2c48-9a37-4d4e-8d2c-5f0f3b8c1a9e"]
    )
    def test_reverse_and_resolve(self, name: str, path: str, view: Any, object_id: str) -> None:
        url = reverse(name, args=[object_id])
        assert url == path.format(object_id)
        match = resolve(url)
        assert match.func is view
        assert match.url_name == name
        assert list(match.kwargs.values()) == [object_id]

    def test_id_with_a_slash_does_not_reverse(self) -> None:
        with pytest.raises(NoReverseMatch):
            reverse("celery-task_status", args=["a/b"])

    def test_no_id_first_urls_when_disabled(self) -> None:
        # tests/settings.py sets DJANGO_CELERY_RESULTS_ID_FIRST_URLS = False.
        assert len(urls.urlpatterns) == 4
        assert all(str(p.pattern).startswith(("task/", "group/")) for p in urls.urlpatterns)


class TestTaskPatternConverter:
    def test_regex(self) -> None:
        assert TaskPatternConverter.regex == r"[\w\d\-\.]+"

    def test_round_trip(self) -> None:
        converter = TaskPatternConverter()
        assert converter.to_python("abc-1.2") == "abc-1.2"
        assert converter.to_url("abc-1.2") == "abc-1.2"


@pytest.fixture
def reload_urls() -> Iterator[Any]:
    """Reload ``urls`` (settings are read at import); restore the test settings' form after."""

    def reload() -> Any:
        clear_url_caches()
        return importlib.reload(urls)

    try:
        yield reload
    finally:
        reload()
        clear_url_caches()
        assert len(urls.urlpatterns) == 4


class TestIdFirstUrls:
    LEGACY = [
        ("celery-is_task_successful", "/{}/done/", views.is_task_successful),
        ("celery-task_status", "/{}/status/", views.task_status),
        ("celery-is_group_successful", "/{}/group/done/", views.is_group_successful),
        ("celery-group_status", "/{}/group/status/", views.group_status),
    ]

    def test_enabled_adds_the_legacy_patterns(self, reload_urls: Any) -> None:
        with (
            override_settings(DJANGO_CELERY_RESULTS_ID_FIRST_URLS=True),
            pytest.warns(DeprecationWarning, match=DEPRECATED),
        ):
            module = reload_urls()
        assert len(module.urlpatterns) == 8
        for name, path, view in self.LEGACY:
            url = path.format("abc")
            # The legacy patterns come last under the same names, so they win in reverse().
            assert reverse(name, args=["abc"], urlconf=module) == url
            assert resolve(url, urlconf=module).func is view
        assert resolve("/task/status/abc/", urlconf=module).func is views.task_status
        assert resolve("/group/done/abc/", urlconf=module).func is views.is_group_successful

    def test_enabled_by_default(self, reload_urls: Any, settings: Any) -> None:
        del settings.DJANGO_CELERY_RESULTS_ID_FIRST_URLS
        with pytest.warns(DeprecationWarning, match=DEPRECATED):
            module = reload_urls()
        assert len(module.urlpatterns) == 8

    def test_disabled_does_not_warn(self, reload_urls: Any) -> None:
        # filterwarnings = error turns any warning into a failure here.
        module = reload_urls()
        assert len(module.urlpatterns) == 4
        assert reverse("celery-task_status", args=["abc"], urlconf=module) == "/task/status/abc/"

    @pytest.mark.django_db
    def test_legacy_url_serves_the_view(self, reload_urls: Any, backend: Any) -> None:
        task_id = uuid()
        backend.mark_as_done(task_id, 1)
        with (
            override_settings(DJANGO_CELERY_RESULTS_ID_FIRST_URLS=True),
            pytest.warns(DeprecationWarning, match=DEPRECATED),
        ):
            module = reload_urls()
        with override_settings(ROOT_URLCONF=module):
            response = Client().get(f"/{task_id}/status/")
        assert json.loads(response.content)["task"]["status"] == "SUCCESS"


# -- who reads results (RESULT_VIEWS_PERMISSION) ------------------------------------------


@pytest.mark.django_db
def test_anonymous_results_are_a_warning_until_closed(app: Celery, client: Client) -> None:
    def ids() -> set[str]:
        return {m.id or "" for m in checks.run_checks(tags=[checks.Tags.security])}

    assert "django_celery_results.W005" in ids()
    assert client.get("/results/task/status/some-id/").status_code == 200
    closed = {"RESULT_VIEWS_PERMISSION": "django_celery_results.view_taskresult"}
    with override_settings(DJANGO_CELERY_RESULTS=closed):
        assert "django_celery_results.W005" not in ids()
        for url in (
            "/results/task/status/some-id/",
            "/results/task/done/some-id/",
            "/results/group/status/some-id/",
            "/results/group/done/some-id/",
        ):
            response = client.get(url)
            assert response.status_code == 403, url
            assert "RESULT_VIEWS_PERMISSION" in response.json()["error"]


@pytest.mark.django_db
def test_the_permission_or_a_callable_opens_the_views(
    app: Celery, client: Client, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("reader", password="pw")
    client.force_login(user)
    closed = {"RESULT_VIEWS_PERMISSION": "django_celery_results.view_taskresult"}
    with override_settings(DJANGO_CELERY_RESULTS=closed):
        assert client.get("/results/task/status/x/").status_code == 403
        user.user_permissions.add(Permission.objects.get(codename="view_taskresult"))
        client.force_login(django_user_model.objects.get(pk=user.pk))
        assert client.get("/results/task/status/x/").status_code == 200
    by_header = {"RESULT_VIEWS_PERMISSION": lambda request: "HTTP_X_OK" in request.META}
    with override_settings(DJANGO_CELERY_RESULTS=by_header):
        assert client.get("/results/task/status/x/").status_code == 403
        assert client.get("/results/task/status/x/", HTTP_X_OK="1").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rule", ["view_taskresult", "django_celery_results.view_taskresult.x", 42, lambda r: 1 / 0]
)
def test_a_mistaken_permission_closes_the_views(app: Celery, client: Client, rule: Any) -> None:
    """A mistake in who may read results fails closed (403), never open."""
    with override_settings(DJANGO_CELERY_RESULTS={"RESULT_VIEWS_PERMISSION": rule}):
        assert client.get("/results/task/status/x/").status_code == 403
