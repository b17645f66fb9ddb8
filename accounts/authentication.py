"""``Authorization: Bearer <api key>`` authentication for the API."""

from rest_framework import authentication, exceptions

from accounts.models import ApiKey


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
        api_key = ApiKey.objects.active().select_related("account").filter(prefix=parts[0]).first()
        if api_key is None or not api_key.matches(raw_key):
            raise self.failure()
        return api_key.account, api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'

    @staticmethod
    def failure():
        return exceptions.AuthenticationFailed("Invalid or revoked API key.")
