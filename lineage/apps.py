from django.apps import AppConfig


class LineageConfig(AppConfig):
    """Lineage: OpenLineage ingestion, graph queries and classification propagation (see issue: Lineage)."""

    name = "lineage"
    default_auto_field = "django.db.models.BigAutoField"
