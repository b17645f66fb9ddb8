"""Rate limits: per API key on the API, per client IP and username on the admin login.

Counting is by fixed window, one counter per bucket (``key:<api key id>``,
``login:<hash of ip and username>``). A fixed window answers the IETF
``RateLimit-*`` headers exactly (remaining = limit - count, reset = the end of
the window) with one increment per request, the same on both stores. Its known
weakness, a client squeezing up to twice the limit across a window boundary,
does not matter for a limit meant to stop runaway clients and brute force. A
sliding window would need a second counter read per request and only
approximate headers. Each bucket's windows are offset by a hash of its name,
so throttled clients of different keys do not all come back at the same
second.

Stores, shared by every worker process:

* PostgreSQL (the default): ``accounts.RateLimitCounter``, an UNLOGGED table
  of one row per bucket, incremented by one ``INSERT … ON CONFLICT DO UPDATE``
  that restarts the count when the window has rolled over. Old windows are
  overwritten in place, so nothing accumulates for API keys; counters of
  admin login sources nobody retries are deleted by ``manage.py purge_expired``.
* Redis when ``REDIS_URL`` is set: one key per bucket and window, ``INCR`` and
  ``EXPIREAT`` in one round trip; Redis expires old windows itself.

A store that fails (unreachable, timed out) fails open: the request is served
unlimited and a warning is logged, at most every 10 seconds per process.
Refusing traffic because the limiter is down would turn a limiter outage into
a full outage.

Each process batches its hits (``BatchedCounts``). One store write per
request was a third of the statements of a primary-key read, so a process
adds its hits to the store once they reach 1% of the limit, or once a second,
whichever comes first, and answers in between from the store's last count
plus its own hits since. Once a bucket's count reaches 90% of the limit, its
every hit goes to the store. So limits of 100 or less are counted exactly;
above that, ``RateLimit-Remaining`` may lag the other processes' hits of the
last second, and a key can overshoot its limit by at most 1% of it per server
process (in which the hits of the last second are included).
"""

import abc
import hashlib
import logging
import threading
import time
import zlib
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from rest_framework.throttling import BaseThrottle

from accounts.models import RateLimitCounter

logger = logging.getLogger(__name__)

API_WINDOW_SECONDS = 60
FAILURE_LOG_INTERVAL_SECONDS = 10
# Batching (module docstring): a process writes its hits to the store when
# they reach 1/BATCH_DIVISOR of the limit, after SYNC_SECONDS, or on every
# hit once the count is within 1 - EXACT_FROM of the limit.
BATCH_DIVISOR = 100
SYNC_SECONDS = 1.0
EXACT_FROM = 0.9


@dataclass(frozen=True)
class Usage:
    """A bucket's count in its current window, and what it means for the client."""

    limit: int
    count: int
    reset: int  # seconds until the window ends, at least 1

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def headers(self) -> dict[str, str]:
        # draft-ietf-httpapi-ratelimit-headers: the quota, what is left of it,
        # and the seconds until it is restored.
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


def window_start(bucket: str, window: int, now: int) -> int:
    """The start (Unix seconds) of ``bucket``'s window that contains ``now``."""
    offset = zlib.crc32(bucket.encode()) % window
    return now - (now - offset) % window


class Store(abc.ABC):
    """Where counters live. ``errors`` are the exceptions that mean "unavailable": fail open."""

    errors: tuple[type[BaseException], ...] = ()
    _failure_logged_at = float("-inf")

    @abc.abstractmethod
    def hit(self, bucket: str, start: int, window: int, amount: int = 1) -> int:
        """Count ``amount`` more in ``bucket``'s window starting at ``start``; return the new count."""

    @abc.abstractmethod
    def count(self, bucket: str, start: int) -> int:
        """The count in ``bucket``'s window starting at ``start``, without adding to it."""

    def report_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._failure_logged_at >= FAILURE_LOG_INTERVAL_SECONDS:
            self._failure_logged_at = now
            logger.warning("rate-limit store %s unavailable, not limiting: %s", type(self).__name__, exc)


