"""Core's conformance suite against this driver, on every configured database."""

from django_celery_results.testing.suite import *  # noqa: F403
