"""Django settings of the SQLite lifecycle benchmark (Django's default SQLite options)."""

import os

SECRET_KEY = "bench"
USE_TZ = True
INSTALLED_APPS = ["django_celery_results"]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BENCH_SQLITE_PATH"]}
}
