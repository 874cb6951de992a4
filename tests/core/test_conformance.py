"""The conformance suite against the generic driver, on every database leg."""

from django_celery_results.testing.suite import *  # noqa: F403
