"""Retention rules: which stored task results a cleanup keeps, and for how long."""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Model, Q

from .utils import MAX_SPAN

#: The keys a rule matches rows by, each a column of ``TaskResult``.
MATCH_KEYS = ("status", "task_name", "periodic_task_name", "queue")
#: Every key a rule may have.
RULE_KEYS = (*MATCH_KEYS, "keep", "name")
#: The longest state name the ``status`` column holds.
STATE_MAX_LENGTH = 50
#: The keys whose value may be a glob (``*``, ``?``, ``[…]``), matched case-sensitively.
GLOB_KEYS = ("task_name", "periodic_task_name", "queue")


@dataclass(frozen=True)
class Rule:
    """One entry of ``RETENTION``: rows it matches are kept for ``keep`` (``None``: forever).

    A row matches when every given key matches: ``status`` is one of the states, the
    other keys equal the column or match it as a glob. The first rule of the list that
    matches a row decides its fate.
    """

    name: str
    keep: timedelta | None
    status: frozenset[str] | None = None
    task_name: str | None = None
    periodic_task_name: str | None = None
    queue: str | None = None

    def q(self) -> Q:
        """Return the ORM condition of the rows this rule matches."""
        condition = Q()
        if self.status is not None:
            condition &= Q(status__in=sorted(self.status))
        for key in GLOB_KEYS:
            pattern = getattr(self, key)
            if pattern is None:
                continue
            if is_glob(pattern):
                condition &= Q(**{f"{key}__regex": glob_regex(pattern)})
            else:
                condition &= Q(**{key: pattern})
        return condition

    def matches(self, row: Any) -> bool:
        """Return True when the row (a ``TaskResult`` or anything with its columns) matches."""
        if self.status is not None and getattr(row, "status", None) not in self.status:
            return False
        for key in GLOB_KEYS:
            pattern = getattr(self, key)
            if pattern is None:
                continue
            value = getattr(row, key, None)
            if value is None or not glob_matcher(pattern)(value):
                return False
        return True


def is_glob(pattern: str) -> bool:
    """Return True when ``pattern`` holds a glob character (``*``, ``?`` or ``[``)."""
    return any(char in pattern for char in "*?[")


