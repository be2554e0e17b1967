from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    """The roof: reconstruction of what was true at an instant, and the reports handed to auditors.

    Reads every other app; only URLs and the frontend import it.
    """

    name = "compliance"
    verbose_name = "Compliance"
    default_auto_field = "django.db.models.BigAutoField"
