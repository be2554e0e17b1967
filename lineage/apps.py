from django.apps import AppConfig


class LineageConfig(AppConfig):
    """Lineage: OpenLineage ingestion, graph queries and classification propagation."""

    name = "lineage"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from steward.chunked import install_dev_server_support

        install_dev_server_support()  # the Java client's chunked events, under `make run` too
        from catalog.signals import model_versions_changed, tags_changed
        from lineage import receivers
        from lineage.metrics import inbox_backlog, propagation_backlog
        from steward import metrics
        from steward.registry import TagSource, registry

        metrics.add_gauge_source(propagation_backlog)
        metrics.add_gauge_source(inbox_backlog)

        registry.add_tag_source(
            TagSource(
                levels=receivers.propagated_levels,
                holders=receivers.propagated_holders,
                keys=receivers.propagated_keys,
                levels_sql=receivers.propagated_levels_sql,
            )
        )
        tags_changed.connect(receivers.on_tags_changed, dispatch_uid="lineage.on_tags_changed")
        from django.db.models.signals import post_delete, pre_delete

        from catalog.models import Dataset, Tag
        from lineage import history

        pre_delete.connect(receivers.on_dataset_deleting, sender=Dataset, dispatch_uid="lineage.dataset_deleting")
        model_versions_changed.connect(receivers.on_model_versions_changed, dispatch_uid="lineage.on_mv_changed")

        history.register()
        # A deleted tag leaves the declassifications that named it: keep their history.
        pre_delete.connect(receivers.on_tag_deleting, sender=Tag, dispatch_uid="lineage.tag_deleting")
        post_delete.connect(receivers.on_tag_deleted, sender=Tag, dispatch_uid="lineage.tag_deleted")
