"""One index fewer to write per schema field: ``field_identity`` (dataset, name) serves every lookup by dataset
and the foreign-key checks of a dataset's deletion, so Django's single-column index on ``dataset_id`` only cost a
write per field. Dropped by name (Django's ``AlterField`` would rebuild the table on SQLite); recreated backwards.
The varchar_pattern_ops twin of ``platform``'s index goes too (PostgreSQL): platforms are matched whole.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "catalog_schemafield_dataset_id_d500552b"
PLATFORM_LIKE = "catalog_dataset_platform_d1106356_like"


def _drop_like(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PLATFORM_LIKE}")


def _create_like(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {PLATFORM_LIKE} ON catalog_dataset (platform varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0011_dataset_level_heap_only"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="schemafield",
                    name="dataset",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="fields",
                        to="catalog.dataset",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    [f"DROP INDEX IF EXISTS {INDEX}"],
                    [f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalog_schemafield (dataset_id)"],
                ),
                migrations.RunPython(_drop_like, _create_like),
            ],
        ),
    ]
