from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    """Workspaces: the model, quotas, the API and the reconciler that drives connectors (connectors.workspaces)."""

    name = "workspaces"
    verbose_name = "Workspaces"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.signals import grant_changed
        from steward.registry import registry
        from workspaces import receivers

        grant_changed.connect(receivers.on_grant_changed, dispatch_uid="workspaces.on_grant_changed")
        registry.add_workspace_authority(receivers.may_act_for)
