"""Whether any live worker consumes a routing key: the PENDING rows no one will run.

A PENDING row's ``queue`` holds the routing key its task was sent with. Through the
default exchange (and any direct one) that key is the queue's binding key; through a
topic exchange a binding pattern matches it (``*`` one word, ``#`` any words). A fanout
or headers exchange ignores the key, and a row does not say which exchange it went to:
while a live worker consumes through one, no key can be judged, and none is flagged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache

from django.db.models import QuerySet

from ..conf import app_settings
from ..models import TaskResult
from .status import LIVE, WorkerStatus

#: Exchange types whose bindings a routing key alone decides.
JUDGED_TYPES = frozenset({"direct", "topic"})


class Consumers:
    """The bindings of the live workers, as one judge of routing keys."""

    def __init__(self, bindings: Iterable[dict[str, str]], *, registered: bool) -> None:
        self.bindings = list(bindings)
        #: False when no worker ever registered (or a live one's queues are unreadable):
        #: nothing can be judged.
        self.registered = registered

    @classmethod
    def of(cls, statuses: list[WorkerStatus], seen_within: timedelta | None = None) -> Consumers:
        """The consumers among registered lives: the live ones, and those seen lately.

        Lately: within ``seen_within`` (``UNCONSUMED_AFTER`` by default), so that a worker
        restarting in a deploy, or briefly down, still counts.
        """
        recent = seen_within if seen_within is not None else app_settings().UNCONSUMED_AFTER
        bindings: list[dict[str, str]] = []
        readable = True
        for status in statuses:
            if status.state == LIVE or status.age <= recent:
                loaded = _loaded(status.worker.queues)
                readable = readable and loaded is not None
                bindings.extend(loaded or [])
        return cls(bindings, registered=bool(statuses) and readable)

    @property
    def judges(self) -> bool:
        """Whether routing keys can be judged at all."""
        return self.registered and all(
            b.get("type", "direct") in JUDGED_TYPES for b in self.bindings
        )

    def unconsumed(self, routing_key: str | None) -> bool:
        """True only when no live worker consumes ``routing_key``, as far as can be told."""
        if not routing_key or not self.judges:
            return False
        for binding in self.bindings:
            if binding.get("queue") == routing_key:
                return False  # the default exchange routes a queue's name to it
            key = binding.get("routing_key", "")
            if binding.get("type", "direct") == "topic":
                if topic_matches(key, routing_key):
                    return False
            elif key == routing_key:
                return False
        return True


#: The oldest PENDING rows whose routing keys are judged, at most.
KEYS_FROM_ROWS = 10_000


def unconsumed_keys(
    old_pending: QuerySet[TaskResult], consumers: Consumers
) -> tuple[list[str], bool]:
    """The routing keys no live worker consumes among the oldest :data:`KEYS_FROM_ROWS` rows.

    Read along the ``(status, date_done)`` index, never the whole backlog. The second
    value says the rows read stopped at that bound: a key only newer rows hold is missed.
    """
    keys = list(
        old_pending.order_by("date_done").values_list("queue", flat=True)[: KEYS_FROM_ROWS + 1]
    )
    partial = len(keys) > KEYS_FROM_ROWS
    found = {key for key in keys[:KEYS_FROM_ROWS] if key and consumers.unconsumed(key)}
    return sorted(found), partial


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Whether a topic binding key matches a routing key, as AMQP topic exchanges match."""
    return _words_match(tuple(binding_key.split(".")), tuple(routing_key.split(".")))


@lru_cache(maxsize=4096)
def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":  # no word, or one more word and "#" again
        return _words_match(rest, words) or (bool(words) and _words_match(pattern, words[1:]))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _words_match(rest, words[1:])


def _loaded(text: str) -> list[dict[str, str]] | None:
    """A worker's bindings, or None when its column cannot be read."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        return None
    return value
