"""Management commands of django_celery_results."""
