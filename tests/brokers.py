"""The brokers and caches of the test run, in namespaces of its own.

Two runs at once (CI runs its two version legs side by side) share the servers, so each
takes its own: a RabbitMQ virtual host, a Redis database for the broker and another for
the cache tests (``FLUSHDB`` empties a whole database). A broadcast (a revoke, a ping)
then reaches only the run's own workers: a worker of the other run would otherwise
store REVOKED in its own database for an id it never saw.
"""

from __future__ import annotations

import os

#: The RabbitMQ virtual host (``/`` by default; CI creates one per leg).
RABBITMQ_VHOST = os.environ.get("DCR_TEST_RABBITMQ_VHOST", "")
#: The Redis database the broker uses, and the one the Redis cache tests empty.
REDIS_BROKER_DB = int(os.environ.get("DCR_TEST_REDIS_DB", "0"))
REDIS_CACHE_DB = int(os.environ.get("DCR_TEST_REDIS_CACHE_DB", "3"))

RABBITMQ_URL = f"amqp://guest:guest@127.0.0.1:5672/{RABBITMQ_VHOST}"
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_BROKER_DB}"
REDIS_CACHE_URL = f"redis://127.0.0.1:6379/{REDIS_CACHE_DB}"
