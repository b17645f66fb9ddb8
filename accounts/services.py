"""Writes for accounts and API keys."""

from django.db import transaction
from django.db.models.functions import Now

from accounts.authentication import forget_recent_keys
from accounts.models import Account, ApiKey


def api_key_create(*, account: Account, name: str = "") -> tuple[ApiKey, str]:
    """Create a key for ``account``; return it with the plaintext, which is never stored."""
    api_key = ApiKey(account=account, name=name)
    raw_key = api_key.assign_new_secret()
    api_key.save(force_insert=True)
    return api_key, raw_key


@transaction.atomic
def account_get_or_create_with_key(*, name: str, key_name: str = "") -> tuple[Account, bool, ApiKey, str]:
    account, created = Account.objects.get_or_create(name=name)
    api_key, raw_key = api_key_create(account=account, name=key_name)
    return account, created, api_key, raw_key


def api_keys_revoke(*, keys) -> int:
    """Revoke the keys of a queryset. Idempotent.

    They answer 401 from this process's next request on, and from the other
    server processes' within ``API_KEY_CACHE_SECONDS`` (accounts.authentication).
    """
    revoked = keys.filter(revoked_at__isnull=True).update(revoked_at=Now())
    forget_recent_keys()
    return revoked


def api_key_revoke(*, api_key: ApiKey) -> None:
    api_keys_revoke(keys=ApiKey.objects.filter(pk=api_key.pk))
    api_key.refresh_from_db(fields=["revoked_at"])
