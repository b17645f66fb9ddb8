"""``Authorization: Bearer <api key>`` authentication for the API."""

from django.db import DEFAULT_DB_ALIAS, connection
from rest_framework import authentication, exceptions

from accounts.models import Account, ApiKey

_KEY_FIELDS = [field.attname for field in ApiKey._meta.concrete_fields]
_ACCOUNT_FIELDS = [field.attname for field in Account._meta.concrete_fields]
# Every API request runs this: written once as SQL rather than compiled by
# the ORM per request (ApiKey.objects.active().select_related("account")),
# which cost more CPU than the query itself.
_ACTIVE_KEY_SQL = (
    "SELECT "
    + ", ".join([f"k.{connection.ops.quote_name(name)}" for name in _KEY_FIELDS])
    + ", "
    + ", ".join([f"a.{connection.ops.quote_name(name)}" for name in _ACCOUNT_FIELDS])
    + f" FROM {ApiKey._meta.db_table} k JOIN {Account._meta.db_table} a ON a.id = k.account_id"
    " WHERE k.prefix = %s AND k.revoked_at IS NULL"
)


def active_key_by_prefix(prefix: str) -> ApiKey | None:
    """The unrevoked key with this prefix, its account loaded, or None."""
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_KEY_SQL, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    api_key = ApiKey.from_db(DEFAULT_DB_ALIAS, _KEY_FIELDS, row[: len(_KEY_FIELDS)])
    api_key.account = Account.from_db(DEFAULT_DB_ALIAS, _ACCOUNT_FIELDS, row[len(_KEY_FIELDS) :])
    return api_key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate by API key; ``request.user`` is the key's Account, ``request.auth`` the key.

    Every failure (missing, malformed, unknown, revoked) is the same 401 so the
    answer tells an attacker nothing about which keys exist.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        try:
            keyword, raw_key = header.decode("ascii").split(" ", 1)
        except (UnicodeDecodeError, ValueError):
            raise self.failure() from None
        if keyword.lower() != self.keyword.lower():
            raise self.failure()
        raw_key = raw_key.strip()
        parts = ApiKey.split_key(raw_key)
        if parts is None:
            raise self.failure()
        api_key = active_key_by_prefix(parts[0])
        if api_key is None or not api_key.matches(raw_key):
            raise self.failure()
        return api_key.account, api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'

    @staticmethod
    def failure():
        return exceptions.AuthenticationFailed("Invalid or revoked API key.")
