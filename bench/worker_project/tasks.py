"""The benchmark's one task: short, and counted in Redis so every contender is timed alike."""

import os
from typing import Any

import redis
from celery import shared_task

_client: Any = None


@shared_task
def add(x: int, y: int) -> int:
    """Add, and count the finished task in Redis (``BENCH_COUNTER``)."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/1"))
    _client.incr(os.environ["BENCH_COUNTER"])
    return x + y
