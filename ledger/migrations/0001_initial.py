"""Adopt the audit and history models from governance, keeping their tables."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("governance", "0007_compliance_reports")]

    operations = [
        # State only: the tables exist already (created by governance); the database is not touched.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AuditHead',
                    fields=[
                        ('id', models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                        ('last_hash', models.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                    ],
                    options={
                        'db_table': 'governance_audithead',
                    },
                ),
                migrations.CreateModel(
                    name='AuditEvent',
                    fields=[
                        ('seq', models.BigAutoField(primary_key=True, serialize=False)),
                        ('at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('actor_id', models.BigIntegerField(blank=True, null=True)),
                        ('actor_name', models.CharField(blank=True, max_length=150)),
                        ('action', models.CharField(db_index=True, max_length=80)),
                        ('target_type', models.CharField(blank=True, max_length=50)),
                        ('target_id', models.CharField(blank=True, db_index=True, max_length=64)),
                        ('target_repr', models.CharField(blank=True, max_length=600)),
                        ('request_id', models.CharField(blank=True, max_length=64)),
                        ('before', models.JSONField(blank=True, null=True)),
                        ('after', models.JSONField(blank=True, null=True)),
                        ('reason', models.TextField(blank=True)),
                        ('prev_hash', models.CharField(max_length=64)),
                        ('hash', models.CharField(max_length=64)),
                    ],
                    options={
                        'db_table': 'governance_auditevent',
                        'ordering': ['seq'],
                        'indexes': [models.Index(fields=['target_type', 'target_id', 'seq'], name='governance__target__9c1ce2_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='HistoryRecord',
                    fields=[
                        ('id', models.BigAutoField(primary_key=True, serialize=False)),
                        ('kind', models.CharField(max_length=40)),
                        ('key', models.CharField(max_length=64)),
                        ('valid_from', models.DateTimeField()),
                        ('valid_to', models.DateTimeField(blank=True, null=True)),
                        ('state', models.JSONField(blank=True, null=True)),
                        ('digest', models.CharField(max_length=64)),
                    ],
                    options={
                        'db_table': 'governance_historyrecord',
                        'ordering': ['kind', 'key', 'valid_from'],
                        'indexes': [models.Index(fields=['kind', 'key', 'valid_from'], name='history_as_of')],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('valid_to__isnull', True)), fields=('kind', 'key'), name='history_open_once')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
