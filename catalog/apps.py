from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from steward import lookups

        lookups.register()  # ``__any_of`` for every app's UUID keys

        from catalog import history

        history.register()
