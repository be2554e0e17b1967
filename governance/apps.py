from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Governance: identity and roles, policy, access requests, grants, decisions, audit."""

    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from catalog.selectors import register_reader_source
        from catalog.signals import effective_classification_changed
        from governance import receivers
        from governance.signals import grant_changed

        register_reader_source(receivers.grant_holders_q)
        effective_classification_changed.connect(
            receivers.on_effective_classification_changed, dispatch_uid="governance.on_reclassified"
        )
        grant_changed.connect(receivers.on_grant_changed, dispatch_uid="governance.dataplane_remove")
