"""Add date_created, filled from date_done for existing rows."""

import django.utils.timezone
from django.db import migrations, models


def copy_date_done_to_date_created(apps, schema_editor):
    """Existing rows were created no later than they were done: use that time."""
    TaskResult = apps.get_model("django_celery_results", "taskresult")
    db_alias = schema_editor.connection.alias
    TaskResult.objects.using(db_alias).update(date_created=models.F("date_done"))


class Migration(migrations.Migration):
    dependencies = [("django_celery_results", "0005_taskresult_worker")]

    operations = [
        migrations.AddField(
            model_name="taskresult",
            name="date_created",
            field=models.DateTimeField(
                auto_now_add=True,
                db_index=True,
                default=django.utils.timezone.now,
                help_text="Datetime field when the task result was created in UTC",
                verbose_name="Created DateTime",
            ),
            preserve_default=False,
        ),
        # Backwards there is nothing to undo: the column itself goes away.
        migrations.RunPython(copy_date_done_to_date_created, migrations.RunPython.noop),
    ]
