"""The ``celery_results_stats`` command."""
