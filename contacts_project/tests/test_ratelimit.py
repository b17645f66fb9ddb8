"""Rate limits (API.md §2, 429): per API key on /v1, per IP and username on the admin login."""

import io
import logging
import os
import time
import types

import pytest
import redis
from django.core.management import call_command
from django.db import OperationalError
from rest_framework.test import APIClient

from accounts.models import IdempotencyRecord, RateLimitCounter
from accounts.services import api_key_create
from contacts_project.api import ratelimit
from contacts_project.testing import assert_error

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


@pytest.fixture
def limit(settings):
    """A tiny per-key limit: ``limit(3)``."""

    def set_limit(per_minute):
        settings.RATE_LIMIT_PER_MINUTE = per_minute

    return set_limit


@pytest.fixture
def frozen_clock(monkeypatch):
    """The limiter's wall clock, set by the test: ``frozen_clock.now = …``."""
    clock = types.SimpleNamespace(now=1_800_000_000.0, monotonic=time.monotonic)
    clock.time = lambda: clock.now
    monkeypatch.setattr(ratelimit, "time", clock)
    return clock


@pytest.fixture
def redis_url(settings):
    """The local Redis (``REDIS_URL`` or 127.0.0.1:6379), made the store; skipped where none answers."""
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis answers at {url} ({exc}); the Redis store is tested where one runs")
    settings.REDIS_URL = url
    return url


def _key_client(account):
    api_key, raw_key = api_key_create(account=account, name="second")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    client.api_key = api_key
    return client


# --- The API ---------------------------------------------------------------------


def test_every_response_carries_the_rate_limit_headers(api, limit):
    limit(100)

    first = api.get("/v1/contacts")
    second = api.post("/v1/contacts", {"email": "ada@example.com"}, format="json")
    third = api.get("/v1/contacts/con_missing")

    assert [first.status_code, second.status_code, third.status_code] == [200, 201, 404]
    assert [response["RateLimit-Limit"] for response in (first, second, third)] == ["100"] * 3
    assert [response["RateLimit-Remaining"] for response in (first, second, third)] == ["99", "98", "97"]
    assert 1 <= int(first["RateLimit-Reset"]) <= 60


def test_past_the_limit_the_answer_is_429_with_retry_after(api, limit, frozen_clock):
    limit(3)

    allowed = [api.get("/v1/contacts") for _ in range(3)]
    refused = api.get("/v1/contacts")

    assert [response.status_code for response in allowed] == [200, 200, 200]
    assert [response["RateLimit-Remaining"] for response in allowed] == ["2", "1", "0"]
    assert_error(refused, 429, "client_error", [None], code="throttled")
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"
    assert refused["Retry-After"] == refused["RateLimit-Reset"]
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_the_count_restarts_with_the_next_window(api, limit, frozen_clock):
    limit(1)
    assert api.get("/v1/contacts").status_code == 200
    refused = api.get("/v1/contacts")
    assert refused.status_code == 429

    frozen_clock.now += int(refused["Retry-After"])

    response = api.get("/v1/contacts")
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "0"
    assert response["RateLimit-Reset"] == "60"


def test_each_api_key_is_counted_on_its_own(api, other_api, account, limit):
    limit(1)
    second_key_of_the_account = _key_client(account)

    assert api.get("/v1/contacts").status_code == 200
    assert api.get("/v1/contacts").status_code == 429

    assert other_api.get("/v1/contacts").status_code == 200
    response = second_key_of_the_account.get("/v1/contacts")
    assert response.status_code == 200
    assert response["RateLimit-Remaining"] == "0"


def test_requests_without_a_valid_key_are_neither_counted_nor_limited(anonymous_api, db, limit):
    limit(1)
    anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer ck_000000000000_00000000000000000000000000000000")

    responses = [anonymous_api.get("/v1/contacts") for _ in range(3)]

    assert [response.status_code for response in responses] == [401] * 3
    assert [name for name in RATE_LIMIT_HEADERS if name in responses[-1]] == []
    assert RateLimitCounter.objects.count() == 0


def test_the_docs_need_no_key_and_are_not_limited(anonymous_api, db, limit):
    limit(1)

    assert [anonymous_api.get("/v1/schema").status_code for _ in range(2)] == [200, 200]


def test_a_limit_of_zero_disables_limiting(api, limit):
    limit(0)

    responses = [api.get("/v1/contacts") for _ in range(5)]

    assert [response.status_code for response in responses] == [200] * 5
    assert [name for name in RATE_LIMIT_HEADERS if name in responses[-1]] == []
    assert RateLimitCounter.objects.count() == 0


