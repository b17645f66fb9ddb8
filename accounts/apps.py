from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


def _forget_recent_keys(sender, **kwargs):
    from accounts.authentication import forget_recent_keys

    forget_recent_keys()


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Registers the OpenAPI description of API-key authentication.
        import contacts_project.api.schema  # noqa: F401
        from accounts.models import Account, ApiKey

        # A key changed or deleted in this process (the admin; an account
        # deleted with its keys) stops answering here at once. Revocations go
        # through api_keys_revoke, a queryset update, which forgets them itself.
        for model in (Account, ApiKey):
            for signal in (post_save, post_delete):
                signal.connect(_forget_recent_keys, sender=model, dispatch_uid=f"forget-keys-{model.__name__}")
