"""Chords: the counter counts each header task once, and the callback fires exactly once."""

from __future__ import annotations

import logging
import threading
from typing import Any
from unittest import mock

import pytest
from celery import states
from celery.canvas import Signature
from celery.exceptions import ChordError
from django.db import connections
from django.test.utils import CaptureQueriesContext

from ...models import ChordCounter, TaskResult
from .helpers import new_id, request

#: What a driver's ``from django_celery_results.testing.suite import *`` takes.
__all__ = ["TestChords"]

TRIGGER = "django_celery_results.backends.database.trigger_callback"


class Chord:
    """A chord applied to the backend: header result ids and the callback signature."""

    def __init__(self, app: Any, backend: Any, size: int) -> None:
        self.group_id = new_id()
        self.part_ids = [new_id() for _ in range(size)]
        self.callback = app.signature("tests.callback", options={"task_id": new_id()})
        header = (self.group_id, [app.AsyncResult(i) for i in self.part_ids])
        backend.apply_chord(header, self.callback)
        self.backend = backend

    def finish(
        self,
        index: int,
        value: Any = None,
        state: str = states.SUCCESS,
        ignore_result: bool = False,
    ) -> None:
        """Store the result of header task ``index`` the way a worker does."""
        part_id = self.part_ids[index]
        req = request(
            part_id, group=self.group_id, chord=dict(self.callback), ignore_result=ignore_result
        )
        if state == states.SUCCESS:
            self.backend.mark_as_done(part_id, index if value is None else value, request=req)
        else:
            self.backend.mark_as_failure(part_id, value, traceback="tb", request=req)


class TestChords:
    """``apply_chord`` and ``on_chord_part_return``."""

    def test_counter_created(self, backend: Any, result_app: Any) -> None:
        chord = Chord(result_app, backend, 3)
        counter = ChordCounter.objects.get(group_id=chord.group_id)
        assert counter.count == 3
        assert [r.id for r in counter.group_result(app=result_app).results] == chord.part_ids

    def test_callback_fires_once_with_every_result(self, backend: Any, result_app: Any) -> None:
        chord = Chord(result_app, backend, 5)
        with mock.patch.object(Signature, "delay") as delay:
            for i in range(4):
                chord.finish(i)
                assert not delay.called
            chord.finish(4)
        delay.assert_called_once_with([0, 1, 2, 3, 4])
        assert not ChordCounter.objects.filter(group_id=chord.group_id).exists()

    def test_last_part_reads_the_header_in_one_query(
        self, backend: Any, result_app: Any, db_alias: str
    ) -> None:
        """Readiness of a 200-part header is one read, not one per header result."""
        chord = Chord(result_app, backend, 200)
        for i in range(199):
            chord.finish(i)
        with mock.patch(TRIGGER) as trigger, CaptureQueriesContext(connections[db_alias]) as q:
            chord.finish(199)
        assert trigger.call_count == 1
        assert len(q.captured_queries) <= 12, [query["sql"][:80] for query in q]

    def test_duplicated_header_task_still_fires_once(self, backend: Any, result_app: Any) -> None:
        chord = Chord(result_app, backend, 4)
        with mock.patch(TRIGGER) as trigger:
            chord.finish(0)
            chord.finish(0)  # redelivered: runs and reports a second time
            chord.finish(1)
            chord.finish(2)
            assert not trigger.called  # counted to zero, but part 3 is not done
            chord.finish(3)
            chord.finish(3)
        assert trigger.call_count == 1

    def test_header_that_ignores_results_drops_the_counter(
        self, backend: Any, result_app: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Nothing shows the header finished: the counter goes, the callback can't fire."""
        chord = Chord(result_app, backend, 3)
        with mock.patch(TRIGGER) as trigger, caplog.at_level(logging.WARNING):
            for i in range(3):
                chord.finish(i, ignore_result=True)
        assert not trigger.called
        assert not ChordCounter.objects.filter(group_id=chord.group_id).exists()
        assert not TaskResult.objects.filter(task_id__in=chord.part_ids).exists()
        assert f"Chord {chord.group_id}: its callback can't fire" in caplog.text
        assert "ignore_result=True" in caplog.text

    def test_part_that_ignores_its_result_fires_a_ready_header(
        self, backend: Any, result_app: Any
    ) -> None:
        """The last part's result is not stored, but every header result is: it fires."""
        chord = Chord(result_app, backend, 3)
        backend.store_result(chord.part_ids[2], 2, states.SUCCESS)  # stored by an earlier run
        with mock.patch.object(Signature, "delay") as delay:
            chord.finish(0)
            chord.finish(1)
            assert not delay.called
            chord.finish(2, ignore_result=True)
        delay.assert_called_once_with([0, 1, 2])
        assert not ChordCounter.objects.filter(group_id=chord.group_id).exists()

    def test_failing_header_task_fails_the_callback(self, backend: Any, result_app: Any) -> None:
        chord = Chord(result_app, backend, 2)
        chord.finish(0)
        chord.finish(1, KeyError("header failed"), state=states.FAILURE)
        callback_id = chord.callback.options["task_id"]
        callback = TaskResult.objects.get(task_id=callback_id)
        assert callback.status == states.FAILURE
        error = backend.get_task_meta(callback_id, cache=False)["result"]
        assert isinstance(error, ChordError)
        assert chord.part_ids[1] in str(error)

    def test_unknown_chord_is_logged_not_raised(
        self, backend: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        group_id = new_id()
        req = request(new_id(), group=group_id, chord={"task": "tests.callback"})
        with caplog.at_level(logging.WARNING):
            backend.on_chord_part_return(req, states.SUCCESS, 1)
        assert f"Can't find ChordCounter for Group {group_id}" in caplog.text

    def test_request_without_group_is_ignored(self, backend: Any) -> None:
        backend.on_chord_part_return(request(new_id(), group=None), states.SUCCESS, 1)

    @pytest.mark.requires_feature("supports_concurrent_processes")
    def test_concurrent_parts_fire_once(self, backend: Any, result_app: Any) -> None:
        """500 parts finished by 4 threads: no error escapes, the callback fires once."""
        chord = Chord(result_app, backend, 500)
        errors: list[BaseException] = []

        def finish(indexes: range) -> None:
            try:
                for i in indexes:
                    chord.finish(i)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                connections.close_all()

        with mock.patch(TRIGGER) as trigger:
            threads = [threading.Thread(target=finish, args=(range(n, 500, 4),)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
        assert not errors, errors
        assert trigger.call_count == 1
        assert TaskResult.objects.filter(status=states.SUCCESS).count() == 500
