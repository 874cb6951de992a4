"""The Django project ``bench/worker.py`` runs real Celery workers of (ours or upstream's)."""

from .celery import app

__all__ = ["app"]
