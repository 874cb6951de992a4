"""Remove the soft-delete flag."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("django_celery_results", "0006_taskresult_date_created")]

    operations = [
        migrations.RemoveField(model_name="taskresult", name="hidden"),
    ]
