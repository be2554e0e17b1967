"""Reclassifying a dataset becomes a heap-only (HOT) update: no index on ``effective_classification`` (the plain
and the ``_like`` one), and on PostgreSQL the dataset table keeps half of each page free (``fillfactor``), so that a
propagation that re-levels a whole region writes each new row version beside the old one without touching any of
the table's seven other indexes. Existing pages keep their packing until rewritten (``VACUUM FULL``) or pruned."""

from django.db import migrations, models


def _sql(statement: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0010_search_vector_buckets")]

    operations = [
        migrations.AlterField(
            model_name="dataset", name="effective_classification", field=models.CharField(max_length=16)
        ),
        migrations.RunPython(
            _sql("ALTER TABLE catalog_dataset SET (fillfactor = 50)"),
            _sql("ALTER TABLE catalog_dataset RESET (fillfactor)"),
        ),
    ]
