"""The example project: Django plus a Celery app whose results go to the database."""

from .celery import app as celery_app

__all__ = ["celery_app"]
