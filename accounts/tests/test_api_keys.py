"""API keys: storage, authentication failures and the operator commands (API.md §1)."""

import re
import secrets
import string
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Account, ApiKey
from accounts.services import api_key_create, api_key_revoke

KEY_PATTERN = re.compile(r"ck_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}")
WWW_AUTHENTICATE = 'Bearer realm="api"'


def unknown_key() -> str:
    """A well-formed key that no account has."""
    alphabet = string.ascii_letters + string.digits
    prefix = "".join(secrets.choice(alphabet) for _ in range(12))
    secret = "".join(secrets.choice(alphabet) for _ in range(32))
    return f"ck_{prefix}_{secret}"


def client_with(header: str | None) -> APIClient:
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


def assert_unauthorized(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"type", "errors"}
    assert body["type"] == "client_error"
    assert len(body["errors"]) == 1
    assert set(body["errors"][0]) == {"code", "detail", "attr"}
    assert body["errors"][0]["attr"] is None
    assert body["errors"][0]["code"] in {"not_authenticated", "authentication_failed"}
    assert response["WWW-Authenticate"] == WWW_AUTHENTICATE


def row_as_text(api_key: ApiKey) -> str:
    """Every column of the stored row, as PostgreSQL has it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT row_to_json(k)::text FROM {ApiKey._meta.db_table} k WHERE id = %s", [api_key.id])
        return cursor.fetchone()[0]


def run(command: str, *args, **options) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(command, *args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def last_line(output: str) -> str:
    return output.rstrip("\n").split("\n")[-1]


# --- Storage ------------------------------------------------------------------


def test_key_is_stored_as_prefix_and_hash_only(account):
    api_key, raw_key = api_key_create(account=account, name="production")
    _, prefix, secret = raw_key.split("_")

    stored = row_as_text(api_key)

    assert KEY_PATTERN.fullmatch(raw_key)
    assert raw_key not in stored
    assert secret not in stored
    assert api_key.prefix == prefix
    assert api_key.key_hash != raw_key
    assert secret not in api_key.key_hash
    assert f'"prefix":"{prefix}"' in stored


def test_every_key_is_different(account):
    keys = {api_key_create(account=account)[1] for _ in range(20)}

    assert len(keys) == 20
    assert ApiKey.objects.filter(account=account).values("prefix").distinct().count() == 20


def test_created_key_authenticates_as_its_account(account, other_account):
    _, raw_key = api_key_create(account=account)
    mine = client_with(f"Bearer {raw_key}").post("/v1/contacts", {"email": "ada@example.com"}, format="json")
    assert mine.status_code == 201

    theirs = client_with(f"Bearer {api_key_create(account=other_account)[1]}").get("/v1/contacts")

    assert theirs.status_code == 200
    assert theirs.json()["data"] == []


# --- Authentication failures --------------------------------------------------


def test_missing_authorization_is_401(db):
    assert_unauthorized(client_with(None).get("/v1/contacts"))


def test_missing_authorization_is_401_on_a_write(db):
    assert_unauthorized(client_with(None).post("/v1/contacts", {"email": "ada@example.com"}, format="json"))


def test_missing_authorization_is_401_on_a_detail_route(db):
    assert_unauthorized(client_with(None).get("/v1/contacts/con_anything"))


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token {key}",
        "Bearer",
        "Bearer ",
        "{key}",
        "Bearer{key}",
        "Bearer {key} extra",
        "Bearer {key}x",
        "Bearer ck_short_key",
        "Bearer ck_AAAAAAAAAAAA_",
        "Bearer xx_{body}",
        "Bearer {upper}",
        "Bearer ck_{prefix}_{secret_dashed}",
        "Bearer ck_{prefix}\u00e9_{secret}",
        "Bearer \u00e9\u00e9\u00e9",
        "Bearer ck_{prefix}_{secret}\x00",
    ],
)
def test_malformed_authorization_is_401(api, header):
    raw_key = api.raw_key
    _, prefix, secret = raw_key.split("_")
    header = header.format(
        key=raw_key,
        body=raw_key[3:],
        upper=raw_key.upper(),
        prefix=prefix,
        secret=secret,
        secret_dashed=secret[:16] + "-" + secret[17:],
    )

    assert_unauthorized(client_with(header).get("/v1/contacts"))


def test_unknown_well_formed_key_is_401(db):
    raw_key = unknown_key()

    assert_unauthorized(client_with(f"Bearer {raw_key}").get("/v1/contacts"))


def test_right_prefix_with_wrong_secret_is_401(api):
    _, prefix, secret = api.raw_key.split("_")
    wrong_secret = ("b" if secret[0] == "a" else "a") + secret[1:]

    assert_unauthorized(client_with(f"Bearer ck_{prefix}_{wrong_secret}").get("/v1/contacts"))


def test_revoked_key_is_401(api, account):
    assert api.get("/v1/contacts").status_code == 200
    api_key = ApiKey.objects.get(account=account)

    api_key_revoke(api_key=api_key)

    assert_unauthorized(api.get("/v1/contacts"))
    assert_unauthorized(api.post("/v1/contacts", {"email": "ada@example.com"}, format="json"))


def test_revoking_one_key_leaves_the_accounts_other_keys_working(account):
    first, first_raw = api_key_create(account=account)
    _, second_raw = api_key_create(account=account)

    api_key_revoke(api_key=first)

    assert_unauthorized(client_with(f"Bearer {first_raw}").get("/v1/contacts"))
    assert client_with(f"Bearer {second_raw}").get("/v1/contacts").status_code == 200


def test_key_of_a_deleted_account_is_401(api, account):
    assert api.get("/v1/contacts").status_code == 200
    account.delete()

    assert_unauthorized(api.get("/v1/contacts"))


# --- create_api_key -----------------------------------------------------------


def test_create_api_key_creates_the_missing_account_and_prints_the_key_last(db):
    stdout, _ = run("create_api_key", account="Initech")

    raw_key = last_line(stdout)
    assert KEY_PATTERN.fullmatch(raw_key)
    account = Account.objects.get(name="Initech")
    api_key = ApiKey.objects.get(account=account)
    assert api_key.prefix == raw_key.split("_")[1]
    assert raw_key not in row_as_text(api_key)


def test_create_api_key_prints_the_key_once(db):
    stdout, stderr = run("create_api_key", account="Initech")

    raw_key = last_line(stdout)
    assert (stdout + stderr).count(raw_key) == 1


def test_printed_key_authenticates(db):
    stdout, _ = run("create_api_key", account="Initech")
    client = client_with(f"Bearer {last_line(stdout)}")

    created = client.post("/v1/contacts", {"email": "ada@example.com"}, format="json")

    assert created.status_code == 201
    assert client.get("/v1/contacts").json()["data"][0]["id"] == created.json()["id"]


def test_create_api_key_reuses_an_existing_account(account, other_account):
    stdout, _ = run("create_api_key", account="Acme")

    raw_key = last_line(stdout)
    assert Account.objects.filter(name="Acme").count() == 1
    assert Account.objects.count() == 2
    assert ApiKey.objects.get(prefix=raw_key.split("_")[1]).account == account


def test_create_api_key_twice_gives_two_working_keys_for_one_account(db):
    first = last_line(run("create_api_key", account="Initech")[0])
    second = last_line(run("create_api_key", account="Initech")[0])

    assert first != second
    assert Account.objects.filter(name="Initech").count() == 1
    assert ApiKey.objects.filter(account__name="Initech").count() == 2
    assert client_with(f"Bearer {first}").get("/v1/contacts").status_code == 200
    assert client_with(f"Bearer {second}").get("/v1/contacts").status_code == 200


def test_create_api_key_keys_of_two_accounts_see_only_their_own_contacts(db):
    initech = client_with(f"Bearer {last_line(run('create_api_key', account='Initech')[0])}")
    umbrella = client_with(f"Bearer {last_line(run('create_api_key', account='Umbrella')[0])}")

    initech.post("/v1/contacts", {"email": "ada@example.com"}, format="json")

    assert umbrella.get("/v1/contacts").json()["data"] == []
    assert len(initech.get("/v1/contacts").json()["data"]) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_create_api_key_rejects_a_bad_account_name(db, name):
    with pytest.raises(CommandError):
        run("create_api_key", account=name)

    assert Account.objects.count() == 0
    assert ApiKey.objects.count() == 0


def test_create_api_key_requires_the_account_option(db):
    with pytest.raises(CommandError):
        run("create_api_key")


# --- revoke_api_key -----------------------------------------------------------


@pytest.mark.parametrize("naming", ["id", "prefix", "key"])
def test_revoke_api_key_makes_the_key_401(api, account, naming):
    api_key = ApiKey.objects.get(account=account)
    name = {"id": api_key.id, "prefix": api_key.prefix, "key": api.raw_key}[naming]
    assert api.get("/v1/contacts").status_code == 200

    run("revoke_api_key", name)

    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert_unauthorized(api.get("/v1/contacts"))


def test_revoke_api_key_revokes_only_that_key(account):
    first, first_raw = api_key_create(account=account)
    _, second_raw = api_key_create(account=account)

    run("revoke_api_key", first.id)

    assert_unauthorized(client_with(f"Bearer {first_raw}").get("/v1/contacts"))
    assert client_with(f"Bearer {second_raw}").get("/v1/contacts").status_code == 200


def test_revoke_api_key_twice_keeps_it_revoked(api, account):
    api_key = ApiKey.objects.get(account=account)
    run("revoke_api_key", api_key.id)
    api_key.refresh_from_db()
    revoked_at = api_key.revoked_at

    run("revoke_api_key", api_key.id)

    api_key.refresh_from_db()
    assert api_key.revoked_at == revoked_at
    assert_unauthorized(api.get("/v1/contacts"))


@pytest.mark.parametrize("name", ["key_doesnotexist", "AAAAAAAAAAAA", "{unknown_key}", "", "nonsense"])
def test_revoke_api_key_with_an_unknown_key_is_a_command_error(api, name):
    name = name.format(unknown_key=unknown_key())

    with pytest.raises(CommandError):
        run("revoke_api_key", name)

    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0
    assert api.get("/v1/contacts").status_code == 200


# --- demo_account -------------------------------------------------------------


def demo_key(stdout: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.startswith("API key: ")]
    return line.removeprefix("API key: ")


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """Keep the demo key out of the real data folder."""
    monkeypatch.setenv("CONTACTS_DATA_DIR", str(tmp_path))
    return tmp_path


def test_demo_account_run_twice_prints_the_same_key_for_one_account(db, data_dir):
    first = demo_key(run("demo_account")[0])
    second = demo_key(run("demo_account")[0])

    assert KEY_PATTERN.fullmatch(first)
    assert first == second
    assert Account.objects.filter(name="Demo").count() == 1
    assert ApiKey.objects.filter(account__name="Demo").count() == 1


def test_demo_account_key_authenticates(db, data_dir):
    raw_key = demo_key(run("demo_account")[0])

    response = client_with(f"Bearer {raw_key}").post("/v1/contacts", {"email": "ada@example.com"}, format="json")

    assert response.status_code == 201


def test_demo_account_keeps_its_key_under_the_data_folder_readable_by_owner_only(db, data_dir):
    raw_key = demo_key(run("demo_account")[0])

    key_file = data_dir / "demo_api_key"
    assert key_file.read_text().strip() == raw_key
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert raw_key not in row_as_text(ApiKey.objects.get(account__name="Demo"))


def test_demo_account_replaces_a_revoked_key(db, data_dir):
    first = demo_key(run("demo_account")[0])
    api_key_revoke(api_key=ApiKey.objects.get(account__name="Demo"))

    second = demo_key(run("demo_account")[0])

    assert second != first
    assert client_with(f"Bearer {second}").get("/v1/contacts").status_code == 200
    assert Account.objects.filter(name="Demo").count() == 1


def test_demo_account_replaces_a_garbled_key_file(db, data_dir):
    (data_dir / "demo_api_key").write_text("not a key\n")

    raw_key = demo_key(run("demo_account")[0])

    assert KEY_PATTERN.fullmatch(raw_key)
    assert client_with(f"Bearer {raw_key}").get("/v1/contacts").status_code == 200


def test_demo_account_does_not_reuse_a_key_file_naming_another_accounts_key(account, data_dir):
    _, acme_key = api_key_create(account=account)
    (data_dir / "demo_api_key").write_text(acme_key + "\n")

    raw_key = demo_key(run("demo_account")[0])

    assert raw_key != acme_key
    assert ApiKey.objects.get(prefix=raw_key.split("_")[1]).account.name == "Demo"


def test_demo_account_reuses_an_existing_demo_account(db, data_dir):
    demo = Account.objects.create(name="Demo")

    raw_key = demo_key(run("demo_account")[0])

    assert Account.objects.filter(name="Demo").get() == demo
    assert ApiKey.objects.get(prefix=raw_key.split("_")[1]).account == demo


def test_keys_are_compared_in_constant_time(api, monkeypatch):
    import accounts.models

    compared = []
    real_compare = accounts.models.hmac.compare_digest

    def spy(stored, given):
        compared.append((stored, given))
        return real_compare(stored, given)

    monkeypatch.setattr(accounts.models.hmac, "compare_digest", spy)
    assert api.get("/v1/contacts").status_code == 200
    assert compared == [(ApiKey.hash_key(api.raw_key),) * 2]


def test_no_log_record_holds_a_key(api, caplog):
    wrong = api.raw_key[:-1] + ("A" if api.raw_key[-1] != "A" else "B")
    # Everything Django can log, at its most verbose: requests (401s included) and,
    # through the debug cursor CaptureQueriesContext turns on, SQL with its parameters.
    with (
        caplog.at_level("DEBUG", logger="django.request"),
        caplog.at_level("DEBUG", logger="django.db.backends"),
        CaptureQueriesContext(connection),
    ):
        api.get("/v1/contacts")
        client_with(f"Bearer {wrong}").get("/v1/contacts")
        client_with(f"Bearer {wrong}").post("/v1/contacts", {"email": "x@example.com"}, format="json")
    logged = "\n".join(f"{record.getMessage()} {record.args}" for record in caplog.records)
    assert "Unauthorized: /v1/contacts" in logged
    assert "accounts_apikey" in logged  # the key lookup's SQL, with the key's public prefix only
    assert api.raw_key not in logged
    assert wrong not in logged
    assert api.raw_key.split("_")[2] not in logged


# --- Keys remembered per process (API_KEY_CACHE_SECONDS) ---------------------------


def key_lookups(queries) -> int:
    return sum(ApiKey._meta.db_table in query["sql"] for query in queries)


@pytest.fixture
def monotonic(monkeypatch):
    """The authentication module's clock, moved by the test: ``monotonic.now += …``."""
    import accounts.authentication

    clock = type("Clock", (), {"now": 1_000.0})()
    monkeypatch.setattr(accounts.authentication.time, "monotonic", lambda: clock.now)
    return clock


