import csv
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import Account
from contacts.exporters import EXPORT_COLUMNS
from contacts.models import Contact
from contacts.seeding import seed_demo_data
from contacts.services import contact_set_preferences
from lists.services import list_add_members, list_create
from segments.services import segment_create

HEADER = ",".join(EXPORT_COLUMNS) + "\n"


def _export(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_contacts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _stamp(contact, created: str, updated: str) -> None:
    """Give a contact known timestamps (the database clock would give all of a test's contacts the same one)."""
    Contact.objects.filter(pk=contact.pk).update(
        created_at=datetime.fromisoformat(created), updated_at=datetime.fromisoformat(updated)
    )


@pytest.fixture
def contacts(account, other_account, make_contact):
    """Three contacts of ``account`` (listed newest first: jose, ada, cagla) and one of ``other_account``."""
    ada = make_contact(
        phone="+1 (415) 555-2671",
        email="Ada@Example.com",
        first_name="Zoë Ada",
        last_name='O\'Brien, "Jr"',
        lifecycle_stage="customer",
        tags=["vip", "a|b", "c,d", 'say "hi"'],
        metadata={"plan": "pro", "seats": 12, "nested": {"a": [1, 2.5, "x, y"], "b": {"c": True}}, "note": "l1\nl2"},
    )
    contact_set_preferences(
        account=account, contact_id=ada.pk, statuses={"sms": "opted_in", "email": "opted_out"}, api_key_id=None
    )
    jose = make_contact(email="jose@example.org", first_name="José", last_name="Müller")
    cagla = make_contact(phone="+905321234567", first_name="Çağla", last_name="Öztürk", tags=["İstanbul"])
    stranger = make_contact(account=other_account, phone="+14155552671", first_name="Other")
    _stamp(ada, "2026-11-25T10:15:00.123456+00:00", "2026-11-27T10:15:00+00:00")
    _stamp(jose, "2026-11-26T08:00:00.5+00:00", "2026-11-26T08:00:00.5+00:00")
    _stamp(cagla, "2026-01-02T03:04:05.000006+00:00", "2026-01-02T03:04:05.000006+00:00")
    _stamp(stranger, "2026-11-27T00:00:00+00:00", "2026-11-27T00:00:00+00:00")
    return {"ada": ada, "jose": jose, "cagla": cagla, "stranger": stranger}


# The preferences cell of a contact that never set a channel.
UNSET_PREFERENCES = (
    '{""sms"":""unset"",""whatsapp"":""unset"",""email"":""unset"",'
    '""rcs"":""unset"",""viber"":""unset"",""voice"":""unset""}'
)


def test_csv_is_exactly_the_import_columns_newest_first(contacts):
    ada, jose, cagla = contacts["ada"], contacts["jose"], contacts["cagla"]

    out, err = _export("--account", "Acme")

    assert out == (
        HEADER + f'{jose.pk},,jose@example.org,José,Müller,,lead,[],{{}},"{UNSET_PREFERENCES}",'
        "2026-11-26T08:00:00.500000Z,2026-11-26T08:00:00.500000Z\n"
        + f'{ada.pk},+14155552671,ada@example.com,Zoë Ada,"O\'Brien, ""Jr""",US,customer,'
        '"[""vip"",""a|b"",""c,d"",""say \\""hi\\""""]",'
        '"{""note"":""l1\\nl2"",""plan"":""pro"",""seats"":12,""nested"":{""a"":[1,2.5,""x, y""],""b"":{""c"":true}}}",'
        '"{""sms"":""opted_in"",""whatsapp"":""unset"",""email"":""opted_out"",""rcs"":""unset"",""viber"":""unset"",'
        '""voice"":""unset""}",'
        "2026-11-25T10:15:00.123456Z,2026-11-27T10:15:00.000000Z\n"
        + f'{cagla.pk},+905321234567,,Çağla,Öztürk,TR,lead,"[""İstanbul""]",{{}},"{UNSET_PREFERENCES}",'
        "2026-01-02T03:04:05.000006Z,2026-01-02T03:04:05.000006Z\n"
    )
    assert err.startswith("Exported 3 contacts (csv) to stdout in "), err


def test_csv_cells_read_back_as_the_stored_values(contacts):
    out, _ = _export("--account", "Acme")

    rows = list(csv.DictReader(io.StringIO(out)))

    ada = next(row for row in rows if row["id"] == contacts["ada"].pk)
    assert ada["last_name"] == 'O\'Brien, "Jr"'
    assert json.loads(ada["tags"]) == ["vip", "a|b", "c,d", 'say "hi"']
    assert json.loads(ada["metadata"]) == {
        "plan": "pro",
        "seats": 12,
        "nested": {"a": [1, 2.5, "x, y"], "b": {"c": True}},
        "note": "l1\nl2",
    }
    jose = next(row for row in rows if row["id"] == contacts["jose"].pk)
    assert (jose["phone"], jose["country"]) == ("", "")


def test_jsonl_is_one_object_per_line_with_the_same_keys(contacts):
    ada, jose, cagla = contacts["ada"], contacts["jose"], contacts["cagla"]
    unset = {channel: "unset" for channel in ("sms", "whatsapp", "email", "rcs", "viber", "voice")}

    out, err = _export("--account", "Acme", "--format", "jsonl")

    lines = out.split("\n")
    assert lines[-1] == ""
    assert lines[1] == (
        f'{{"id":"{ada.pk}","phone":"+14155552671","email":"ada@example.com","first_name":"Zoë Ada",'
        '"last_name":"O\'Brien, \\"Jr\\"","country":"US","lifecycle_stage":"customer",'
        '"tags":["vip","a|b","c,d","say \\"hi\\""],'
        '"metadata":{"note":"l1\\nl2","plan":"pro","seats":12,"nested":{"a":[1,2.5,"x, y"],"b":{"c":true}}},'
        '"preferences":{"sms":"opted_in","whatsapp":"unset","email":"opted_out","rcs":"unset","viber":"unset",'
        '"voice":"unset"},"created_at":"2026-11-25T10:15:00.123456Z","updated_at":"2026-11-27T10:15:00.000000Z"}'
    )
    assert [json.loads(line) for line in lines[:-1]] == [
        {
            "id": jose.pk,
            "phone": None,
            "email": "jose@example.org",
            "first_name": "José",
            "last_name": "Müller",
            "country": None,
            "lifecycle_stage": "lead",
            "tags": [],
            "metadata": {},
            "preferences": unset,
            "created_at": "2026-11-26T08:00:00.500000Z",
            "updated_at": "2026-11-26T08:00:00.500000Z",
        },
        json.loads(lines[1]),
        {
            "id": cagla.pk,
            "phone": "+905321234567",
            "email": None,
            "first_name": "Çağla",
            "last_name": "Öztürk",
            "country": "TR",
            "lifecycle_stage": "lead",
            "tags": ["İstanbul"],
            "metadata": {},
            "preferences": unset,
            "created_at": "2026-01-02T03:04:05.000006Z",
            "updated_at": "2026-01-02T03:04:05.000006Z",
        },
    ]
    assert list(json.loads(lines[0])) == list(EXPORT_COLUMNS)
    assert err.startswith("Exported 3 contacts (jsonl) to stdout"), err


def test_another_accounts_contacts_never_appear(contacts):
    ours, _ = _export("--account", "Acme", "--format", "jsonl")
    theirs, _ = _export("--account", "Globex", "--format", "jsonl")

    assert [json.loads(line)["id"] for line in ours.splitlines()] == [
        contacts["jose"].pk,
        contacts["ada"].pk,
        contacts["cagla"].pk,
    ]
    assert [json.loads(line)["id"] for line in theirs.splitlines()] == [contacts["stranger"].pk]


def test_an_account_without_contacts_exports_the_header_only(db):
    Account.objects.create(name="Empty")

    out, err = _export("--account", "Empty")

    assert out == HEADER
    assert err.startswith("Exported 0 contacts (csv) to stdout in "), err


def test_an_unknown_account_is_an_error(contacts):
    with pytest.raises(CommandError, match="Unknown account: Nobody"):
        _export("--account", "Nobody")


def test_segment_narrows_to_its_current_members(account, contacts):
    rules = {"match": "any", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]}
    segment = segment_create(account=account, name="VIPs", rules=rules)

    out, _ = _export("--account", "Acme", "--segment", segment.pk, "--format", "jsonl")

    assert [json.loads(line)["id"] for line in out.splitlines()] == [contacts["ada"].pk]