class PostgresStore(Store):
    errors = (DatabaseError,)
    table = RateLimitCounter._meta.db_table
    # A newer window restarts the count; a hit computed for an older window (a
    # worker whose clock lags) counts in the newer one instead of resetting it.
    hit_sql = f"""
        INSERT INTO {table} AS c (bucket, window_start, count) VALUES (%s, %s, %s)
        ON CONFLICT (bucket) DO UPDATE SET
            count = CASE WHEN EXCLUDED.window_start > c.window_start THEN EXCLUDED.count
                         ELSE c.count + EXCLUDED.count END,
            window_start = GREATEST(c.window_start, EXCLUDED.window_start)
        RETURNING count
    """

    def hit(self, bucket, start, window, amount=1):
        # The API runs in autocommit, so this is one statement and one commit;
        # the table is UNLOGGED, so the commit does not wait for a WAL flush.
        with connection.cursor() as cursor:
            cursor.execute(self.hit_sql, [bucket, start, amount])
            return cursor.fetchone()[0]

    def count(self, bucket, start):
        counts = RateLimitCounter.objects.filter(bucket=bucket, window_start__gte=start).values_list("count", flat=True)
        return next(iter(counts), 0)

    def purge(self, *, older_than: int) -> int:
        """Delete counters whose window started before ``older_than`` (Unix seconds)."""
        deleted, _ = RateLimitCounter.objects.filter(window_start__lt=older_than).delete()
        return deleted


class RedisStore(Store):
    errors = (redis.RedisError, OSError)
    key_prefix = "contacts:ratelimit:"

    def __init__(self, url: str):
        # Short timeouts: a Redis that does not answer costs a request a
        # quarter of a second at most before it is served unlimited.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=0.25)

    def hit(self, bucket, start, window, amount=1):
        key = f"{self.key_prefix}{bucket}:{start}"
        pipeline = self.client.pipeline(transaction=False)
        pipeline.incrby(key, amount)
        pipeline.expireat(key, start + window + 1)
        count, _ = pipeline.execute()
        return count

    def count(self, bucket, start):
        return int(self.client.get(f"{self.key_prefix}{bucket}:{start}") or 0)


_stores: dict[str, Store] = {}


def get_store() -> Store:
    """Redis when ``REDIS_URL`` is set, else PostgreSQL; one client per process (and per URL, for tests)."""
    url = settings.REDIS_URL
    store = _stores.get(url)
    if store is None:
        store = _stores[url] = RedisStore(url) if url else PostgresStore()
    return store


@dataclass
class _Bucket:
    """A bucket's window as this process sees it."""

    start: int
    stored: int = 0  # the store's count when this process last wrote to it
    pending: int = 0  # this process's hits since, not yet in the store
    synced_at: float = float("-inf")  # time.monotonic() of that write