def test_a_throttled_post_claims_no_idempotency_key(api, limit):
    limit(1)
    api.get("/v1/contacts")

    response = api.post("/v1/contacts", {"email": "ada@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 429
    assert IdempotencyRecord.objects.count() == 0


# --- Hits batched per process ------------------------------------------------------


def stored_hits() -> int:
    return sum(RateLimitCounter.objects.filter(bucket__startswith="key:").values_list("count", flat=True))


def test_a_process_writes_its_hits_in_batches_of_one_percent_of_the_limit(api, limit, frozen_clock):
    limit(10_000)  # batches of 100
    frozen_clock.monotonic = lambda: 50.0  # no write for time's sake during the test

    first = api.get("/v1/contacts")  # a bucket's first hit is written at once
    after_first = stored_hits()
    batched = [api.get("/v1/contacts") for _ in range(99)]
    after_batched = stored_hits()
    api.get("/v1/contacts")  # the 100th unwritten hit: the batch is written

    assert (after_first, after_batched, stored_hits()) == (1, 1, 101)
    # Meanwhile the headers count this process's own hits exactly.
    assert [first["RateLimit-Remaining"], batched[-1]["RateLimit-Remaining"]] == ["9999", "9900"]


def test_a_process_writes_its_hits_at_least_every_second(api, limit, frozen_clock):
    limit(10_000)
    clock = {"now": 50.0}
    frozen_clock.monotonic = lambda: clock["now"]
    api.get("/v1/contacts")
    api.get("/v1/contacts")
    before = stored_hits()

    clock["now"] += ratelimit.SYNC_SECONDS
    api.get("/v1/contacts")

    assert (before, stored_hits()) == (1, 3)


def test_near_the_limit_every_hit_is_written_and_two_processes_overshoot_by_at_most_their_batches(db, frozen_clock):
    frozen_clock.monotonic = lambda: 50.0
    store = ratelimit.PostgresStore()
    processes = [ratelimit.BatchedCounts(), ratelimit.BatchedCounts()]  # two server workers, one store

    answers = [processes[hit % 2].hit(store, "key:k", start=0, window=60, limit=1_000) for hit in range(1_200)]

    allowed = sum(count <= 1_000 for count in answers)
    assert 1_000 <= allowed <= 1_000 + 2 * 10  # at most one batch (1% of the limit) per process
    # From 90% of the limit on, every hit went to the store: none is left unwritten.
    assert store.count("key:k", 0) == 1_200


def test_limits_of_a_hundred_or_less_are_counted_exactly_across_processes(db, frozen_clock):
    frozen_clock.monotonic = lambda: 50.0
    store = ratelimit.PostgresStore()
    processes = [ratelimit.BatchedCounts(), ratelimit.BatchedCounts()]

    answers = [processes[hit % 2].hit(store, "key:k", start=0, window=60, limit=100) for hit in range(150)]

    assert answers == list(range(1, 151))


# --- The PostgreSQL store ----------------------------------------------------------


def test_postgres_keeps_one_row_per_key_counting_its_window(api, account, limit):
    limit(100)
    for _ in range(3):
        api.get("/v1/contacts")

    (counter,) = RateLimitCounter.objects.all()
    api_key = account.api_keys.get()
    assert (counter.bucket, counter.count) == (f"key:{api_key.pk}", 3)
    assert counter.window_start == ratelimit.window_start(counter.bucket, 60, int(time.time()))


def test_postgres_store_restarts_a_newer_window_and_never_rewinds(db):
    store = ratelimit.PostgresStore()

    assert [store.hit("b", 120, 60), store.hit("b", 120, 60)] == [1, 2]
    assert store.hit("b", 180, 60) == 1
    # A worker whose clock lags counts in the newer window instead of resetting it.
    assert store.hit("b", 120, 60) == 2
    assert (store.count("b", 180), store.count("b", 240)) == (2, 0)
    assert RateLimitCounter.objects.values_list("bucket", "window_start", "count").get() == ("b", 180, 2)


def test_windows_are_offset_per_bucket_and_contain_now():
    starts = {}
    for bucket in ("key:key_a", "key:key_b", "key:key_c", "login:x"):
        for now in range(1_800_000_000, 1_800_000_000 + 120):
            start = ratelimit.window_start(bucket, 60, now)
            assert start <= now < start + 60
        starts[bucket] = ratelimit.window_start(bucket, 60, 1_800_000_000)

    assert len(set(starts.values())) > 1


def test_purge_deletes_counters_of_ended_windows_only(db, frozen_clock):
    store = ratelimit.PostgresStore()
    now = int(frozen_clock.now)
    store.hit("key:old", now - 3600, 60)
    store.hit("login:old", now - 901 - 60, 900)
    store.hit("key:current", ratelimit.window_start("key:current", 60, now), 60)
    store.hit("login:current", ratelimit.window_start("login:current", 900, now), 900)

    call_command("purge_expired", stdout=io.StringIO())

    assert sorted(RateLimitCounter.objects.values_list("bucket", flat=True)) == ["key:current", "login:current"]


# --- Store failures ---------------------------------------------------------------


def test_a_failing_postgres_store_fails_open_and_logs(api, limit, monkeypatch, caplog):
    limit(1)

    def lost_connection(self, bucket, start, window, amount=1):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ratelimit.PostgresStore, "hit", lost_connection)
    monkeypatch.setattr(ratelimit.PostgresStore, "_failure_logged_at", float("-inf"))

    with caplog.at_level(logging.WARNING, logger="contacts_project.api.ratelimit"):
        responses = [api.get("/v1/contacts") for _ in range(3)]

    assert [response.status_code for response in responses] == [200] * 3
    assert [name for name in RATE_LIMIT_HEADERS if name in responses[0]] == []
    # Logged once, not once per request.
    assert [record.getMessage() for record in caplog.records] == [
        "rate-limit store PostgresStore unavailable, not limiting: server closed the connection unexpectedly"
    ]


def test_an_unreachable_redis_fails_open(api, limit, settings, caplog):
    limit(1)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    with caplog.at_level(logging.WARNING, logger="contacts_project.api.ratelimit"):
        responses = [api.get("/v1/contacts") for _ in range(3)]

    assert [response.status_code for response in responses] == [200] * 3
    assert [name for name in RATE_LIMIT_HEADERS if name in responses[0]] == []
    assert "rate-limit store RedisStore unavailable" in caplog.text


# --- The Redis store -------------------------------------------------------------


def test_redis_counts_per_key_with_the_same_answers(api, other_api, account, limit, redis_url):
    limit(2)

    allowed = [api.get("/v1/contacts") for _ in range(2)]
    refused = api.get("/v1/contacts")
    other = other_api.get("/v1/contacts")

    assert [response.status_code for response in allowed] == [200, 200]
    assert [response["RateLimit-Remaining"] for response in allowed] == ["1", "0"]
    assert_error(refused, 429, "client_error", [None], code="throttled")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert (other.status_code, other["RateLimit-Remaining"]) == (200, "1")
    # Counted in Redis, under a key that expires with its window; nothing in PostgreSQL.
    bucket = f"key:{account.api_keys.get().pk}"
    start = ratelimit.window_start(bucket, 60, int(time.time()))
    client = redis.Redis.from_url(redis_url)
    key = f"contacts:ratelimit:{bucket}:{start}"
    assert int(client.get(key)) == 3
    assert 0 < client.ttl(key) <= 61
    assert RateLimitCounter.objects.count() == 0


# --- The admin login ----------------------------------------------------------------


@pytest.fixture
def operator(django_user_model, settings):
    # A fast hasher: a dozen logins with the real one take seconds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return django_user_model.objects.create_user("operator", password="correct horse", is_staff=True)


def _login(client, username, password, ip="192.0.2.1"):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_admin_login_is_refused_after_ten_failures_from_one_ip_for_one_username(client, operator, frozen_clock):
    source = types.SimpleNamespace(META={"REMOTE_ADDR": "192.0.2.1"})
    frozen_clock.now = ratelimit.window_start(ratelimit.admin_login_bucket(source, "operator"), 900, 1_800_000_000)

    failures = [_login(client, "operator", f"guess {i}") for i in range(10)]
    refused = _login(client, "Operator", "correct horse")

    assert [response.status_code for response in failures] == [200] * 10
    assert all(b"Please enter the correct username and password" in response.content for response in failures)
    assert refused.status_code == 200
    assert b"Too many failed login attempts. Try again in 15 minute(s)." in refused.content
    assert "_auth_user_id" not in client.session


def test_admin_login_lockout_is_per_ip_and_username(client, operator, django_user_model):
    django_user_model.objects.create_user("other", password="other password", is_staff=True)
    for i in range(10):
        _login(client, "operator", f"guess {i}")

    assert _login(client, "operator", "correct horse", ip="198.51.100.7").status_code == 302
    client.logout()
    assert _login(client, "other", "other password").status_code == 302


def test_admin_login_failures_expire_with_their_window(client, operator, frozen_clock):
    for i in range(10):
        _login(client, "operator", f"guess {i}")
    assert b"Too many failed login attempts" in _login(client, "operator", "correct horse").content

    frozen_clock.now += 15 * 60

    assert _login(client, "operator", "correct horse").status_code == 302


def test_admin_login_is_not_limited_when_the_store_is_down(client, operator, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    for i in range(11):
        _login(client, "operator", f"guess {i}")

    assert _login(client, "operator", "correct horse").status_code == 302
