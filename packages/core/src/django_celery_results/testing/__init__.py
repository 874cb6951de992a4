"""The driver conformance suite: a pytest plugin and test modules every driver must pass.

A driver's test folder loads the plugin and imports the suite::

    # conftest.py
    pytest_plugins = ["django_celery_results.testing.plugin"]

    # test_conformance.py
    from django_celery_results.testing.suite import *  # noqa: F403

See ``docs/writing-a-driver.md``.
"""