class BatchedCounts:
    """This process's hits, added to the store in batches (module docstring)."""

    # A bound on memory: past it, buckets whose window has ended are dropped.
    MAX_BUCKETS = 10_000

    def __init__(self):
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._buckets.clear()

    def hit(self, store: Store, bucket: str, *, start: int, window: int, limit: int) -> int:
        """Count one hit; return the bucket's count as far as this process knows. Raises ``store.errors``."""
        batch = max(1, limit // BATCH_DIVISOR)
        now = time.monotonic()
        with self._lock:
            state = self._buckets.get(bucket)
            if state is None or state.start != start:
                if state is None and len(self._buckets) >= self.MAX_BUCKETS:
                    self._drop_ended(start)
                state = self._buckets[bucket] = _Bucket(start)
            state.pending += 1
            if state.pending < batch and state.stored < limit * EXACT_FROM and now - state.synced_at < SYNC_SECONDS:
                return state.stored + state.pending
            amount, state.pending = state.pending, 0
        try:
            stored = store.hit(bucket, start, window, amount)
        except store.errors:
            with self._lock:
                state.pending += amount  # written with the next batch, if the store comes back
            raise
        with self._lock:
            state.stored, state.synced_at = max(state.stored, stored), now
            return state.stored + state.pending

    def _drop_ended(self, now: int) -> None:
        # Windows last at most ADMIN_LOGIN_WINDOW_SECONDS; older buckets cannot be current.
        oldest = now - max(API_WINDOW_SECONDS, settings.ADMIN_LOGIN_WINDOW_SECONDS)
        self._buckets = {name: state for name, state in self._buckets.items() if state.start >= oldest}
        if len(self._buckets) >= self.MAX_BUCKETS:
            self._buckets.clear()


_batched_counts = BatchedCounts()


def rate_limit_forget_local() -> None:
    """Drop this process's batched counts (between tests; the store keeps what was written)."""
    _batched_counts.forget()


def rate_limit_hit(bucket: str, *, limit: int, window: int) -> Usage | None:
    """Count one request (or failure) in ``bucket``; None when the store is unavailable."""
    now = int(time.time())
    start = window_start(bucket, window, now)
    store = get_store()
    try:
        count = _batched_counts.hit(store, bucket, start=start, window=window, limit=limit)
    except store.errors as exc:
        store.report_failure(exc)
        return None
    return Usage(limit=limit, count=count, reset=start + window - now)


def rate_limit_peek(bucket: str, *, limit: int, window: int) -> Usage | None:
    """``bucket``'s usage in the store without counting anything; None when the store is unavailable."""
    now = int(time.time())
    start = window_start(bucket, window, now)
    store = get_store()
    try:
        count = store.count(bucket, start)
    except store.errors as exc:
        store.report_failure(exc)
        return None
    return Usage(limit=limit, count=count, reset=start + window - now)


def rate_limit_purge_stale() -> int:
    """Delete PostgreSQL counters whose window has ended (Redis expires its own); return how many."""
    longest_window = max(API_WINDOW_SECONDS, settings.ADMIN_LOGIN_WINDOW_SECONDS)
    return PostgresStore().purge(older_than=int(time.time()) - longest_window)


def count_api_request(request, api_key) -> Usage | None:
    """Count this request (Django's ``HttpRequest``) against ``api_key``'s limit, once; None when unlimited.

    The usage is kept on the request, for RateLimitHeadersMiddleware and so
    that a request answered by DRF after the plain read counted it (see
    ``contacts_project.api.viewsets.PlainRead``) is not counted twice.
    """
    limit = settings.RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return None
    usage = getattr(request, "rate_limit", None)
    if usage is None:
        usage = rate_limit_hit(f"key:{api_key.pk}", limit=limit, window=API_WINDOW_SECONDS)
        if usage is not None:
            request.rate_limit = usage
    return usage


class ApiKeyRateThrottle(BaseThrottle):
    """``RATE_LIMIT_PER_MINUTE`` requests per API key per minute (0: no limit); past it, 429.

    The default throttle of every API view (``DEFAULT_THROTTLE_CLASSES``). It
    runs after authentication, so requests without a valid key (401) are not
    counted, and the schema and docs pages, which need no key, are not limited.
    """

    usage = None

    def allow_request(self, request, view):
        if request.auth is None:
            return True
        usage = count_api_request(request._request, request.auth)
        if usage is None:
            return True
        self.usage = usage
        return usage.count <= usage.limit

    def wait(self):
        return self.usage.reset


class RateLimitHeadersMiddleware:
    """``RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on every response of a rate-limited request.

    That includes the 429 (which also has ``Retry-After``) and responses
    answered by the exception handler after the throttle ran.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        usage = getattr(request, "rate_limit", None)
        if usage is not None:
            for name, value in usage.headers().items():
                response[name] = value
        return response


def admin_login_bucket(request, username: str | None) -> str:
    """The bucket of failed admin logins from this client IP for this username (any case).

    Hashed: usernames are arbitrary text and the bucket name is a key. The IP
    is ``REMOTE_ADDR``: behind a proxy, have the client's address reach it
    (e.g. with the PROXY protocol) rather than trust a header clients can set.
    """
    source = f"{request.META.get('REMOTE_ADDR', '')}\0{(username or '').casefold()}"
    return "login:" + hashlib.sha256(source.encode()).hexdigest()[:40]
