"""Management commands: ``celery_results_cleanup`` and ``celery_results_stats``."""
