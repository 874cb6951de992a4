"""Settings of the example project.

Defaults need no server: SQLite in this folder and a broker made of files. Environment
variables point it elsewhere (the end-to-end tests use them):

- ``DEMO_SQLITE_PATH``: the SQLite file (default ``example/demo.sqlite3``);
- ``DEMO_DATABASE``: ``postgres`` or ``mysql`` for the local servers instead of SQLite;
- ``DEMO_BROKER_URL``: e.g. ``amqp://guest:guest@127.0.0.1:5672//`` or
  ``redis://127.0.0.1:6379/0`` (default: the filesystem transport);
- ``DEMO_BROKER_FOLDER``: the filesystem broker's folder (default ``example/.broker``);
- ``DEMO_DATABASE_NAME``: the PostgreSQL or MariaDB database (a test database, say);
- ``DEMO_QUEUE``: the queue tasks go to and the worker reads (default ``celery``);
- ``DEMO_DISABLED_DRIVERS``: comma-separated vendors served by the generic driver;
- ``DEMO_TRACK_PENDING``: ``0`` turns publish-time PENDING rows off;
- ``DEMO_RESULT_BACKEND``: ``django-cache`` stores results in the cache below instead;
- ``DEMO_RESULT_EXPIRES``: seconds results are kept (Celery's default: one day);
- ``DEMO_BATCH_WRITES``: ``1`` batches state writes (``BATCH_WRITES``);
- ``DEMO_NOTIFY``: ``1`` notifies waiting clients of finished tasks (``NOTIFY``, PostgreSQL);
- ``DEMO_TASK_SIGNALS_FILE``: a file ``demo_library`` logs Django's task signals to;
- ``DEMO_TASKS_BACKEND``: the ``TASKS`` backend (default: ours; ``bench/django_tasks_fields.py``
  compares another); ``DEMO_CELERY_IMPORTS``: modules the worker imports at start;
- ``DEMO_RESULT_EXTENDED``: ``0`` turns ``result_extended`` off;
- ``DEMO_HISTORY_INTERVAL``: seconds between the worker's history catch-ups (default 10).
- ``DEMO_WORKER_HEARTBEAT``: seconds between the worker's heartbeats (default 15);
- ``DEMO_LIFELINE_GRACE``, ``DEMO_LIFELINE_REDELIVERY_GRACE``: the lifeline's graces, in
  seconds (defaults: 60, and from the broker);
- ``DEMO_DATABASE_PORT``: the PostgreSQL or MariaDB port (a test's TCP proxy, say);
- ``DEMO_STORE_CALLS``: ``0`` stops storing calls for Retry; ``DEMO_ADMIN_ACTION_RATE``: rows
  a second of the admin's jobs;
- ``DEMO_CLOCK_SKEW``, ``DEMO_ELECTION_RACE``: test knobs, see ``celery.py``.

On Django 6.0+, ``django.tasks`` tasks (``demo_library.jobs``) run on the Celery workers.
"""

import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
    "demo_app",
    "demo_library",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "demo_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASE_CHOICES = {
    "sqlite": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_SQLITE_PATH", str(BASE_DIR / "demo.sqlite3")),
        # Suits concurrent workers: wait for locks, take the write lock up front, and
        # let readers and the writer work side by side (WAL).
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    },
    "postgres": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "NAME": os.environ.get("DEMO_DATABASE_NAME", "postgres"),
        "PORT": os.environ.get("DEMO_DATABASE_PORT", ""),
        "USER": "postgres",
    },
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "HOST": "127.0.0.1",
        "NAME": os.environ.get("DEMO_DATABASE_NAME", "test"),
        "PORT": os.environ.get("DEMO_DATABASE_PORT", ""),
        "USER": "root",
        "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
    },
}
DATABASES = {"default": DATABASE_CHOICES[os.environ.get("DEMO_DATABASE", "sqlite")]}

# The getting-started page's cache, for CELERY_RESULT_BACKEND = "django-cache" (run
# `manage.py createcachetable` once).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "my_cache_table",
    }
}

# Celery: the settings upstream django-celery-results documents.
CELERY_RESULT_BACKEND = os.environ.get("DEMO_RESULT_BACKEND", "django-db")
CELERY_CACHE_BACKEND = "default"
if "DEMO_RESULT_EXPIRES" in os.environ:
    CELERY_RESULT_EXPIRES = float(os.environ["DEMO_RESULT_EXPIRES"])
CELERY_RESULT_EXTENDED = os.environ.get("DEMO_RESULT_EXTENDED", "1") == "1"
CELERY_TASK_TRACK_STARTED = True
# A PENDING row stamped with the send time for every task sent: waiting time is known.
DJANGO_CELERY_RESULTS = {
    "TRACK_PENDING": os.environ.get("DEMO_TRACK_PENDING", "1") == "1",
    "DISABLED_DRIVERS": [v for v in os.environ.get("DEMO_DISABLED_DRIVERS", "").split(",") if v],
    # STARTED and other in-progress states wait up to 100 ms to merge with the next one.
    "BATCH_WRITES": {"max_delay_ms": 100} if os.environ.get("DEMO_BATCH_WRITES") == "1" else None,
    "NOTIFY": os.environ.get("DEMO_NOTIFY") == "1",
    "HISTORY_INTERVAL": float(os.environ.get("DEMO_HISTORY_INTERVAL", "10")),
    "WORKER_HEARTBEAT": float(os.environ.get("DEMO_WORKER_HEARTBEAT", "15")),
    **{
        key: float(os.environ[f"DEMO_{key}"])
        for key in ("LIFELINE_GRACE", "LIFELINE_REDELIVERY_GRACE")
        if f"DEMO_{key}" in os.environ
    },
    # Each call's args and kwargs are stored so the admin's Retry can send it again.
    "STORE_CALLS": os.environ.get("DEMO_STORE_CALLS", "1") == "1",
    "ADMIN_ACTION_RATE": float(os.environ.get("DEMO_ADMIN_ACTION_RATE", "50")),
    # The JSON views under results/ answer staff who may view results, not anyone.
    "RESULT_VIEWS_PERMISSION": "django_celery_results.view_taskresult",
}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("DEMO_QUEUE", "celery")
if "DEMO_CELERY_IMPORTS" in os.environ:
    CELERY_IMPORTS = os.environ["DEMO_CELERY_IMPORTS"].split(",")
if django.VERSION >= (6, 0):
    # Django's tasks go to the Celery workers; any queue name is a Celery queue.
    TASKS = {
        "default": {
            "BACKEND": os.environ.get(
                "DEMO_TASKS_BACKEND", "django_celery_results.tasks.CeleryBackend"
            ),
            "QUEUES": [],
        }
    }
BROKER_FOLDER = Path(os.environ.get("DEMO_BROKER_FOLDER", BASE_DIR / ".broker"))
CELERY_BROKER_URL = os.environ.get("DEMO_BROKER_URL", "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        # Broadcast messages (e.g. revoke) live beside the queue, not in the working folder.
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
    }
