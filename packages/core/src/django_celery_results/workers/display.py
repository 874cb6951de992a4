"""A registry row's columns as people read them: the pool's short name, the queue names."""

from __future__ import annotations

import json


def pool_name(pool: str) -> str:
    """Celery's pools by their module (``prefork``, ``thread``…); others by class name."""
    module, _dot, name = pool.rpartition(".")
    return module.rsplit(".", 1)[-1] if name == "TaskPool" else name


def queue_names(queues: str) -> list[str]:
    """The names of the queues a row's bindings name, sorted; [] when unreadable."""
    try:
        bindings = json.loads(queues)
    except (TypeError, ValueError):
        return []
    if not isinstance(bindings, list):
        return []
    names = {b.get("queue") for b in bindings if isinstance(b, dict)}
    return sorted(name for name in names if isinstance(name, str))
