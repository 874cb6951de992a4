"""Time admin pages in this interpreter's django_celery_results (ours, or upstream 2.6.0's).

Run by ``bench/admin.py`` with each contender's Python, against a database it seeded:
configures a minimal Django project with the admin, logs a superuser in with Django's
test client, requests every page once to warm up, then ``BENCH_REPEATS`` times, and
prints the median milliseconds per page as JSON. Configuration comes from the
environment: BENCH_ENGINE, BENCH_NAME (as ``workloads.py``), BENCH_PAGES (JSON: page
name → path). With BENCH_CATCH_UP set it only counts the stored rows into the history
(ours) and prints how long that took.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import django
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workloads import database_settings


def configure() -> None:
    """A project with the admin and the results app, on the benchmark's database."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-admin",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_celery_results",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
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
        ],
        ROOT_URLCONF=__name__,
        DATABASES={"default": database_settings()},
        USE_TZ=True,
        # Upstream's date_hierarchy converts time zones in MySQL (CONVERT_TZ), which
        # fails without the server's zone tables unless the project runs in UTC.
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


urlpatterns: list[Any] = []


def main() -> None:
    configure()
    from django.contrib import admin
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django.urls import path

    urlpatterns.append(path("admin/", admin.site.urls))
    try:  # ours: the Prometheus view (upstream has none)
        from django_celery_results.metrics import metrics_view

        urlpatterns.append(path("metrics/", metrics_view))
    except ImportError:
        pass
    call_command("migrate", verbosity=0)
    if os.environ.get("BENCH_CATCH_UP"):
        from django_celery_results.models import TaskResult

        began = time.perf_counter()
        call_command("celery_results_history", "--quiet", stdout=sys.stderr)
        counted = TaskResult.objects.filter(rolled_up=True).count()
        print(json.dumps({"catch_up": {"rows": counted, "s": time.perf_counter() - began}}))
        return
    user = User.objects.filter(username="bench").first()
    if user is None:
        user = User.objects.create_superuser("bench", "bench@example.com", "bench")
    client = Client()
    client.force_login(user)
    pages: dict[str, str] = json.loads(os.environ["BENCH_PAGES"])
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    timings: dict[str, Any] = {}
    for name, url in pages.items():
        spent = []
        status = client.get(url).status_code  # warm: templates compiled, plans cached
        for _ in range(repeats):
            began = time.perf_counter()
            response = client.get(url)
            spent.append((time.perf_counter() - began) * 1000)
            status = response.status_code
        timings[name] = {"ms": statistics.median(spent), "status": status}
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
