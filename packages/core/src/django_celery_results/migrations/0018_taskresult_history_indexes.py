"""Index exception types, rows by state and age, and the history's queue, without locking.

Not atomic: PostgreSQL builds each index ``CONCURRENTLY``, which cannot run inside a
transaction; MySQL and MariaDB build them ``ALGORITHM=INPLACE, LOCK=NONE``. Writes go on
while a table of millions of rows is indexed.
"""

from django.db import migrations, models

from django_celery_results.schema import AddIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("django_celery_results", "0017_history")]

    operations = [
        AddIndexOnline(
            model_name="taskresult",
            index=models.Index(fields=["status", "date_done"], name="django_cele_status_done_idx"),
        ),
        AddIndexOnline(
            model_name="taskresult",
            index=models.Index(fields=["exception_type"], name="django_cele_excepti_0c5e3a_idx"),
        ),
        AddIndexOnline(
            model_name="taskresult",
            index=models.Index(
                condition=models.Q(rolled_up=False),
                fields=["id"],
                name="django_cele_rolled_up_idx",
            ),
        ),
    ]
