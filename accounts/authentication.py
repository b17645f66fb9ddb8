"""``Authorization: Bearer <api key>`` authentication for the API.

A key found in the database is remembered by the process that looked it up
for ``API_KEY_CACHE_SECONDS`` (default 5): the key lookup was one of the
few statements of every request, and the hottest reads are a single
primary-key lookup besides. Each request still checks the whole key against
the remembered hash, in constant time; unknown keys are never remembered, so
guessing costs a query each time and fills nothing. What the cache trades is
revocation latency: a key revoked by this process (``api_keys_revoke``) stops
at once here, and in the other server processes within those seconds. Set 0
to look every key up on every request.
"""

import threading
import time

from django.conf import settings
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


# prefix -> (monotonic time it was read, the key with its account)
_recent_keys: dict[str, tuple[float, ApiKey]] = {}
_recent_keys_lock = threading.Lock()
# A bound on memory, not a working-set size: past it the cache starts over.
RECENT_KEYS_MAX = 10_000


def forget_recent_keys() -> None:
    """Drop this process's remembered keys (after a revocation, or between tests)."""
    with _recent_keys_lock:
        _recent_keys.clear()


def recent_active_key(prefix: str) -> ApiKey | None:
    """``active_key_by_prefix``, remembered for ``API_KEY_CACHE_SECONDS`` when found."""
    lifetime = settings.API_KEY_CACHE_SECONDS
    if lifetime <= 0:
        return active_key_by_prefix(prefix)
    now = time.monotonic()
    remembered = _recent_keys.get(prefix)
    if remembered is not None and now - remembered[0] < lifetime:
        return remembered[1]
    api_key = active_key_by_prefix(prefix)
    with _recent_keys_lock:
        if api_key is None:
            _recent_keys.pop(prefix, None)
        else:
            if len(_recent_keys) >= RECENT_KEYS_MAX:
                _recent_keys.clear()
            _recent_keys[prefix] = (now, api_key)
    return api_key


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
        """``request`` is DRF's or Django's (the plain read in contacts_project/api/viewsets.py)."""
        # META rather than DRF's get_authorization_header(), which builds
        # ``request.headers`` (every header) to read one.
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        if not header:
            return None
        try:
            if not header.isascii():
                raise ValueError
            keyword, raw_key = header.split(" ", 1)
        except ValueError:
            raise self.failure() from None
        if keyword.lower() != self.keyword.lower():
            raise self.failure()
        raw_key = raw_key.strip()
        parts = ApiKey.split_key(raw_key)
        if parts is None:
            raise self.failure()
        api_key = recent_active_key(parts[0])
        if api_key is None or not api_key.matches(raw_key):
            raise self.failure()
        return api_key.account, api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'

    @staticmethod
    def failure():
        return exceptions.AuthenticationFailed("Invalid or revoked API key.")