def test_segment_of_another_account_is_unknown(other_account, contacts):
    rules = {"match": "all", "conditions": [{"field": "first_name", "operator": "exists", "value": None}]}
    theirs = segment_create(account=other_account, name="Everyone", rules=rules)

    with pytest.raises(CommandError, match=rf"^Unknown segment: {theirs.pk}$"):
        _export("--account", "Acme", "--segment", theirs.pk)
    with pytest.raises(CommandError, match=r"^Unknown segment: seg_doesnotexist$"):
        _export("--account", "Acme", "--segment", "seg_doesnotexist")


def test_list_narrows_to_its_members(account, contacts):
    contact_list = list_create(account=account, name="Newsletter")
    list_add_members(
        account=account, contact_list=contact_list, contact_ids=[contacts["cagla"].pk, contacts["jose"].pk]
    )

    out, _ = _export("--account", "Acme", "--list", contact_list.pk, "--format", "jsonl")

    assert [json.loads(line)["id"] for line in out.splitlines()] == [contacts["jose"].pk, contacts["cagla"].pk]


def test_list_and_segment_together_export_both_conditions(account, contacts):
    contact_list = list_create(account=account, name="Newsletter")
    list_add_members(
        account=account, contact_list=contact_list, contact_ids=[contacts["cagla"].pk, contacts["jose"].pk]
    )
    rules = {"match": "all", "conditions": [{"field": "phone", "operator": "exists", "value": None}]}
    segment = segment_create(account=account, name="With phone", rules=rules)

    out, _ = _export("--account", "Acme", "--list", contact_list.pk, "--segment", segment.pk, "--format", "jsonl")

    assert [json.loads(line)["id"] for line in out.splitlines()] == [contacts["cagla"].pk]


