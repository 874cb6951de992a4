"""Add retries and queue, written with result_extended (Celery's SQLAlchemy backend has both).

Additive and nullable: rows written before keep NULL, and upstream's code, which does not
know the columns, keeps working on a database migrated this far.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("django_celery_results", "0014_alter_taskresult_status")]

    operations = [
        migrations.AddField(
            model_name="taskresult",
            name="retries",
            field=models.PositiveIntegerField(
                blank=True,
                default=None,
                help_text="Number of times the task was retried before this state",
                null=True,
                verbose_name="Retries",
            ),
        ),
        migrations.AddField(
            model_name="taskresult",
            name="queue",
            field=models.CharField(
                blank=True,
                default=None,
                help_text="Name of the queue (routing key) the task was delivered to",
                max_length=255,
                null=True,
                verbose_name="Queue",
            ),
        ),
    ]
