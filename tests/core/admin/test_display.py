"""How the admin shows stored values."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from django_celery_results.admin import display


@pytest.mark.parametrize(
    ("span", "shown"),
    [
        (timedelta(microseconds=967_569), "968 ms"),
        (timedelta(seconds=1.2), "1.2 s"),
        (timedelta(seconds=5), "5 s"),
        (timedelta(seconds=184), "3 min 4 s"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(hours=1), "1 h"),
        (timedelta(minutes=3), "3 min"),
        (timedelta(days=2), "2 d"),
        (timedelta(days=3, hours=4), "3 d 4 h"),
        (None, "-"),
    ],
)
def test_durations_are_humanized(span: timedelta | None, shown: str) -> None:
    assert display.duration(span) == shown


@override_settings(USE_TZ=True, TIME_ZONE="Europe/Madrid")
def test_dates_show_seconds_in_the_current_zone() -> None:
    moment = datetime(2026, 12, 2, 15, 42, 7, 123_456, tzinfo=UTC)
    assert display.to_the_second(moment) == "2026-12-02 16:42:07 CET"
    assert display.with_milliseconds(moment) == "2026-12-02 16:42:07.123 CET"


def test_a_long_id_is_cut_and_whole_on_hover() -> None:
    task_id = "7b6f6a1e-1d2c-4e0b-9a55-000000000001"
    shown = display.short_id(task_id)
    assert f'title="{task_id}"' in shown
    assert ">7b6f6a1e…<" in shown


def test_json_is_indented_and_escaped() -> None:
    shown = display.decoded('{"b": [1, 2], "a": "<script>"}')
    assert shown.startswith('<pre class="dcr-pre">')
    text = html.unescape(shown)
    assert '"a": "<script>"' in text
    assert '"b": [\n    1,\n    2\n  ]' in text
    assert "<script>" not in shown


def test_args_show_the_text_celery_recorded() -> None:
    # Celery stores repr(args) as a JSON string: shown without the JSON quotes.
    assert display.decoded('"(0, 10)"') == '<pre class="dcr-pre">(0, 10)</pre>'


def test_pickle_is_never_decoded() -> None:
    shown = display.decoded("gASVBQAAAAAAAABLBC4=", "application/x-python-serialize")
    assert "gASV" not in shown
    assert "application/x-python-serialize, 20 characters, not decoded" in shown


def test_broken_json_shows_as_text() -> None:
    assert display.decoded("{not json") == '<pre class="dcr-pre">{not json</pre>'


def test_a_huge_value_is_cut() -> None:
    shown = display.preformatted("x" * (display.MAX_SHOWN + 5))
    assert "(5 more characters)" in shown
    assert len(shown) < display.MAX_SHOWN + 100


def test_states_get_their_colour() -> None:
    assert 'dcr-state-failure">FAILURE<' in display.state_badge("FAILURE")
    assert 'dcr-state-other">PROGRESS<' in display.state_badge("PROGRESS")


def test_names_may_wrap_after_dots_and_at() -> None:
    assert display.breakable("celery@host.example") == "celery@<wbr>host.<wbr>example"
    assert display.breakable(None) == "-"
    assert display.breakable("a.b", "<nightly>").endswith(
        '<small class="dcr-second">&lt;nightly&gt;</small>'
    )
