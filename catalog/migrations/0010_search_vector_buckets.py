"""PostgreSQL only: the search vector's GIN index also split into 8 partial indexes, buckets of runs of 8,192 ids.

A broad query needs only ``exact_limit`` + 1 of its matches (for the capped total and facet counts), but a GIN
bitmap scan computes every match first: reading the buckets one by one until the sample is full (``UNION ALL``
under a ``LIMIT``) reads an eighth of the index for a query matching more than one entry in 8. Runs of ids, not
``mod(id, 8)``: entries written together lie together, so a bucket's bitmap covers an eighth of the table's pages
too (with ``mod(id, 8)`` every bucket touched every page, and a query matching few entries cost twice as much).
``catalog.search.backends.database.SAMPLE_BUCKETS`` and ``BUCKET_RUN`` must match the numbers here.
"""

from django.db import migrations

BUCKETS = 8
RUN = 8192
FORWARD = [
    f"CREATE INDEX catalog_searchentry_vector_b{k} ON catalog_searchentry USING gin (search_vector) "
    f"WHERE mod(id / {RUN}, {BUCKETS}) = {k}"
    for k in range(BUCKETS)
]
BACKWARD = [f"DROP INDEX IF EXISTS catalog_searchentry_vector_b{k}" for k in range(BUCKETS)]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("catalog", "0009_dataset_name_namespace")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
