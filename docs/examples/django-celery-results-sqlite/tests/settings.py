"""Test settings: our models on a file SQLite database, shared by the suite's processes."""

SECRET_KEY = "example"
USE_TZ = True
INSTALLED_APPS = ["django_celery_results"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "results.sqlite3",
        "TEST": {"NAME": "test-results.sqlite3"},
    }
}
