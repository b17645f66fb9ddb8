"""Fixtures shared by every app's tests."""

import fcntl
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.authentication import forget_recent_keys
from accounts.models import Account
from accounts.services import api_key_create
from contacts.services import contact_create
from contacts_project.api import ratelimit
from contacts_project.api.ratelimit import rate_limit_forget_local

# Users made by tests (admin_client, admin_user, the browser test's operator)
# are hashed with PBKDF2's 1,000,000 iterations by default: ~0.5 s of CPU each,
# ~50 s over the suite. No test is about password hashing; API keys are
# SHA-256 (accounts/models.py) and unaffected.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# PostgreSQL allows 100 connections; a test marked many_connections holds up to
# 51 at once (its parallel requests). Under pytest-xdist two of them on two
# workers could together pass the limit, so they take turns: an exclusive lock
# on one file, machine-wide because the database server is shared too.
MANY_CONNECTIONS_LOCK = Path(tempfile.gettempdir()) / "contacts-tests-many-connections.lock"


@pytest.fixture(autouse=True)
def _many_connections_take_turns(request):
    if request.node.get_closest_marker("many_connections") is None:
        yield
        return
    with MANY_CONNECTIONS_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _client_for(account: Account) -> APIClient:
    _, raw_key = api_key_create(account=account, name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    client.raw_key = raw_key
    return client


@pytest.fixture(autouse=True)
def _no_state_from_earlier_tests():
    """Each test starts with this process's remembered API keys and batched rate-limit counts empty."""
    forget_recent_keys()
    rate_limit_forget_local()


@pytest.fixture
def hot_api_key(settings, monkeypatch):
    """The API key stays remembered and its rate-limit hits batched, as on a busy server.

    After one warm-up request, a request then runs only its own queries,
    whatever the time between requests (query-count tests). The window is
    made long too: the first hit of a new minute's window is written at
    once, one query more in whichever request crossed the minute (a
    query-count test of list members failed so in one CI run).
    """
    settings.API_KEY_CACHE_SECONDS = 3600
    monkeypatch.setattr(ratelimit, "SYNC_SECONDS", 3600.0)
    monkeypatch.setattr(ratelimit, "API_WINDOW_SECONDS", 10**9)


@pytest.fixture(autouse=True)
def _rate_limits_counted_in_postgresql(settings):
    """Whatever REDIS_URL the shell has: query-count assertions include the PostgreSQL counter.

    The Redis store has its own tests (contacts_project/tests/test_ratelimit.py).
    """
    settings.REDIS_URL = ""


@pytest.fixture
def account(db):
    return Account.objects.create(name="Acme")


@pytest.fixture
def other_account(db):
    return Account.objects.create(name="Globex")


@pytest.fixture
def api(account):
    """An API client authenticated as ``account``."""
    return _client_for(account)


@pytest.fixture
def other_api(other_account):
    """An API client authenticated as ``other_account``."""
    return _client_for(other_account)


@pytest.fixture
def anonymous_api():
    return APIClient()


@pytest.fixture
def make_contact(account):
    """Create a contact through the service, e.g. ``make_contact(phone="+14155552671")``."""

    def make(account=account, **fields):
        from contacts.api.serializers import ContactSerializer

        serializer = ContactSerializer(data=fields)
        serializer.is_valid(raise_exception=True)
        return contact_create(account=account, data=serializer.validated_data)

    return make
