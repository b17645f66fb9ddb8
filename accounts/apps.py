from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Registers the OpenAPI description of API-key authentication.
        import contacts_project.api.schema  # noqa: F401
