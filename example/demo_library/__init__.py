"""A library of the example project that defines its background work with ``django.tasks``.

It knows nothing of Celery: it decorates plain functions with ``@task``, as third-party
apps do, and the project's ``TASKS`` setting sends them to the Celery workers.
"""
