"""Tests of django_celery_results.admin: pages, read-only fields, actions, translations."""

from __future__ import annotations

import ast
import gettext
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin import AdminSite
from django.db import models
from django.test import Client, RequestFactory, override_settings
from django.test.utils import isolate_apps
from django.urls import reverse
from django.utils import timezone, translation

import django_celery_results
from django_celery_results import admin as results_admin
from django_celery_results.admin import (
    COMPUTED,
    TIMELINE,
    GroupResultAdmin,
    TaskResultAdmin,
    filters,
    paging,
)
from django_celery_results.models import AdminJob, ChordCounter, GroupResult, TaskResult

from . import operating

TERMINATE = "django_celery_results.admin.celery_app.control.terminate"
LANGUAGES = ["es", "pt_BR", "ru", "zh_Hans"]
LOCALE_DIR = Path(django_celery_results.__file__).parent / "locale"


def changelist_url(model: type[models.Model]) -> str:
    return reverse(f"admin:django_celery_results_{model._meta.model_name}_changelist")


def change_url(obj: models.Model) -> str:
    return reverse(f"admin:django_celery_results_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def task_result() -> TaskResult:
    return TaskResult.objects.create(
        task_id="7b6f6a1e-1d2c-4e0b-9a55-000000000001",
        task_name="proj.tasks.add",
        periodic_task_name="every-minute",
        task_args="[2, 2]",
        task_kwargs="{}",
        status="SUCCESS",
        worker="celery@worker1",
        content_type="application/json",
        content_encoding="utf-8",
        result="4",
        meta='{"children": []}',
    )


@pytest.fixture
def other_task_result() -> TaskResult:
    return TaskResult.objects.create(
        task_id="7b6f6a1e-1d2c-4e0b-9a55-000000000002",
        task_name="proj.tasks.mul",
        status="FAILURE",
        content_type="application/json",
        content_encoding="utf-8",
        result='{"exc_type": "ValueError", "exc_message": ["boom"]}',
        traceback="Traceback (most recent call last): ...",
    )


@pytest.fixture
def group_result() -> GroupResult:
    return GroupResult.objects.create(
        group_id="5d7e1f1a-0000-4000-8000-00000000000a",
        content_type="application/json",
        content_encoding="utf-8",
        result='[["5d7e1f1a-0000-4000-8000-00000000000a", null], []]',
    )


@pytest.fixture
def allow_edits() -> Iterator[None]:
    """Turn ``ALLOW_EDITS`` on, as ``DJANGO_CELERY_RESULTS = {"ALLOW_EDITS": True}`` does."""
    with mock.patch.object(results_admin, "ALLOW_EDITS", True):
        yield


class TestConfiguration:
    def test_both_admins_are_registered(self) -> None:
        assert isinstance(admin.site.get_model_admin(TaskResult), TaskResultAdmin)
        assert isinstance(admin.site.get_model_admin(GroupResult), GroupResultAdmin)
        assert not admin.site.is_registered(ChordCounter)

    def test_allow_edits_defaults_to_false(self) -> None:
        assert results_admin.ALLOW_EDITS is False

    def test_celery_app_is_the_current_app(self) -> None:
        from celery import current_app

        assert results_admin.celery_app is current_app

    def test_task_result_admin_options(self) -> None:
        model_admin = TaskResultAdmin(model=TaskResult, admin_site=admin.site)
        # No date_hierarchy: its date aggregate reads the whole table on every view.
        assert model_admin.date_hierarchy is None
        assert list(model_admin.list_display) == [
            "task",
            "name",
            "state",
            "exception",
            "done",
            "worker_name",
            "times",
        ]
        assert list(model_admin.list_filter) == [
            filters.StatusFilter,
            "date_done",
            filters.TaskNameFilter,
            filters.PeriodicTaskNameFilter,
            filters.WorkerFilter,
            filters.QueueFilter,
            filters.ExceptionTypeFilter,
        ]
        assert list(model_admin.search_fields) == [
            "task_id",
            "task_name",
            "periodic_task_name",
            "worker",
            "exception_type",
        ]
        assert list(model_admin.readonly_fields) == [
            "date_created",
            "date_started",
            "date_done",
            "waiting_time",
            "processing_time",
            "total_time",
            "expires",
            "result",
            "meta",
        ]
        assert model_admin.show_full_result_count is False
        assert model_admin.paginator is paging.ResultPaginator
        assert model_admin.show_facets is admin.ShowFacets.NEVER
        assert list(model_admin.sortable_by or ()) == ["task", "done"]

    def test_task_result_fieldsets(self) -> None:
        fieldsets = TaskResultAdmin.fieldsets
        assert fieldsets is not None
        assert [str(name) if name else name for name, _ in fieldsets] == [
            None,
            "Parameters",
            "Result",
        ]
        assert [list(options["fields"]) for _, options in fieldsets] == [
            [
                "task_id",
                "task_name",
                "periodic_task_name",
                "status",
                "worker",
                "queue",
                "retries",
                "content_type",
                "content_encoding",
            ],
            ["task_args", "task_kwargs"],
            [
                "result",
                "date_created",
                "date_started",
                "date_done",
                "waiting_time",
                "processing_time",
                "total_time",
                "expires",
                "traceback",
                "meta",
            ],
        ]
        for _, options in fieldsets:
            assert list(options["classes"]) == ["extrapretty", "wide"]

    def test_group_result_admin_options(self) -> None:
        model_admin = GroupResultAdmin(model=GroupResult, admin_site=admin.site)
        assert model_admin.date_hierarchy is None
        assert list(model_admin.list_display) == ["group_id", "done"]
        assert list(model_admin.list_filter) == ["date_done"]
        assert list(model_admin.readonly_fields) == ["created", "done", "result"]
        assert list(model_admin.search_fields) == ["group_id"]
        assert model_admin.show_full_result_count is False

    def test_terminate_action_is_offered(self) -> None:
        model_admin = TaskResultAdmin(model=TaskResult, admin_site=admin.site)
        assert "terminate_task" in model_admin.actions
        assert str(TaskResultAdmin.terminate_task.short_description) == (  # type: ignore[attr-defined]
            "Terminate selected tasks"
        )


@pytest.mark.django_db
class TestTaskResultPages:
    def test_changelist_renders(
        self, admin_client: Client, task_result: TaskResult, other_task_result: TaskResult
    ) -> None:
        response = admin_client.get(changelist_url(TaskResult))
        assert response.status_code == 200
        content = response.content.decode()
        assert task_result.task_id in content
        assert other_task_result.task_id in content
        assert "Terminate selected tasks" in content

    def test_changelist_skips_the_full_count(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        response = admin_client.get(changelist_url(TaskResult), {"q": task_result.task_id})
        changelist = response.context["cl"]
        assert changelist.show_full_result_count is False
        assert changelist.full_result_count is None

    def test_search_by_task_id(
        self, admin_client: Client, task_result: TaskResult, other_task_result: TaskResult
    ) -> None:
        response = admin_client.get(changelist_url(TaskResult), {"q": other_task_result.task_id})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == [other_task_result]

    def test_search_by_task_name_prefix(
        self, admin_client: Client, task_result: TaskResult, other_task_result: TaskResult
    ) -> None:
        response = admin_client.get(changelist_url(TaskResult), {"q": "proj.tasks.ad"})
        assert list(response.context["cl"].result_list) == [task_result]
        # Not a prefix: no match (a substring search would scan the table).
        response = admin_client.get(changelist_url(TaskResult), {"q": "tasks.add"})
        assert list(response.context["cl"].result_list) == []

    def test_filter_by_status(
        self, admin_client: Client, task_result: TaskResult, other_task_result: TaskResult
    ) -> None:
        response = admin_client.get(changelist_url(TaskResult), {"status__exact": "FAILURE"})
        assert list(response.context["cl"].result_list) == [other_task_result]

    def test_change_page_is_read_only_by_default(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        response = admin_client.get(change_url(task_result))
        assert response.status_code == 200
        content = response.content.decode()
        assert task_result.task_id in content
        assert 'name="task_id"' not in content
        assert 'name="status"' not in content
        assert response.context["adminform"].form.fields == {}

    def test_posting_changes_nothing_by_default(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        response = admin_client.post(change_url(task_result), {"status": "REVOKED"})
        assert response.status_code == 403
        task_result.refresh_from_db()
        assert task_result.status == "SUCCESS"

    @pytest.mark.usefixtures("allow_edits")
    def test_change_page_is_editable_with_allow_edits(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        response = admin_client.get(change_url(task_result))
        assert response.status_code == 200
        content = response.content.decode()
        assert 'name="task_id"' in content
        assert 'name="task_args"' in content
        assert 'name="result"' not in content  # editable=False and read-only

    @pytest.mark.usefixtures("allow_edits")
    def test_posting_saves_with_allow_edits(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        data = {
            "task_id": task_result.task_id,
            "task_name": task_result.task_name,
            "periodic_task_name": task_result.periodic_task_name,
            "status": "REVOKED",
            "worker": task_result.worker,
            "content_type": task_result.content_type,
            "content_encoding": task_result.content_encoding,
            "task_args": task_result.task_args,
            "task_kwargs": task_result.task_kwargs,
            "traceback": "",
        }
        response = admin_client.post(change_url(task_result), data)
        assert response.status_code == 302, response.context["adminform"].form.errors
        task_result.refresh_from_db()
        assert task_result.status == "REVOKED"
        assert task_result.result == "4"

    @pytest.mark.usefixtures("allow_edits")
    def test_add_page_renders_with_allow_edits(self, admin_client: Client) -> None:
        response = admin_client.get(reverse("admin:django_celery_results_taskresult_add"))
        assert response.status_code == 200
        assert 'name="task_id"' in response.content.decode()


@pytest.mark.django_db
class TestExpiresColumn:
    """Which retention rule will expire a row, on the list and the detail page."""

    @pytest.fixture
    def model_admin(self) -> TaskResultAdmin:
        return TaskResultAdmin(model=TaskResult, admin_site=admin.site)

    def test_result_expires_decides_without_rules(
        self, model_admin: TaskResultAdmin, task_result: TaskResult
    ) -> None:
        # The current app's result_expires: Celery's default of one day.
        assert model_admin.expires(task_result).startswith("in 23\xa0hours")
        assert model_admin.expires(task_result).endswith("(result_expires)")

    def test_the_first_matching_rule_names_itself(
        self, model_admin: TaskResultAdmin, task_result: TaskResult
    ) -> None:
        rules = [
            {"task_name": "proj.tasks.*", "keep": None, "name": "keep tasks"},
            {"status": "SUCCESS", "keep": 60},
        ]
        with override_settings(DJANGO_CELERY_RESULTS={"RETENTION": rules}):
            assert model_admin.expires(task_result) == "never (keep tasks)"
        with override_settings(DJANGO_CELERY_RESULTS={"RETENTION": rules[1:]}):
            TaskResult.objects.filter(pk=task_result.pk).update(
                date_done=timezone.now() - timedelta(minutes=5)
            )
            task_result.refresh_from_db()
            assert model_admin.expires(task_result) == "at the next cleanup (rule 1)"

    def test_shown_on_the_detail_page(self, admin_client: Client, task_result: TaskResult) -> None:
        detail = admin_client.get(change_url(task_result)).content.decode()
        assert "Expires" in detail
        assert "(result_expires)" in detail


class TestGroupResultPages:
    def test_changelist_renders(self, admin_client: Client, group_result: GroupResult) -> None:
        response = admin_client.get(changelist_url(GroupResult))
        assert response.status_code == 200
        assert group_result.group_id in response.content.decode()

    def test_search_by_group_id(self, admin_client: Client, group_result: GroupResult) -> None:
        GroupResult.objects.create(group_id="another-group", content_type="", content_encoding="")
        response = admin_client.get(changelist_url(GroupResult), {"q": group_result.group_id})
        assert list(response.context["cl"].result_list) == [group_result]

    def test_the_group_page_is_read_only(
        self, admin_client: Client, group_result: GroupResult
    ) -> None:
        """Like a task's: no field to edit, no save button, no "Add group result"."""
        response = admin_client.get(change_url(group_result))
        assert response.status_code == 200
        assert set(response.context["adminform"].form.fields) == set()
        html = response.content.decode()
        assert 'name="_save"' not in html
        listing = admin_client.get(changelist_url(GroupResult)).content.decode()
        assert "Add group result" not in listing

    def test_with_allow_edits_a_group_is_editable(
        self, admin_client: Client, group_result: GroupResult, allow_edits: None
    ) -> None:
        response = admin_client.get(change_url(group_result))
        assert set(response.context["adminform"].form.fields) == {
            "group_id",
            "content_type",
            "content_encoding",
        }

    def test_the_group_page_lists_its_members_and_progress(self, admin_client: Client) -> None:
        ids = [f"5d7e1f1a-0000-4000-8000-00000000010{n}" for n in range(4)]
        nodes = ", ".join(f'[["{task_id}", null], null]' for task_id in ids)
        group = GroupResult.objects.create(
            group_id="grp", content_type="application/json", content_encoding="utf-8",
            result=f'[["grp", null], [{nodes}]]',
        )  # fmt: skip
        for task_id, state in zip(ids, ["SUCCESS", "FAILURE", "STARTED"], strict=False):
            TaskResult.objects.create(task_id=task_id, status=state, task_name="proj.add")
        html = admin_client.get(change_url(group)).content.decode()
        assert "2 of 4 done, 1 failed" in html
        members = html.split('id="dcr-group-members"')[1]
        for task_id in ids:
            assert f'data-task-id="{task_id}"' in members
        assert members.count("/admin/django_celery_results/taskresult/") == 3  # one has no row
        assert 'data-state="FAILURE"' in members


class TestReadonlyFields:
    @pytest.fixture
    def model_admin(self) -> TaskResultAdmin:
        return TaskResultAdmin(model=TaskResult, admin_site=admin.site)

    def test_every_field_without_allow_edits(
        self, model_admin: TaskResultAdmin, rf: RequestFactory
    ) -> None:
        fields = model_admin.get_readonly_fields(rf.get("/"))
        assert sorted(fields) == sorted(
            [field.name for field in TaskResult._meta.fields] + list(TIMELINE + COMPUTED)
        )
        assert "task_id" in fields
        assert "id" in fields

    @pytest.mark.usefixtures("allow_edits")
    def test_only_readonly_fields_with_allow_edits(
        self, model_admin: TaskResultAdmin, rf: RequestFactory
    ) -> None:
        assert model_admin.get_readonly_fields(rf.get("/")) == model_admin.readonly_fields


@pytest.fixture
def proxy_admin() -> Iterator[TaskResultAdmin]:
    """TaskResultAdmin serving a proxy of TaskResult registered at run time (upstream #489).

    The proxy lives in an isolated app registry, so it never shows up in the migration
    autodetector of other tests.
    """
    with isolate_apps("django_celery_results"):

        class TaskResultProxy(TaskResult):
            class Meta:
                proxy = True
                app_label = "django_celery_results"

        site = AdminSite(name="proxy-admin")
        site.register(TaskResultProxy, TaskResultAdmin)
        try:
            yield site.get_model_admin(TaskResultProxy)  # type: ignore[misc]
        finally:
            site.unregister(TaskResultProxy)
    assert "taskresultproxy" not in apps.all_models["django_celery_results"]


class TestProxyModelReadonlyFields:
    def test_proxy_has_no_local_fields(self, proxy_admin: TaskResultAdmin) -> None:
        # Why upstream 2.6.0's opts.local_fields returned nothing for a proxy.
        assert proxy_admin.model._meta.local_fields == []

    def test_every_field_without_allow_edits(
        self, proxy_admin: TaskResultAdmin, rf: RequestFactory
    ) -> None:
        fields = proxy_admin.get_readonly_fields(rf.get("/"))
        assert sorted(fields) == sorted(
            [field.name for field in TaskResult._meta.fields] + list(TIMELINE + COMPUTED)
        )

    @pytest.mark.usefixtures("allow_edits")
    def test_only_readonly_fields_with_allow_edits(
        self, proxy_admin: TaskResultAdmin, rf: RequestFactory
    ) -> None:
        assert proxy_admin.get_readonly_fields(rf.get("/")) == TaskResultAdmin.readonly_fields


@pytest.mark.django_db
class TestTerminateAction:
    def test_the_list_previews_before_terminating(
        self, admin_client: Client, task_result: TaskResult, other_task_result: TaskResult
    ) -> None:
        task_result.status = "STARTED"
        task_result.save()
        with mock.patch(TERMINATE) as terminate:
            page = operating.preview(
                admin_client, "terminate_task", [task_result.pk, other_task_result.pk]
            )
        terminate.assert_not_called()
        html = page.content.decode()
        assert "Task results that match: 2." in html
        assert 'name="signal"' in html

    def test_terminates_the_selected_running_tasks_with_the_chosen_signal(
        self, admin_client: Client, task_result: TaskResult, other_task_result: TaskResult
    ) -> None:
        TaskResult.objects.filter(pk=task_result.pk).update(status="STARTED")
        with mock.patch(TERMINATE) as terminate:
            response = operating.confirm(
                admin_client,
                "terminate_task",
                [task_result.pk, other_task_result.pk],
                signal="SIGKILL",
            )
        # The other task had finished: it is skipped, not signalled.
        terminate.assert_called_once_with([task_result.task_id], signal="SIGKILL")
        job = AdminJob.objects.get()
        assert (job.state, job.total, job.done, job.skipped) == ("done", 2, 1, 1)
        assert response.redirect_chain[-1][0].endswith(f"/adminjob/{job.pk}/change/")

    def test_an_unknown_signal_is_sigterm(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        TaskResult.objects.filter(pk=task_result.pk).update(status="STARTED")
        with mock.patch(TERMINATE) as terminate:
            operating.confirm(admin_client, "terminate_task", [task_result.pk], signal="SIGNUKE")
        terminate.assert_called_once_with([task_result.task_id], signal="SIGTERM")

    def test_a_broker_error_fails_the_rows_and_is_logged(
        self,
        admin_client: Client,
        task_result: TaskResult,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        TaskResult.objects.filter(pk=task_result.pk).update(status="STARTED")
        with (
            mock.patch(TERMINATE, side_effect=ConnectionError("broker unreachable")),
            caplog.at_level(logging.ERROR),
        ):
            response = operating.confirm(admin_client, "terminate_task", [task_result.pk])
        job = AdminJob.objects.get()
        assert (job.done, job.failed) == (0, 1)
        assert "broker unreachable" in caplog.text
        assert "1 failed" in response.content.decode()
        assert TaskResult.objects.filter(pk=task_result.pk).exists()

    def test_direct_call(self, task_result: TaskResult, rf: RequestFactory) -> None:
        # Upstream's tests call the action on a bare TaskResultAdmin.
        model_admin = TaskResultAdmin(model=TaskResult, admin_site=admin.site)
        request = rf.post("/")
        with (
            mock.patch(TERMINATE) as terminate,
            mock.patch.object(model_admin, "message_user") as message_user,
        ):
            model_admin.terminate_task(request, TaskResult.objects.all())
        terminate.assert_called_once_with([task_result.task_id])
        message_user.assert_called_once_with(
            request, "1 task(s) was terminated successfully.", messages.SUCCESS
        )

    def test_direct_call_error_is_shown(self, task_result: TaskResult, rf: RequestFactory) -> None:
        model_admin = TaskResultAdmin(model=TaskResult, admin_site=admin.site)
        request = rf.post("/")
        with (
            mock.patch(TERMINATE, side_effect=ConnectionError("broker unreachable")),
            mock.patch.object(model_admin, "message_user") as message_user,
        ):
            model_admin.terminate_task(request, TaskResult.objects.all())
        message_user.assert_called_once_with(
            request, "Error while terminating tasks: broker unreachable", messages.ERROR
        )


def translatable_strings() -> set[str]:
    """Every string our models, app config and admin give to gettext."""
    strings = {str(apps.get_app_config("django_celery_results").verbose_name)}
    with translation.override(None):
        for model in (TaskResult, GroupResult, ChordCounter):
            opts = model._meta
            if model is not ChordCounter:
                strings |= {str(opts.verbose_name), str(opts.verbose_name_plural)}
            for field in opts.local_fields:
                if field.name == "id":
                    continue
                if model is not ChordCounter or field.name == "group_id":
                    strings.add(str(field.verbose_name))
                strings.add(str(field.help_text))
        fieldsets = TaskResultAdmin.fieldsets or ()
        strings |= {str(name) for name, _ in fieldsets if name}
    return strings | {
        "Terminate selected tasks",
        "Error while terminating tasks: %(error)s",
        "%(count)d task(s) was terminated successfully.",
    }


def po_messages(path: Path) -> dict[str, str]:
    """Return the msgid -> msgstr pairs of a .po file (header excluded)."""
    entries: dict[str, str] = {}
    key, parts = "", list[str]()
    msgid = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith(("msgid ", "msgstr ")):
            if key == "msgid":
                msgid = "".join(ast.literal_eval(part) for part in parts)
            key, _, first = line.partition(" ")
            parts = [first]
        elif line.startswith('"'):
            parts.append(line)
        elif key == "msgstr":
            if msgid:
                entries[msgid] = "".join(ast.literal_eval(part) for part in parts)
            key, parts = "", []
    return entries


PACKAGE = Path(django_celery_results.__file__).parent
#: Strings in our sources: ``_("…")``/``gettext("…")`` and the templates' translate tags.
PYTHON_STRING = re.compile(r'\b(?:_|gettext|gettext_lazy)\(\s*"((?:[^"\\]|\\.)*)"\s*\)')
TEMPLATE_STRING = re.compile(r'{% translate "([^"]+)" %}|{% translate \'([^\']+)\' %}')
BLOCK_STRING = re.compile(r"{% blocktranslate[^%]*%}(.*?){% endblocktranslate %}", re.S)


def source_strings() -> set[str]:
    """Every translatable string of the admin package, the report and the templates."""
    found: set[str] = set()
    for path in [*(PACKAGE / "admin").glob("*.py"), PACKAGE / "report.py"]:
        found |= {ast.literal_eval(f'"{s}"') for s in PYTHON_STRING.findall(path.read_text())}
    for path in (PACKAGE / "templates").rglob("*.html"):
        text = path.read_text()
        found |= {a or b for a, b in TEMPLATE_STRING.findall(text)}
        for block in BLOCK_STRING.findall(text):
            found.add(re.sub(r"{{ (\w+) }}", r"%(\1)s", block))
    return found


class TestTranslations:
    def test_the_sources_have_strings(self) -> None:
        assert {"Task results dashboard", "about %(count)s %(name)s"} <= source_strings()

    @pytest.mark.parametrize("language", LANGUAGES)
    def test_every_string_of_the_pages_is_translated(self, language: str) -> None:
        mo = LOCALE_DIR / language / "LC_MESSAGES" / "django.mo"
        with mo.open("rb") as fp:
            catalog = gettext.GNUTranslations(fp)._catalog  # type: ignore[attr-defined]
        missing = {s for s in source_strings() if not catalog.get(s)}
        assert not missing, f"{language}: untranslated or stale .mo: {sorted(missing)}"

    def test_the_dashboard_speaks_spanish(self, admin_client: Client) -> None:
        with translation.override("es"):
            html = admin_client.get(
                reverse("admin:django_celery_results_dashboard"),
                headers={"Accept-Language": "es"},
            ).content.decode()
        assert "Panel de resultados de tareas" in html

    @pytest.mark.parametrize("language", LANGUAGES)
    def test_catalog_translates_every_string(self, language: str) -> None:
        mo = LOCALE_DIR / language / "LC_MESSAGES" / "django.mo"
        with mo.open("rb") as fp:
            catalog = gettext.GNUTranslations(fp)._catalog  # type: ignore[attr-defined]
        missing = {s for s in translatable_strings() if not catalog.get(s)}
        assert not missing, f"{language}: untranslated or stale .mo: {sorted(missing)}"

    @pytest.mark.parametrize("language", LANGUAGES)
    def test_mo_is_compiled_from_po(self, language: str) -> None:
        folder = LOCALE_DIR / language / "LC_MESSAGES"
        with (folder / "django.mo").open("rb") as fp:
            compiled = gettext.GNUTranslations(fp)._catalog  # type: ignore[attr-defined]
        po = po_messages(folder / "django.po")
        assert len(po) >= len(translatable_strings())
        assert {msgid: compiled.get(msgid) for msgid in po} == po

    @pytest.mark.parametrize(
        ("language", "expected"),
        [
            ("es", "resultado de la tarea"),
            ("pt-br", "resultado da tarefa"),
            ("ru", "результат задачи"),
            ("zh-hans", "任务结果"),
        ],
    )
    def test_verbose_name_is_translated(self, language: str, expected: str) -> None:
        with translation.override(language):
            assert str(TaskResult._meta.verbose_name) == expected

    def test_admin_strings_are_translated(self) -> None:
        with translation.override("es"):
            assert str(apps.get_app_config("django_celery_results").verbose_name) == (
                "Resultados Celery"
            )
            assert str(TaskResultAdmin.terminate_task.short_description) == (  # type: ignore[attr-defined]
                "Terminar las tareas seleccionadas"
            )
            assert [str(name) for name, _ in TaskResultAdmin.fieldsets or () if name] == [
                "Parámetros",
                "Resultado",
            ]

    @pytest.mark.django_db
    def test_terminate_message_is_translated(
        self, task_result: TaskResult, rf: RequestFactory
    ) -> None:
        model_admin = TaskResultAdmin(model=TaskResult, admin_site=admin.site)
        with (
            translation.override("ru"),
            mock.patch(TERMINATE),
            mock.patch.object(model_admin, "message_user") as message_user,
        ):
            model_admin.terminate_task(rf.post("/"), TaskResult.objects.all())
        assert message_user.call_args.args[1] == "Завершено задач: 1."


@pytest.mark.django_db
class TestReadOnlyDetailPage:
    """Without ALLOW_EDITS: nothing to save, values decoded, the timeline spelled out."""

    def test_no_add_or_save_buttons(self, admin_client: Client, task_result: TaskResult) -> None:
        detail = admin_client.get(change_url(task_result)).content.decode()
        listing = admin_client.get(changelist_url(TaskResult)).content.decode()
        assert 'name="_save"' not in detail
        assert 'name="_addanother"' not in detail
        assert 'name="_continue"' not in detail
        assert "Add task result" not in listing
        add = admin_client.get(reverse("admin:django_celery_results_taskresult_add"))
        assert add.status_code == 403

    @pytest.mark.usefixtures("allow_edits")
    def test_allow_edits_brings_the_buttons_back(
        self, admin_client: Client, task_result: TaskResult
    ) -> None:
        assert 'name="_save"' in admin_client.get(change_url(task_result)).content.decode()

    def test_values_are_decoded(self, admin_client: Client, task_result: TaskResult) -> None:
        TaskResult.objects.filter(pk=task_result.pk).update(
            task_args='"(0, 10)"', result='{"total": 10, "parts": [1, 2]}'
        )
        html = admin_client.get(change_url(task_result)).content.decode()
        assert '<pre class="dcr-pre">(0, 10)</pre>' in html
        assert "&quot;parts&quot;: [\n    1,\n    2\n  ]" in html
        assert "&quot;children&quot;: []" in html  # the meta

    def test_the_timeline_and_the_traceback(
        self, admin_client: Client, other_task_result: TaskResult
    ) -> None:
        started = other_task_result.date_done - timedelta(seconds=1.5)
        created = started - timedelta(milliseconds=967)
        TaskResult.objects.filter(pk=other_task_result.pk).update(
            date_started=started, date_created=created
        )
        html = admin_client.get(change_url(other_task_result)).content.decode()
        assert 'class="dcr-timeline"' in html
        assert "waiting <b>967 ms</b>" in html
        assert "processing <b>1.5 s</b>" in html
        assert '<pre class="dcr-pre">Traceback (most recent call last): ...</pre>' in html

    def test_the_list_is_compact(self, admin_client: Client, task_result: TaskResult) -> None:
        html = admin_client.get(changelist_url(TaskResult)).content.decode()
        assert f'title="{task_result.task_id}">7b6f6a1e…<' in html
        assert 'dcr-state-success">SUCCESS<' in html
        # Today's rows show the time of day; the whole timestamp is on hover.
        assert f">{timezone.localtime(task_result.date_done):%H:%M:%S}<" in html
        assert "proj.<wbr>tasks.<wbr>add" in html
        assert '<small class="dcr-second">every-minute</small>' in html


@pytest.mark.django_db
class TestTaskSummary:
    """The top of a task's page: what happened, how long it took, what it links to."""

    def test_a_failure_shows_its_exception_times_children_and_worker(
        self, admin_client: Client
    ) -> None:
        from datetime import timedelta

        from django.utils import timezone

        from django_celery_results.models import Worker
        from django_celery_results.workers import registry
        from django_celery_results.workers.registry import WorkerInfo

        registry.register(WorkerInfo("celery@w1", "h", 1), "default")
        child = TaskResult.objects.create(task_id="child-1", status="SUCCESS")
        done = timezone.now()
        failed = TaskResult.objects.create(
            task_id="parent-1", task_name="proj.charge", status="FAILURE", worker="celery@w1",
            content_type="application/json", content_encoding="utf-8",
            result=json.dumps({"exc_type": "ValueError", "exc_message": ["no card"]}),
            exception_type="ValueError", meta='{"children": [[["child-1", null], null]]}',
            date_created=done - timedelta(seconds=5), date_started=done - timedelta(seconds=2),
        )  # fmt: skip
        html = admin_client.get(change_url(failed)).content.decode()
        top = html.split('id="dcr-task-summary"')[1].split("</div>")[0]
        assert "ValueError</b>: no card" in top
        assert "Waited" in top
        assert change_url(child) in top
        worker = Worker.objects.get(hostname="celery@w1")
        assert reverse("admin:django_celery_results_worker_change", args=[worker.pk]) in top
        assert "<h2>proj.charge parent-1</h2>" in html  # the heading, not <Task: …>

    def test_a_running_task_runs_for_a_while(self, admin_client: Client) -> None:
        from datetime import timedelta

        from django.utils import timezone

        running = TaskResult.objects.create(
            task_id="running-1", task_name="proj.slow", status="STARTED",
            date_started=timezone.now() - timedelta(minutes=4, seconds=50),
        )  # fmt: skip
        html = admin_client.get(change_url(running)).content.decode()
        assert "Running for 4 min 50 s" in html

    def test_an_unreadable_result_still_shows_the_page(self, admin_client: Client) -> None:
        broken = TaskResult.objects.create(
            task_id="broken-1", status="FAILURE", content_type="application/json",
            result="{not json", meta="[1, 2",
        )  # fmt: skip
        response = admin_client.get(change_url(broken))
        assert response.status_code == 200
        assert 'id="dcr-task-summary"' in response.content.decode()


@pytest.mark.django_db
class TestOperatingPages:
    """The detail page's buttons and links, the list's columns and counts, the job's page."""

    def test_buttons_follow_permissions_and_say_why_not(self, client: Client) -> None:
        from django.contrib.auth.models import Permission, User

        user = User.objects.create_user("op", password="pw", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(codename__in=["view_taskresult", "retry_taskresult"])
        )
        client.force_login(user)
        done = TaskResult.objects.create(task_id="b-1", status="SUCCESS", task_name="t")
        html = client.get(change_url(done)).content.decode()
        assert 'id="dcr-retry_tasks"' in html
        assert "no call was stored for it" in html  # greyed, with why
        assert 'id="dcr-revoke_tasks"' not in html  # no permission: no button
        # The buttons' form is outside the read-only change form (forms don't nest).
        assert html.index('id="dcr-actions"') < html.index('id="taskresult_form"')

    def test_group_parent_and_retry_links(self, admin_client: Client) -> None:
        group = GroupResult.objects.create(group_id="g-1", result="[]")
        parent = TaskResult.objects.create(task_id="p-1", status="SUCCESS")
        first = TaskResult.objects.create(
            task_id="r-0", status="FAILURE", content_type="application/json",
            meta=json.dumps({"children": [], "group_id": "g-1", "parent_id": "p-1"}),
        )  # fmt: skip
        retry = TaskResult.objects.create(task_id="r-1", status="PENDING", retry_of="r-0")
        html = admin_client.get(change_url(first)).content.decode()
        assert change_url(group) in html.split('id="dcr-family"')[1].split("</p>")[0]
        assert change_url(parent) in html.split('id="dcr-family"')[1].split("</p>")[0]
        assert change_url(retry) in html.split('id="dcr-retries"')[1].split("</p>")[0]
        back = admin_client.get(change_url(retry)).content.decode()
        assert change_url(first) in back.split('id="dcr-retry-of"')[1].split("</p>")[0]

    def test_the_list_shows_the_exception_and_labels_its_counts(
        self, admin_client: Client
    ) -> None:
        TaskResult.objects.create(
            task_id="e-1", status="FAILURE", exception_type="billing.errors.CardDeclined"
        )
        html = admin_client.get(changelist_url(TaskResult), {"q": "e-1"}).content.decode()
        assert '<span title="billing.errors.CardDeclined">CardDeclined</span>' in html
        assert "results: 1" in html
        assert "clear the search" in html
        assert "Show all" not in html
        assert "times in UTC" in html

    def test_the_job_page_shows_progress_and_cancel(self, admin_client: Client) -> None:
        job = AdminJob.objects.create(
            token="j" * 32, action="retry", state="running", total=10, done=4, skipped=1,
            beat_at=timezone.now(),
            skipped_why=json.dumps({"no-call": 1}),
        )  # fmt: skip
        html = admin_client.get(
            reverse("admin:django_celery_results_adminjob_change", args=[job.pk])
        ).content.decode()
        assert "4 done, 1 skipped, 0 failed of 10" in html
        assert "no call was stored for it (STORE_CALLS): 1" in html
        assert 'id="dcr-cancel"' in html
        assert 'http-equiv="refresh"' in html
        admin_client.post(reverse("admin:django_celery_results_adminjob_cancel", args=[job.pk]))
        job.refresh_from_db()
        assert job.state == "cancelling"


@pytest.mark.django_db
def test_a_stored_call_is_not_shown_to_viewers(admin_client: Client) -> None:
    row = TaskResult.objects.create(
        task_id="c-1", status="FAILURE", content_type="application/json",
        meta=json.dumps({"children": [], "stored_call": {"body": '[["card 4111 1111"], {}]'}}),
    )  # fmt: skip
    html = admin_client.get(change_url(row)).content.decode()
    assert "4111" not in html
    assert "stored for Retry" in html
