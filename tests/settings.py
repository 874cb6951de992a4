"""Django settings of the test suite."""

import django

from tests.databases import database_legs

SECRET_KEY = "tests-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES, CONFORMANCE_SKIPPED_DATABASES = database_legs()
DATABASE_ROUTERS = [
    "django_celery_results.testing.router.AliasRouter",
    "tests.routers.CacheTableRouter",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_results",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The browser tests read the admin in Russian (Accept-Language) as well as English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
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
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "dummy": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    # The getting-started page's example: test databases get its table (createcachetable).
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "my_cache_table",
    },
}
# Upstream's test suite runs with 191; it also proves the setting reaches every id column.
DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH = 191
# The deprecated id-first URL patterns warn at import; tests opt in where they test them.
DJANGO_CELERY_RESULTS_ID_FIRST_URLS = False
# Django 6's tasks go to Celery (tests/e2e/test_django_tasks.py); any queue is allowed.
if django.VERSION >= (6, 0):
    TASKS = {"default": {"BACKEND": "django_celery_results.tasks.CeleryBackend", "QUEUES": []}}
