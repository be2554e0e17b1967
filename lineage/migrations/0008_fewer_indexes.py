"""Fewer indexes to write per ingested event: each foreign key of ``Edge``, ``ColumnEdge`` and ``DatasetVersion``
already leads a composite index (``edge_source_open``, ``coledge_job_open``, ``dataset_version_identity``, …), so
Django's single-column index on it only cost a write per row; and the digests' ``varchar_pattern_ops`` (``_like``)
twins served LIKE queries that no code makes (a digest is matched whole).

The indexes are dropped by name (``DROP INDEX``, the same on SQLite and PostgreSQL; Django's ``AlterField`` would
rebuild each table on SQLite), and recreated by the same names backwards.
"""

import django.db.models.deletion
from django.db import migrations, models

# (index, table, column) of the single-column indexes Django made for the foreign keys.
SINGLE = [
    ("lineage_columnedge_job_id_a91a79b0", "lineage_columnedge", "job_id"),
    ("lineage_columnedge_source_dataset_id_3323a591", "lineage_columnedge", "source_dataset_id"),
    ("lineage_columnedge_target_dataset_id_7c43d0ea", "lineage_columnedge", "target_dataset_id"),
    ("lineage_datasetversion_dataset_id_b4494db9", "lineage_datasetversion", "dataset_id"),
    ("lineage_edge_job_id_b195077d", "lineage_edge", "job_id"),
    ("lineage_edge_source_id_3c2dcd06", "lineage_edge", "source_id"),
    ("lineage_edge_target_id_6d16f26f", "lineage_edge", "target_id"),
]
# PostgreSQL only (Django makes them for a unique varchar there).
LIKE = [
    ("lineage_lineageevent_digest_ec61ac07_like", "lineage_lineageevent", "digest"),
    ("lineage_inboxevent_digest_500c0b25_like", "lineage_inboxevent", "digest"),
]


def _drop_like(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for index, _table, _column in LIKE:
            schema_editor.execute(f"DROP INDEX IF EXISTS {index}")


def _create_like(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for index, table, column in LIKE:
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column} varchar_pattern_ops)")


def _fk(related_name: str, to: str) -> models.ForeignKey:
    return models.ForeignKey(
        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name=related_name, to=to
    )


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0012_fewer_indexes"),
        ("lineage", "0007_inbox"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="columnedge", name="job", field=_fk("column_edges", "lineage.job")),
                migrations.AlterField(
                    model_name="columnedge", name="source_dataset", field=_fk("+", "catalog.dataset")
                ),
                migrations.AlterField(
                    model_name="columnedge", name="target_dataset", field=_fk("+", "catalog.dataset")
                ),
                migrations.AlterField(
                    model_name="datasetversion", name="dataset", field=_fk("versions", "catalog.dataset")
                ),
                migrations.AlterField(model_name="edge", name="job", field=_fk("edges", "lineage.job")),
                migrations.AlterField(model_name="edge", name="source", field=_fk("lineage_out", "catalog.dataset")),
                migrations.AlterField(model_name="edge", name="target", field=_fk("lineage_in", "catalog.dataset")),
            ],
            database_operations=[
                migrations.RunSQL(
                    [f"DROP INDEX IF EXISTS {index}" for index, _table, _column in SINGLE],
                    [f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})" for index, table, column in SINGLE],
                ),
                migrations.RunPython(_drop_like, _create_like),
            ],
        ),
    ]
