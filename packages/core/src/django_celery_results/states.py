"""State precedence: which stored state a new state may overwrite.

The rule (DESIGN §6): once a row is SUCCESS nothing overwrites it, and a terminal state
(SUCCESS, FAILURE, REVOKED) is never overwritten by a non-terminal one, however late or
duplicated the write. PENDING, written when a task is sent, never overwrites anything
but PENDING. Everything else may move freely between non-terminal states (STARTED,
RETRY, RECEIVED, custom progress states). Among the terminal states a task's own outcome
wins over a revoke: REVOKED never replaces FAILURE (a revoke broadcast reaching a worker
after the task failed), FAILURE replaces REVOKED, and SUCCESS replaces both (a
redelivered task that succeeds after all).

Each state has a rank; a write is applied when the stored rank is not higher than the
new one, and never over SUCCESS. Core's statements express the same rule in SQL with
:func:`overwritable_sql` and :func:`overwritable_by_rank_sql`, so the check happens
inside the write statement itself.
"""

from collections.abc import Iterable

from celery import states
from django.db.models import Q

PENDING = states.PENDING
SUCCESS = states.SUCCESS
FAILURE = states.FAILURE
#: States after which a task never runs again (Celery's READY_STATES).
TERMINAL_STATES = frozenset(states.READY_STATES)

#: Rank of the states that are not plain "in progress" (rank 1).
_RANKS = {PENDING: 0, states.REVOKED: 2, states.FAILURE: 3, SUCCESS: 4}
IN_PROGRESS_RANK = 1


def rank(state: str) -> int:
    """Return the precedence rank of ``state``: higher ranks are closer to final."""
    return _RANKS.get(state, IN_PROGRESS_RANK)


def may_overwrite(stored: str, new: str) -> bool:
    """Return True when a row in state ``stored`` may be overwritten by state ``new``."""
    return stored != SUCCESS and rank(stored) <= rank(new)


def is_terminal(state: str) -> bool:
    """Return True for SUCCESS, FAILURE and REVOKED."""
    return state in TERMINAL_STATES


def outranking(new: str) -> list[str]:
    """Return the named states a write of ``new`` may not overwrite (for ranks above 0).

    Every state ranked above ``new``, and SUCCESS; unnamed (custom) states rank as in
    progress, below every state this is asked for.
    """
    new_rank = rank(new)
    return sorted({state for state, r in _RANKS.items() if r > new_rank} | {SUCCESS})


def overwritable_q(new: str, field: str = "status") -> Q:
    """Return a filter that matches the stored rows ``new`` may overwrite."""
    if rank(new) == 0:
        return Q(**{field: PENDING})
    refused = outranking(new)
    if len(refused) == 1:
        return ~Q(**{field: refused[0]})
    return ~Q(**{f"{field}__in": refused})


def overwritable_sql(new: str, column: str = "status") -> str:
    """Return the SQL test that a stored state in ``column`` may be overwritten by ``new``.

    :func:`overwritable_q` written out, with the state names as literals: for drivers
    whose statement writes rows of one known state, it is shorter to parse and cheaper
    to run than comparing two :func:`rank_case_literal_sql` expressions.
    """
    if rank(new) == 0:
        return f"{column} = {_literal(PENDING)}"
    refused = outranking(new)
    if len(refused) == 1:
        return f"{column} <> {_literal(refused[0])}"
    return f"{column} NOT IN ({', '.join(_literal(state) for state in refused)})"


def overwritable_by_rank_sql(stored: str, new: str) -> str:
    """Return the SQL test that the state in ``stored`` may be overwritten by ``new``'s.

    Both are SQL expressions (columns); for statements whose rows bring different states,
    so the test compares ranks row by row. SUCCESS is never overwritten.
    """
    return (
        f"{stored} <> {_literal(SUCCESS)} AND ({rank_case_literal_sql(stored)}) "
        f"<= ({rank_case_literal_sql(new)})"
    )


def precedence_class(new: str) -> int:
    """Return a key that is equal for states :func:`overwritable_sql` writes the same test.

    The rank, but SUCCESS shares the test of the rank below it (both refuse only SUCCESS).
    """
    return min(rank(new), _RANKS[SUCCESS] - 1)


def _literal(name: str) -> str:
    """Return a state name of ours as an SQL string literal."""
    if not name.isalpha() or not name.isupper():
        raise ValueError(f"state {name!r} cannot be written as an SQL literal")
    return f"'{name}'"


def rank_case_sql(column: str) -> tuple[str, list[str]]:
    """Return ``CASE`` SQL (and its parameters, the state names) computing ``column``'s rank.

    For drivers that write the precedence test into their upsert statement. The ranks are
    written into the SQL as integer literals (they are ours, not user input), so the
    expression has a type even where the server binds parameters itself.
    """
    whens = " ".join(f"WHEN %s THEN {r:d}" for _, r in sorted(_RANKS.items()))
    return f"CASE {column} {whens} ELSE {IN_PROGRESS_RANK:d} END", sorted(_RANKS)


def rank_case_literal_sql(column: str) -> str:
    """Return :func:`rank_case_sql` with the state names written in as SQL literals.

    For statements that should carry no parameters but the row's own: the names are our
    constants (checked to be plain upper-case words), never user input.
    """
    sql, names = rank_case_sql(column)
    for name in names:
        sql = sql.replace("%s", _literal(name), 1)
    return sql


def final_state(writes: Iterable[str], initial: str | None = None) -> str | None:
    """Return the state a row ends in after ``writes`` are applied in order."""
    stored = initial
    for state in writes:
        if stored is None or may_overwrite(stored, state):
            stored = state
    return stored


__all__ = [
    "IN_PROGRESS_RANK",
    "TERMINAL_STATES",
    "final_state",
    "is_terminal",
    "may_overwrite",
    "outranking",
    "overwritable_by_rank_sql",
    "overwritable_q",
    "overwritable_sql",
    "precedence_class",
    "rank",
    "rank_case_literal_sql",
    "rank_case_sql",
]
