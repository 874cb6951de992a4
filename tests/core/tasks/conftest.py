"""The ``backend`` fixture: the ``django.tasks`` backend, its messages purged afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from tests.databases import reachable

from .helpers import APP, tasks_setting


@pytest.fixture
def backend() -> Iterator[Any]:
    if not reachable("127.0.0.1", 6379):
        pytest.fail("Redis is not running on 127.0.0.1:6379: redis-server --daemonize yes")
    from django.tasks import task_backends

    with override_settings(TASKS=tasks_setting(APP="tests.core.tasks.helpers.APP")):
        yield task_backends["default"]
    with APP.connection_for_write() as connection:
        connection.default_channel.queue_purge(APP.conf.task_default_queue)
