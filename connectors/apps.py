from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """Connectors to the outside world: workspaces, data-plane enforcement, Atlas interop (later issues)."""

    name = "connectors"
    default_auto_field = "django.db.models.BigAutoField"
