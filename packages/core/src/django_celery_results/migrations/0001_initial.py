"""Create TaskResult, as django-celery-results 1.0 did."""

from django.conf import settings
from django.db import migrations, models

# Every id column takes its length from this setting, as upstream's migrations do.
TASK_ID_MAX_LENGTH = getattr(settings, "DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH", 255)

STATE_CHOICES = [
    ("FAILURE", "FAILURE"),
    ("PENDING", "PENDING"),
    ("RECEIVED", "RECEIVED"),
    ("RETRY", "RETRY"),
    ("REVOKED", "REVOKED"),
    ("STARTED", "STARTED"),
    ("SUCCESS", "SUCCESS"),
]


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="TaskResult",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "task_id",
                    models.CharField(
                        max_length=TASK_ID_MAX_LENGTH, unique=True, verbose_name="task id"
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=STATE_CHOICES,
                        default="PENDING",
                        max_length=50,
                        verbose_name="state",
                    ),
                ),
                ("content_type", models.CharField(max_length=128, verbose_name="content type")),
                (
                    "content_encoding",
                    models.CharField(max_length=64, verbose_name="content encoding"),
                ),
                ("result", models.TextField(default=None, editable=False, null=True)),
                ("date_done", models.DateTimeField(auto_now=True, verbose_name="done at")),
                ("traceback", models.TextField(blank=True, null=True, verbose_name="traceback")),
                ("hidden", models.BooleanField(db_index=True, default=False, editable=False)),
                ("meta", models.TextField(default=None, editable=False, null=True)),
            ],
            options={
                "verbose_name": "task result",
                "verbose_name_plural": "task results",
            },
        ),
    ]