@functools.cache
def glob_matcher(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """Return a test of whole values against a glob, compiled once per pattern.

    The admin asks it for every row on a page, for every rule with a glob.
    """
    return re.compile(glob_regex(pattern)[1:-1], re.DOTALL).fullmatch


def glob_regex(pattern: str) -> str:
    """Translate a glob to an anchored regular expression every database understands.

    ``*`` is any text, ``?`` one character, ``[abc]``/``[!abc]`` a set; everything
    else is literal. Only the common subset of POSIX and Python syntax is produced.
    """
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                out.append(r"\[")
                continue
            body = pattern[index:end]
            index = end + 1
            negate = body.startswith("!")
            body = body[1:] if negate else body
            members = "".join("\\" + c if c in "\\^]" else c for c in body)
            out.append(f"[{'^' if negate else ''}{members}]")
        elif char.isalnum() or char in "_- @:/":
            out.append(char)
        else:
            out.append("\\" + char)
    out.append("$")
    return "".join(out)


def as_keep(value: Any) -> timedelta | None:
    """Turn a rule's ``keep`` (a ``timedelta``, seconds, or ``None``) into a ``timedelta``."""
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


def problems(rules: Any, setting: str, known_states: frozenset[str]) -> list[str]:
    """Return one message per problem in a ``RETENTION`` value, each naming the fix.

    A state that is a near miss of a known one (``FAILED``, ``failure``) is a problem:
    the rule would match nothing. ``known_states`` are Celery's and the project's own.
    """
    if not isinstance(rules, list | tuple):
        return [
            f"{setting} must be a list of rules such as "
            "[{'status': 'FAILURE', 'keep': timedelta(days=30)}], "
            f"not {type(rules).__name__}."
        ]
    found = []
    for number, rule in enumerate(rules, 1):
        where = f"{setting}[{number - 1}]"
        if not isinstance(rule, Mapping):
            found.append(f"{where} must be a dict such as {{'queue': 'billing', 'keep': None}}.")
            continue
        if isinstance(rule.get("name"), str):
            where += f" ({rule['name']!r})"
        unknown = sorted(
            k if isinstance(k, str) else safe_repr(k) for k in set(rule) - set(RULE_KEYS)
        )
        if unknown:
            found.append(
                f"{where} has unknown keys {unknown}; a rule has: {', '.join(RULE_KEYS)}."
            )
        if "keep" not in rule:
            found.append(
                f"{where} has no 'keep': say how long its rows are kept (a timedelta, "
                "seconds, or None to keep them forever)."
            )
        elif not is_keep(rule["keep"]):
            found.append(
                f"{where}['keep'] must be a timedelta or a number of seconds >= 0 and up to "
                f"{MAX_SPAN.days:,} days (100 years), or None (forever), not "
                f"{safe_repr(rule['keep'])}."
            )
        if not any(rule.get(key) is not None for key in MATCH_KEYS):
            found.append(
                f"{where} matches every row: give it one of {', '.join(MATCH_KEYS)} "
                "(result_expires already decides for rows no rule matches)."
            )
        states = (
            None
            if "status" in rule and rule["status"] is None
            else state_names(rule.get("status"))
        )
        if states is None:
            shown = safe_repr(rule["status"])
            found.append(f"{where}['status'] must be a state or a list of states, not {shown}.")
        for state in states or ():
            if len(state) > STATE_MAX_LENGTH:
                found.append(
                    f"{where}['status'] names {state[:60]!r}…, longer than any stored state "
                    f"({STATE_MAX_LENGTH} characters): the rule would match nothing."
                )
                continue
            near = near_miss(state, known_states)
            if near is not None:
                found.append(
                    f"{where}['status'] names {state!r}, which no task has: did you mean "
                    f"{near!r}? (Declare your own states in CUSTOM_STATES.)"
                )
        for key in GLOB_KEYS:
            if key in rule and not (isinstance(rule[key], str) and rule[key]):
                found.append(
                    f"{where}[{key!r}] must be a name or a glob, not {safe_repr(rule[key])}."
                )
        if "name" in rule and not isinstance(rule["name"], str):
            found.append(f"{where}['name'] must be text, not {safe_repr(rule['name'])}.")
    return found


def unknown_states(rules: Any, setting: str, known_states: frozenset[str]) -> list[str]:
    """Return a warning per rule state that is neither known nor a near miss of one."""
    found = []
    for number, rule in enumerate(rules if isinstance(rules, list | tuple) else (), 1):
        if not isinstance(rule, Mapping):
            continue
        for state in state_names(rule.get("status")) or ():
            if state not in known_states and near_miss(state, known_states) is None:
                found.append(
                    f"{setting}[{number - 1}]['status'] names {state!r}, which is neither "
                    "one of Celery's states nor in CUSTOM_STATES: the rule matches only rows "
                    "your tasks store with that state."
                )
    return found


def state_names(status: Any) -> list[str] | None:
    """The state names of a rule's ``status`` ([] when absent; None when malformed)."""
    if status is None:
        return []
    if isinstance(status, str):
        return [status]
    if (
        isinstance(status, list | tuple | set | frozenset)
        and status
        and all(isinstance(s, str) for s in status)
    ):
        return list(status)
    return None


def near_miss(state: str, known_states: frozenset[str]) -> str | None:
    """Return the known state ``state`` was probably meant to be, or None.

    An unknown name that differs from a known one in case only, or is close to one
    (``FAILED`` for ``FAILURE``), is a near miss; a known name never is.
    """
    if state in known_states:
        return None
    for known in sorted(known_states):
        if known.upper() == state.upper():
            return known
    close = difflib.get_close_matches(state.upper(), sorted(known_states), n=1, cutoff=0.7)
    return close[0] if close else None


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder when even that fails (a message must be built)."""
    try:
        return repr(value)[:200]
    except Exception:
        return f"<{type(value).__name__} that cannot be shown>"


def is_keep(value: Any) -> bool:
    """Return True for a valid ``keep``: ``None``, or a finite span from 0 to 100 years."""
    if value is None:
        return True
    if isinstance(value, timedelta):
        return timedelta(0) <= value <= MAX_SPAN
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        seconds = float(value)
    except OverflowError:
        return False
    return math.isfinite(seconds) and 0 <= seconds <= MAX_SPAN.total_seconds()


def parse(rules: Iterable[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Turn a valid ``RETENTION`` list into rules, named ``rule 1``, ``rule 2`` … by default."""
    parsed = []
    for number, rule in enumerate(rules, 1):
        status = rule.get("status")
        parsed.append(
            Rule(
                name=rule.get("name") or f"rule {number}",
                keep=as_keep(rule["keep"]),
                status=None
                if status is None
                else frozenset([status] if isinstance(status, str) else status),
                task_name=rule.get("task_name"),
                periodic_task_name=rule.get("periodic_task_name"),
                queue=rule.get("queue"),
            )
        )
    return tuple(parsed)


def describe(rule: Rule) -> str:
    """Return a rule as a person reads it: ``status FAILURE, queue billing: 30 days``."""
    parts = []
    if rule.status is not None:
        parts.append("status " + "/".join(sorted(rule.status)))
    parts.extend(f"{key} {getattr(rule, key)}" for key in GLOB_KEYS if getattr(rule, key))
    return f"{', '.join(parts)}: {humanize(rule.keep)}"


def humanize(keep: timedelta | None) -> str:
    """Return a keep duration in words (``forever``, ``30 days``, ``2 hours``)."""
    if keep is None:
        return "forever"
    seconds = keep.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


@dataclass(frozen=True)
class Step:
    """One deletion of a cleanup: a name, the condition of its expired rows, their model.

    A rule's step deletes its rows, none of an earlier rule's, past its keep.
    """

    name: str
    description: str
    condition: Q
    #: The model whose rows it deletes; None: the task results (every rule's).
    model: type[Model] | None = None


def plan(rules: Sequence[Rule], fallback: timedelta | None, now: datetime) -> list[Step]:
    """Return the deletions a cleanup runs, one per rule that expires rows, then the fallback.

    A row belongs to the first rule that matches it, so each step excludes the rows of
    the rules before it; ``fallback`` (``result_expires``) takes the rows no rule matches.
    A rule or fallback that keeps forever deletes nothing and has no step.
    """
    steps = []
    earlier = Q()
    for rule in rules:
        matched = rule.q()
        if rule.keep is not None:
            condition = matched & ~earlier if earlier else matched
            steps.append(
                Step(rule.name, describe(rule), condition & Q(date_done__lt=now - rule.keep))
            )
        earlier = earlier | matched if earlier else matched
    if fallback is not None:
        condition = ~earlier if earlier else Q()
        steps.append(
            Step(
                "result_expires",
                f"rows no rule matches: {humanize(fallback)}",
                condition & Q(date_done__lt=now - fallback),
            )
        )
    return steps


def rule_for(rules: Sequence[Rule], row: Any) -> Rule | None:
    """Return the first rule that matches ``row``, or ``None`` (``result_expires`` decides)."""
    return next((rule for rule in rules if rule.matches(row)), None)
