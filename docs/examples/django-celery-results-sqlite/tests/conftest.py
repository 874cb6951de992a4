"""Load core's pytest plugin: the fixtures and markers of the conformance suite."""

pytest_plugins = ["django_celery_results.testing.plugin"]
