"""Settings of the worker benchmark's project, from the ``BENCH_*`` environment.

``BENCH_ENGINE``/``BENCH_NAME`` (and ``BENCH_OPTIONS``) name the database, as for
``bench/workloads.py``; ``BENCH_BROKER`` the broker; ``BENCH_STORE=none`` stores no
results (the baseline the result store's share is measured against);
``BENCH_CONN_MAX_AGE`` Django's ``CONN_MAX_AGE`` (default 0, Django's);
``BENCH_DB_REUSE_MAX`` Celery's ``CELERY_DB_REUSE_MAX`` (unset by default: Celery's
worker then opens a new database connection for every task). Only upstream's
settings are used, so upstream django-celery-results 2.6.0 runs it unchanged.
"""

import json
import os
from typing import Any

SECRET_KEY = "bench-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_celery_results"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

ENGINE = os.environ["BENCH_ENGINE"]
DATABASES: dict[str, dict[str, Any]] = {
    "default": {"ENGINE": f"django.db.backends.{ENGINE}", "NAME": os.environ["BENCH_NAME"]}
}
if ENGINE == "postgresql":
    DATABASES["default"].update(HOST="127.0.0.1", PORT=5432, USER="postgres")
    DATABASES["default"]["OPTIONS"] = json.loads(os.environ.get("BENCH_OPTIONS", "{}"))
elif ENGINE == "sqlite3":
    # Two worker processes write at once: wait for the lock, take it up front (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
elif ENGINE == "mysql":
    DATABASES["default"].update(HOST="127.0.0.1", PORT=3306, USER="root", PASSWORD="")
    DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}

DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("BENCH_CONN_MAX_AGE", "0"))
# Celery's worker closes every connection before and after each task, whatever
# CONN_MAX_AGE says, unless CELERY_DB_REUSE_MAX lets it reuse one for that many tasks.
if int(os.environ.get("BENCH_DB_REUSE_MAX", "0")):
    CELERY_DB_REUSE_MAX = int(os.environ["BENCH_DB_REUSE_MAX"])

CELERY_BROKER_URL = os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None if os.environ.get("BENCH_STORE") == "none" else "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_IGNORE_RESULT = os.environ.get("BENCH_STORE") == "none"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
