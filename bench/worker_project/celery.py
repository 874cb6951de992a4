"""The benchmark's Celery app, configured from the project's settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "worker_project.settings")

app = Celery("worker_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["worker_project"])
