from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Who is calling: personal API tokens, bearer-token authentication, the OIDC login backend."""

    name = "accounts"
    verbose_name = "Accounts"
    default_auto_field = "django.db.models.BigAutoField"
