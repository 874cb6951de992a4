"""The stored call: what the worker received, kept for Retry, decoded safely."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Celery
from django.test import override_settings

from django_celery_results.models import TaskResult
from django_celery_results.operations import calls


def request(**extra: Any) -> SimpleNamespace:
    fields = {
        "id": "call-1",
        "task": "proj.charge",
        "args": [1, "two"],
        "kwargs": {"card": "4111…"},
        "delivery_info": {"exchange": "billing", "routing_key": "charge.eu"},
    }
    return SimpleNamespace(**{**fields, **extra})


@pytest.mark.parametrize(
    ("setting", "stored"),
    [(False, False), (True, True), (["proj.charge"], True), (["proj.other"], False)],
)
def test_store_calls_chooses_the_tasks(app: Celery, setting: Any, stored: bool) -> None:
    with override_settings(DJANGO_CELERY_RESULTS={"STORE_CALLS": setting}):
        assert (calls.encode(app, request()) is not None) == stored


@override_settings(DJANGO_CELERY_RESULTS={"STORE_CALLS": True})
def test_a_call_round_trips_with_its_routing(app: Celery) -> None:
    stored = json.loads(json.dumps(calls.encode(app, request())))
    call = calls.decode(app, stored)
    assert (call.args, call.kwargs) == ([1, "two"], {"card": "4111…"})
    assert (call.exchange, call.routing_key, call.serializer) == ("billing", "charge.eu", "json")


@override_settings(DJANGO_CELERY_RESULTS={"STORE_CALLS": True})
def test_pickle_is_never_decoded(app: Celery) -> None:
    app.conf.accept_content = ["json", "pickle"]
    app.conf.task_serializer = "pickle"
    stored = calls.encode(app, request())
    assert stored is not None
    assert stored["binary"]
    with pytest.raises(ValueError, match="pickle"):
        calls.decode(app, stored)


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        (None, "no call was stored"),
        ({"body": "[1, 2", "content_type": "application/json"}, "cannot be decoded"),
        ({"body": "[1, 2]", "content_type": "application/json"}, "not \\(args, kwargs\\)"),
        ({"body": "x", "content_type": "application/x-yaml", "serializer": "yaml"}, "not accept"),
        # The stored serializer field is not trusted: the content type names the decoder.
        ({"body": "x", "content_type": "application/x-yaml", "serializer": "json"}, "not accept"),
    ],
)
def test_a_broken_call_says_why(app: Celery, stored: Any, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        calls.decode(app, stored)


@pytest.mark.django_db
@override_settings(DJANGO_CELERY_RESULTS={"STORE_CALLS": True})
def test_the_backend_stores_the_call_but_never_returns_it(app: Celery) -> None:
    app.backend.store_result("call-1", {"ok": 1}, "SUCCESS", request=request())
    meta = json.loads(TaskResult.objects.get(task_id="call-1").meta or "{}")
    assert calls.decode(app, meta[calls.META_KEY]).args == [1, "two"]
    assert calls.META_KEY not in app.backend.get_task_meta("call-1")
