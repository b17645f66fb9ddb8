import hashlib
import hmac

from django.db import models
from django.db.models.functions import Now

from contacts_project.ids import IdFactory, random_token

KEY_PREFIX = "ck"


class Account(models.Model):
    """A customer of the platform; the tenant every other row belongs to."""

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("acc"), editable=False)
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    # An authenticated API request's ``request.user`` is its Account, so DRF's
    # IsAuthenticated and throttles work without a Django user per API client.
    is_authenticated = True
    is_anonymous = False


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    """A secret that authenticates API calls for one account; only its hash is stored.

    A key reads ``ck_<prefix>_<secret>``. The prefix (12 characters, stored in
    clear, unique) finds the row in one index lookup; the whole key is then
    checked against ``key_hash`` in constant time. Keys carry ~190 bits of
    randomness, so a plain SHA-256 is as strong as a slow password hash here and
    keeps authentication to one cheap query per request.
    """

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("key"), editable=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{KEY_PREFIX}_{self.prefix}_…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @staticmethod
    def split_key(raw_key: str) -> tuple[str, str] | None:
        """Return (prefix, secret) of a well-formed key, else None."""
        parts = raw_key.split("_")
        if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12 or len(parts[2]) != 32:
            return None
        if not (parts[1].isalnum() and parts[2].isalnum() and raw_key.isascii()):
            return None
        return parts[1], parts[2]

    def matches(self, raw_key: str) -> bool:
        return hmac.compare_digest(self.key_hash, self.hash_key(raw_key))

    def assign_new_secret(self) -> str:
        """Give this (unsaved) key a fresh secret; return the plaintext, which is never stored."""
        self.prefix = random_token(12)
        raw_key = f"{KEY_PREFIX}_{self.prefix}_{random_token(32)}"
        self.key_hash = self.hash_key(raw_key)
        return raw_key
