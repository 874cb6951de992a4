"""Create GroupResult and replace the automatic indexes with explicitly named ones.

Release 2.1.0 of this migration also indexed the unique id columns, which duplicated
their unique indexes and broke Oracle. It was rewritten in place for 2.2.0: those three
operations are now ``FakeAddIndex``, which only changes the migration state, and 0010
drops the indexes from databases that ran the original.
"""

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


class FakeAddIndex(migrations.AddIndex):
    """An AddIndex that changes the migration state only, never the database."""

    def database_forwards(self, *args, **kwargs):
        """Create nothing: the unique constraint already indexes the column."""

    def database_backwards(self, *args, **kwargs):
        """Drop nothing: 0010 cleans up databases that ran the original 0009."""


def named_index(model_name, field, name, operation=migrations.AddIndex):
    """Return an index operation on one field, with the name Django gave it in 2021."""
    return operation(model_name=model_name, index=models.Index(fields=[field], name=name))


class Migration(migrations.Migration):
    dependencies = [("django_celery_results", "0008_chordcounter")]

    operations = [
        migrations.CreateModel(
            name="GroupResult",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "group_id",
                    models.CharField(
                        help_text="Celery ID for the Group that was run",
                        max_length=TASK_ID_MAX_LENGTH,
                        unique=True,
                        verbose_name="Group ID",
                    ),
                ),
                (
                    "date_created",
                    models.DateTimeField(
                        auto_now_add=True,
                        help_text="Datetime field when the group result was created in UTC",
                        verbose_name="Created DateTime",
                    ),
                ),
                (
                    "date_done",
                    models.DateTimeField(
                        auto_now=True,
                        help_text="Datetime field when the group was completed in UTC",
                        verbose_name="Completed DateTime",
                    ),
                ),
                (
                    "content_type",
                    models.CharField(
                        help_text="Content type of the result data",
                        max_length=128,
                        verbose_name="Result Content Type",
                    ),
                ),
                (
                    "content_encoding",
                    models.CharField(
                        help_text="The encoding used to save the task result data",
                        max_length=64,
                        verbose_name="Result Encoding",
                    ),
                ),
                (
                    "result",
                    models.TextField(
                        default=None,
                        editable=False,
                        help_text=(
                            "The data returned by the task.  "
                            "Use content_encoding and content_type fields to read."
                        ),
                        null=True,
                        verbose_name="Result Data",
                    ),
                ),
            ],
            options={
                "verbose_name": "group result",
                "verbose_name_plural": "group results",
                "ordering": ["-date_done"],
            },
        ),
        migrations.AlterField(
            model_name="chordcounter",
            name="group_id",
            field=models.CharField(
                help_text="Celery ID for the Chord header group",
                max_length=TASK_ID_MAX_LENGTH,
                unique=True,
                verbose_name="Group ID",
            ),
        ),
        migrations.AlterField(
            model_name="taskresult",
            name="date_created",
            field=models.DateTimeField(
                auto_now_add=True,
                help_text="Datetime field when the task result was created in UTC",
                verbose_name="Created DateTime",
            ),
        ),
        migrations.AlterField(
            model_name="taskresult",
            name="date_done",
            field=models.DateTimeField(
                auto_now=True,
                help_text="Datetime field when the task was completed in UTC",
                verbose_name="Completed DateTime",
            ),
        ),
        migrations.AlterField(
            model_name="taskresult",
            name="status",
            field=models.CharField(
                choices=STATE_CHOICES,
                default="PENDING",
                help_text="Current state of the task being run",
                max_length=50,
                verbose_name="Task State",
            ),
        ),
        migrations.AlterField(
            model_name="taskresult",
            name="task_id",
            field=models.CharField(
                help_text="Celery ID for the Task that was run",
                max_length=TASK_ID_MAX_LENGTH,
                unique=True,
                verbose_name="Task ID",
            ),
        ),
        migrations.AlterField(
            model_name="taskresult",
            name="task_name",
            field=models.CharField(
                help_text="Name of the Task which was run",
                max_length=TASK_ID_MAX_LENGTH,
                null=True,
                verbose_name="Task Name",
            ),
        ),
        migrations.AlterField(
            model_name="taskresult",
            name="worker",
            field=models.CharField(
                default=None,
                help_text="Worker that executes the task",
                max_length=100,
                null=True,
                verbose_name="Worker",
            ),
        ),
        named_index("chordcounter", "group_id", "django_cele_group_i_299b0d_idx", FakeAddIndex),
        named_index("taskresult", "task_id", "django_cele_task_id_7f8fca_idx", FakeAddIndex),
        named_index("taskresult", "task_name", "django_cele_task_na_08aec9_idx"),
        named_index("taskresult", "status", "django_cele_status_9b6201_idx"),
        named_index("taskresult", "worker", "django_cele_worker_d54dd8_idx"),
        named_index("taskresult", "date_created", "django_cele_date_cr_f04a50_idx"),
        named_index("taskresult", "date_done", "django_cele_date_do_f59aad_idx"),
        named_index("groupresult", "group_id", "django_cele_group_i_3cddec_idx", FakeAddIndex),
        named_index("groupresult", "date_created", "django_cele_date_cr_bd6c1d_idx"),
        named_index("groupresult", "date_done", "django_cele_date_do_caae0e_idx"),
    ]