def test_a_key_is_looked_up_once_per_cache_period(api, monotonic, settings):
    settings.API_KEY_CACHE_SECONDS = 5

    with CaptureQueriesContext(connection) as first:
        assert api.get("/v1/contacts").status_code == 200
    with CaptureQueriesContext(connection) as remembered:
        assert api.get("/v1/contacts").status_code == 200
    monotonic.now += 5
    with CaptureQueriesContext(connection) as expired:
        assert api.get("/v1/contacts").status_code == 200

    assert (key_lookups(first), key_lookups(remembered), key_lookups(expired)) == (1, 0, 1)


def test_a_remembered_key_still_checks_the_whole_secret(api):
    assert api.get("/v1/contacts").status_code == 200  # remembered from here on
    wrong = api.raw_key[:-1] + ("A" if api.raw_key[-1] != "A" else "B")

    assert_unauthorized(client_with(f"Bearer {wrong}").get("/v1/contacts"))
    assert api.get("/v1/contacts").status_code == 200


def test_unknown_keys_are_not_remembered(db):
    key = unknown_key()
    client = client_with(f"Bearer {key}")

    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert_unauthorized(client.get("/v1/contacts"))
        assert key_lookups(queries) == 1


def test_a_key_revoked_by_another_process_stops_within_the_cache_period(api, account, monotonic, settings):
    settings.API_KEY_CACHE_SECONDS = 5
    assert api.get("/v1/contacts").status_code == 200

    # Another process (another server worker, or manage.py in its own process)
    # revokes it: nothing tells this one.
    ApiKey.objects.filter(account=account).update(revoked_at=Now())
    monotonic.now += 4.9
    assert api.get("/v1/contacts").status_code == 200
    monotonic.now += 0.1

    assert_unauthorized(api.get("/v1/contacts"))


def test_a_cache_period_of_zero_looks_the_key_up_every_time(api, account, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    assert api.get("/v1/contacts").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert api.get("/v1/contacts").status_code == 200
    ApiKey.objects.filter(account=account).update(revoked_at=Now())

    assert key_lookups(queries) == 1
    assert_unauthorized(api.get("/v1/contacts"))


def test_a_key_deleted_in_this_process_stops_at_once(api, account):
    assert api.get("/v1/contacts").status_code == 200

    ApiKey.objects.get(account=account).delete()

    assert_unauthorized(api.get("/v1/contacts"))