def test_list_of_another_account_is_unknown(other_account, contacts):
    theirs = list_create(account=other_account, name="Theirs")
    list_add_members(account=other_account, contact_list=theirs, contact_ids=[contacts["stranger"].pk])

    with pytest.raises(CommandError, match=rf"^Unknown list: {theirs.pk}$"):
        _export("--account", "Acme", "--list", theirs.pk)


def test_output_file_gets_the_data_and_stdout_nothing(contacts, tmp_path):
    expected, _ = _export("--account", "Acme")
    target = tmp_path / "contacts.csv"

    out, err = _export("--account", "Acme", "--output", str(target))

    assert out == ""
    assert target.read_text(encoding="utf-8") == expected
    assert err.startswith(f"Exported 3 contacts (csv) to {target} in "), err
    assert [path.name for path in tmp_path.iterdir()] == ["contacts.csv"]  # no temporary file left


def test_output_file_named_jsonl_defaults_to_jsonl(contacts, tmp_path):
    expected, _ = _export("--account", "Acme", "--format", "jsonl")
    target = tmp_path / "contacts.jsonl"

    _export("--account", "Acme", "--output", str(target))

    assert target.read_text(encoding="utf-8") == expected


def test_output_in_a_missing_directory_is_an_error(contacts, tmp_path):
    with pytest.raises(CommandError, match="No such directory"):
        _export("--account", "Acme", "--output", str(tmp_path / "missing" / "contacts.csv"))


def test_export_lifts_the_statement_timeout_for_its_session(contacts):
    _export("--account", "Acme")

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("0",)


# The child's peak RSS is read from VmHWM, the high-water mark of its own
# address space. resource.getrusage's ru_maxrss would not do: Linux carries it
# across exec from the process that forked the child, so the child would start
# at pytest's own peak and any growth below it would go unseen.
_MEASURE = """
import os, sys
import django

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_project.settings")
django.setup()
from django.core.management import call_command
from django.db import connection
import contacts.management.commands.export_contacts  # its imports are not the export's memory

connection.settings_dict["NAME"] = sys.argv[1]
connection.ensure_connection()
before = peak_kib()
call_command("export_contacts", "--account", sys.argv[2], "--format", sys.argv[3], "--output", sys.argv[4])
print(before, peak_kib())
"""
MEMORY_CONTACTS = 20_000
# Each contact carries ~4 KB of metadata: holding the rows (88 MB of CSV text
# alone, several times that as Python objects) would break this bound, while
# streaming them grows the peak by well under 1 MiB.
PEAK_GROWTH_LIMIT_KIB = 60 * 1024


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_memory_stays_flat(fmt, tmp_path):
    account = Account.objects.create(name="Big")
    seed_demo_data(account=account, contacts=MEMORY_CONTACTS, seed=3)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET metadata = metadata || jsonb_build_object('notes', repeat('x', 4000)) "
            "WHERE account_id = %s",
            [account.pk],
        )
    target = tmp_path / f"big.{fmt}"

    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, connection.settings_dict["NAME"], "Big", fmt, str(target)],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    before, after = (int(value) for value in result.stdout.split())
    assert after - before < PEAK_GROWTH_LIMIT_KIB, f"peak RSS grew by {(after - before) // 1024} MiB"
    with Path(target).open(encoding="utf-8") as exported:
        lines = sum(1 for _ in exported)
    assert lines == MEMORY_CONTACTS + (1 if fmt == "csv" else 0)


def _without_ids_and_times(jsonl: str) -> list[dict]:
    objects = [json.loads(line) for line in jsonl.splitlines()]
    for item in objects:
        del item["id"], item["created_at"], item["updated_at"]
    return sorted(objects, key=lambda item: json.dumps(item, sort_keys=True))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_imported_into_an_empty_account_reproduces_every_contact(contacts, tmp_path, fmt):
    exported = tmp_path / f"acme.{fmt}"
    _export("--account", "Acme", "--output", str(exported))
    Account.objects.create(name="Copy")

    # One validating process: forking workers closes the connection holding the test's transaction.
    call_command(
        "import_contacts",
        str(exported),
        "--account",
        "Copy",
        "--workers",
        "1",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )

    original, _ = _export("--account", "Acme", "--format", "jsonl")
    copied, _ = _export("--account", "Copy", "--format", "jsonl")
    assert len(copied.splitlines()) == 3
    assert _without_ids_and_times(copied) == _without_ids_and_times(original)
