from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """The ground floor: the hash-chained audit log, valid-time history and the audit action registry.

    Imports no other Steward app; every app records into it.
    """

    name = "ledger"
    verbose_name = "Ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        # Every app's ``actions.py`` registers its audit action names (ledger.actions).
        autodiscover_modules("actions")
