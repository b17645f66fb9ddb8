"""Writes for accounts and API keys."""

from django.db import transaction
from django.db.models.functions import Now

from accounts.models import Account, ApiKey


def api_key_create(*, account: Account, name: str = "") -> tuple[ApiKey, str]:
    """Create a key for ``account``; return it with the plaintext, which is never stored."""
    raw_key, prefix = ApiKey.generate()
    api_key = ApiKey.objects.create(account=account, name=name, prefix=prefix, key_hash=ApiKey.hash_key(raw_key))
    return api_key, raw_key


@transaction.atomic
def account_get_or_create_with_key(*, name: str, key_name: str = "") -> tuple[Account, bool, ApiKey, str]:
    account, created = Account.objects.get_or_create(name=name)
    api_key, raw_key = api_key_create(account=account, name=key_name)
    return account, created, api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> None:
    """Revoke a key: it answers 401 from the next request on. Idempotent."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=Now())
    api_key.refresh_from_db(fields=["revoked_at"])
