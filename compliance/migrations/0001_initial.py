"""Adopt the compliance report model from governance, keeping its table."""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("governance", "0007_compliance_reports"), migrations.swappable_dependency(settings.AUTH_USER_MODEL)]

    operations = [
        # State only: the tables exist already (created by governance); the database is not touched.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ComplianceReport',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('query', models.JSONField()),
                        ('at', models.DateTimeField(help_text='The instant reconstructed.')),
                        ('requested_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('bundle', models.JSONField()),
                        ('digest', models.CharField(max_length=64)),
                        ('requested_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'governance_compliancereport',
                        'ordering': ['-requested_at'],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
