"""Which routing keys no live worker consumes: direct and topic bindings; what is not judged."""

from __future__ import annotations

import pytest

from django_celery_results.workers.routing import Consumers, topic_matches


def bound(queue: str, kind: str = "direct", key: str | None = None) -> dict[str, str]:
    return {"queue": queue, "exchange": queue, "type": kind, "routing_key": key or queue}


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("#.c", "a.b.c", True),
        ("#", "anything.at.all", True),
        ("a.#.c", "a.c", True),
        ("a.#.c", "a.x.y.c", True),
        ("a.#.c", "a.x.y.d", False),
        ("*.b", "b", False),
    ],
)
def test_topic_patterns_match_as_amqp_does(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_a_key_no_live_binding_names_is_unconsumed() -> None:
    consumers = Consumers([bound("celery"), bound("logs", "topic", "logs.#")], registered=True)
    assert consumers.judges
    assert not consumers.unconsumed("celery")
    assert not consumers.unconsumed("logs.web.error")
    assert consumers.unconsumed("reports")
    assert not consumers.unconsumed(None)  # a row without a routing key is never flagged


def test_nothing_is_judged_without_registered_workers_or_through_a_fanout() -> None:
    assert not Consumers([], registered=False).unconsumed("reports")
    fanout = Consumers([bound("celery"), bound("broadcast", "fanout", "")], registered=True)
    assert not fanout.judges
    assert not fanout.unconsumed("reports")


def test_registered_workers_none_live_consume_nothing() -> None:
    assert Consumers([], registered=True).unconsumed("celery")
