"""``task_requests``: what a request or a message says, taken only with the right types."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery import Celery
from celery.app.task import Context

from django_celery_results import task_requests


def test_text_and_plain_values_only() -> None:
    assert task_requests.text("x") == "x"
    assert task_requests.text(3) is None
    assert task_requests.plain([1], list | tuple) == [1]
    assert task_requests.plain("[1]", list | tuple) is None


@pytest.mark.parametrize(
    ("delivery_info", "key"),
    [({"routing_key": "fast"}, "fast"), ({"routing_key": ""}, None), ({}, None), (None, None)],
)
def test_the_routing_key_a_request_was_delivered_with(delivery_info: object, key: str) -> None:
    assert task_requests.routing_key(SimpleNamespace(delivery_info=delivery_info)) == key


def test_a_worker_context_s_class_default_is_not_the_message_s_flag() -> None:
    assert task_requests.ignore_flag(Context(id="t")) is None
    assert task_requests.ignore_flag(Context(id="t", ignore_result=True)) is True
    assert task_requests.ignore_flag(SimpleNamespace(ignore_result=0)) is False
    assert task_requests.ignore_flag(SimpleNamespace()) is None


def test_a_task_sent_by_name_follows_its_definition() -> None:
    app = Celery("requests", set_as_current=False)

    @app.task(name="quiet", ignore_result=True)
    def quiet() -> None: ...

    assert task_requests.result_ignored(app, None, "quiet") is True
    assert task_requests.result_ignored(app, False, "quiet") is False  # the message says
    assert task_requests.result_ignored(app, None, "unknown") is False  # the app's default
    app.conf.task_ignore_result = True
    assert task_requests.result_ignored(app, None, "unknown") is True
