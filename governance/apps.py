from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Governance: identity and roles, policy, access requests, grants, decisions, audit."""

    name = "governance"
    verbose_name = "Governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_migrate, pre_delete

        from catalog.models import Dataset
        from catalog.signals import effective_classification_changed
        from governance import history_kinds, receivers
        from governance.signals import grant_changed
        from steward.registry import registry

        history_kinds.register()
        # The policy version a migration stores (version 1) enters history when migrations finish.
        post_migrate.connect(receivers.on_post_migrate, sender=self, dispatch_uid="governance.policy_history")

        registry.add_reader_source(receivers.grant_holders_q)
        effective_classification_changed.connect(
            receivers.on_effective_classification_changed, dispatch_uid="governance.on_reclassified"
        )
        grant_changed.connect(receivers.on_grant_changed, dispatch_uid="governance.dataplane_remove")
        # Grants and requests deleted or changed by a cascade keep their history too.
        user_model = get_user_model()
        pre_delete.connect(receivers.on_dataset_deleting, sender=Dataset, dispatch_uid="governance.dataset_deleting")
        post_delete.connect(receivers.on_deleted, sender=Dataset, dispatch_uid="governance.dataset_deleted")
        pre_delete.connect(receivers.on_user_deleting, sender=user_model, dispatch_uid="governance.user_deleting")
        post_delete.connect(receivers.on_deleted, sender=user_model, dispatch_uid="governance.user_deleted")
