"""Admin operations: jobs, per-action permissions, retry links, prefix-searchable columns.

``AdminJob`` and ``AdminJobItem`` hold the admin's background actions; ``retry_of`` links
a retry to the run it retries (nullable, added without rewriting the table); Retry and
Revoke get their own permissions. The four columns the admin's search matches by prefix
get PostgreSQL's pattern operators (``LIKE 'prefix%'`` outside the C collation).

Not atomic: PostgreSQL builds each index ``CONCURRENTLY``; MySQL and MariaDB build the new
one ``ALGORITHM=INPLACE, LOCK=NONE``. Writes go on while a large table is indexed.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from django_celery_results.schema import AddIndexOnline, PatternIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('django_celery_results', '0021_worker_registry'),
    ]

    operations = [
        migrations.CreateModel(
            name='AdminJob',
            fields=[
                ('id', models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('token', models.CharField(max_length=32, unique=True)),
                ('key', models.CharField(default=None, max_length=64, null=True, unique=True)),
                ('action', models.CharField(max_length=20)),
                ('options', models.TextField(default='{}')),
                ('query', models.TextField(default='')),
                ('user_id', models.IntegerField(null=True)),
                ('username', models.CharField(default='', max_length=150)),
                ('state', models.CharField(default='queued', max_length=20)),
                ('total', models.IntegerField(default=0)),
                ('done', models.IntegerField(default=0)),
                ('skipped', models.IntegerField(default=0)),
                ('failed', models.IntegerField(default=0)),
                ('skipped_why', models.TextField(default='{}')),
                ('error', models.TextField(default='')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('beat_at', models.DateTimeField(null=True)),
                ('finished_at', models.DateTimeField(null=True)),
            ],
            options={
                'verbose_name': 'admin job',
                'verbose_name_plural': 'admin jobs',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='AdminJobItem',
            fields=[
                ('id', models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('result_id', models.BigIntegerField()),
            ],
            options={
                'verbose_name': 'admin job item',
                'verbose_name_plural': 'admin job items',
            },
        ),
        migrations.AlterModelOptions(
            name='taskresult',
            options={'ordering': ['-date_done'], 'permissions': [('terminate_taskresult', 'Can terminate running tasks'), ('retry_taskresult', 'Can retry tasks'), ('revoke_taskresult', 'Can revoke tasks')], 'verbose_name': 'task result', 'verbose_name_plural': 'task results'},
        ),
        migrations.AddField(
            model_name='taskresult',
            name='retry_of',
            field=models.CharField(default=None, editable=False, max_length=getattr(settings, 'DJANGO_CELERY_RESULTS_TASK_ID_MAX_LENGTH', 255), null=True, verbose_name='Retry of'),
        ),
        PatternIndexOnline(
            model_name='taskresult',
            old=models.Index(fields=['task_name'], name='django_cele_task_na_08aec9_idx'),
            new=models.Index(fields=['task_name'], name='django_cele_task_na_08aec9_idx', opclasses=['varchar_pattern_ops']),
        ),
        PatternIndexOnline(
            model_name='taskresult',
            old=models.Index(fields=['worker'], name='django_cele_worker_d54dd8_idx'),
            new=models.Index(fields=['worker'], name='django_cele_worker_d54dd8_idx', opclasses=['varchar_pattern_ops']),
        ),
        PatternIndexOnline(
            model_name='taskresult',
            old=models.Index(fields=['periodic_task_name'], name='django_cele_periodi_1993cf_idx'),
            new=models.Index(fields=['periodic_task_name'], name='django_cele_periodi_1993cf_idx', opclasses=['varchar_pattern_ops']),
        ),
        PatternIndexOnline(
            model_name='taskresult',
            old=models.Index(fields=['exception_type'], name='django_cele_excepti_0c5e3a_idx'),
            new=models.Index(fields=['exception_type'], name='django_cele_excepti_0c5e3a_idx', opclasses=['varchar_pattern_ops']),
        ),
        AddIndexOnline(
            model_name='taskresult',
            index=models.Index(fields=['retry_of'], name='django_cele_retry_of_idx'),
        ),
        migrations.AddField(
            model_name='adminjobitem',
            name='job',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='items', to='django_celery_results.adminjob'),
        ),
        migrations.AddIndex(
            model_name='adminjobitem',
            index=models.Index(fields=['job', 'id'], name='django_cele_job_item_idx'),
        ),
    ]
