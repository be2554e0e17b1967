from django.apps import AppConfig


class SourcesConfig(AppConfig):
    """Sources: crawled systems (PostgreSQL catalogs, dbt artifacts), their schedules and runs, and the applier
    that writes what a reader saw (``connectors.sources``) into the catalog and lineage."""

    name = "sources"
    verbose_name = "Sources"
    default_auto_field = "django.db.models.BigAutoField"
