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


class IdempotencyRecord(models.Model):
    """The first response to a POST sent with an ``Idempotency-Key``, replayed to its retries for 24 hours.

    A row is written (claimed) before the view runs, with ``status_code`` null
    while the request is in progress, and completed with the response after.
    ``fingerprint`` (SHA-256 of method, path and body) tells a retry from a
    different request that reuses the key. Keys are scoped to the account, so
    the unique constraint includes it; it also serves lookups by account, so
    the foreign key needs no index of its own.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.TextField(blank=True)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="idempotency_account_key_unique")]
        # ``purge_expired`` deletes by age.
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_at")]

    def __str__(self):
        return f"{self.account_id} {self.key}"


class RateLimitCounter(models.Model):
    """A fixed-window request counter for one bucket (an API key, an admin login source).

    One row per bucket, overwritten when its window rolls over, so the table
    stays as small as the number of active buckets and needs no cleanup on the
    hot path. The table is UNLOGGED (see the migration): counters are
    disposable, and a commit that touched only unlogged tables does not wait
    for a WAL flush.
    """

    bucket = models.CharField(primary_key=True, max_length=64)
    window_start = models.BigIntegerField(help_text="Unix time (seconds) at which the current window began.")
    count = models.IntegerField()

    def __str__(self):
        return f"{self.bucket}: {self.count}"
