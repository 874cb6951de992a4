"""Drop the duplicate indexes the original 0009 (release 2.1.0) created.

Databases that ran the rewritten 0009 never had them, so each drop may fail; that is fine.
"""

from django.db import migrations


class TryRemoveIndex(migrations.RemoveIndex):
    """Remove an index if the database has it; never re-add it when reverting."""

    def database_forwards(self, *args, **kwargs):
        """Drop the index, ignoring any error: not every engine raises DatabaseError."""
        try:
            super().database_forwards(*args, **kwargs)
        except Exception:
            pass

    def database_backwards(self, *args, **kwargs):
        """Re-create nothing: the index was a duplicate."""


class Migration(migrations.Migration):
    dependencies = [("django_celery_results", "0009_groupresult")]

    operations = [
        TryRemoveIndex(model_name="chordcounter", name="django_cele_group_i_299b0d_idx"),
        TryRemoveIndex(model_name="groupresult", name="django_cele_group_i_3cddec_idx"),
        TryRemoveIndex(model_name="taskresult", name="django_cele_task_id_7f8fca_idx"),
    ]
