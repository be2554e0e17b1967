"""PostgreSQL-only search structures: a weighted tsvector (generated) GIN indexes (facet values, trigram vocabulary).

On SQLite this migration does nothing; the database search backend uses its SQLite dialect there.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """
    ALTER TABLE catalog_searchentry ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(name_text, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(columns_text, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(body_text, '')), 'C')
    ) STORED
    """,
    "CREATE INDEX catalog_searchentry_vector_gin ON catalog_searchentry USING gin (search_vector)",
    # Name words on their own: a weight-restricted query on search_vector would recheck every heap row.
    """
    ALTER TABLE catalog_searchentry ADD COLUMN name_vector tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', coalesce(name_text, ''))
    ) STORED
    """,
    "CREATE INDEX catalog_searchentry_name_vector_gin ON catalog_searchentry USING gin (name_vector)",
    "CREATE INDEX catalog_searchentry_facets_gin ON catalog_searchentry USING gin (facet_values jsonb_path_ops)",
    "CREATE INDEX catalog_searchword_trgm ON catalog_searchword USING gin (word gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS catalog_searchword_trgm",
    "DROP INDEX IF EXISTS catalog_searchentry_facets_gin",
    "DROP INDEX IF EXISTS catalog_searchentry_name_vector_gin",
    "ALTER TABLE catalog_searchentry DROP COLUMN IF EXISTS name_vector",
    "DROP INDEX IF EXISTS catalog_searchentry_vector_gin",
    "ALTER TABLE catalog_searchentry DROP COLUMN IF EXISTS search_vector",
]


def _run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
