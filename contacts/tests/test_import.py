"""``import_contacts`` (API.md §9): the field rules of §4, upserts, the semantics of contacts/importers.py.

Every test commits (the command commits batch by batch, and some run a
process pool or a subprocess), hence ``transaction=True`` for the module.
"""

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

import dj_database_url
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import Account
from contacts.management.commands import import_contacts as import_command
from contacts.models import ActivityEvent, Contact, SuppressionEntry
from contacts.services import contact_set_preferences
from contacts_project.progress import Progress

pytestmark = pytest.mark.django_db(transaction=True)

CONTACTS = "/v1/contacts"
CHANNELS = ("sms", "whatsapp", "email", "rcs", "viber", "voice")
ALL_UNSET = dict.fromkeys(CHANNELS, "unset")
P1, P2, P3, P5 = (f"+1415555{number}" for number in (2671, 2672, 2673, 2675))
UK = "+442079460958"

INVALID_PHONE = "Enter a valid phone number."
NATIONAL_PHONE = "Give the number in international form (+14155552671), or give `country` with a national number."
INVALID_EMAIL = "Enter a valid email address."
UNKNOWN_COUNTRY = "Enter an ISO 3166-1 alpha-2 country code, such as US or TR."
BAD_STAGE = "Use 1 to 32 of a-z, 0-9, _ and -."
BLANK = "This field may not be blank."
NOT_A_STRING = "Not a valid string."
NUL = "NUL characters (\\u0000) are not allowed."
SURROGATE = "Unpaired surrogates (\\ud800-\\udfff) are not valid Unicode text."
NOT_JSON = "Not valid JSON."
METADATA_KEY = "Metadata keys must be 1 to 40 characters."
METADATA_KEYS = "At most 50 keys are allowed."
METADATA_SIZE = "Metadata must serialize to at most 8192 bytes."
NO_IDENTIFIER = "No contact with this id in the account, and no phone or email to create one."

SUMMARY = re.compile(
    r"(?P<verb>Imported|Would import) (?P<rows>\d+) rows into (?P<account>.+?): (?P<created>\d+) created, "
    r"(?P<updated>\d+) updated, (?P<unchanged>\d+) unchanged, (?P<skipped>\d+) skipped "
    r"in \d+\.\ds \([\d,]+ rows/s\)\."
)


# --- Helpers -------------------------------------------------------------------------


@dataclass
class Outcome:
    stdout: str
    stderr: str
    error: CommandError | None


def run_import(path, *, account="Acme", **options) -> Outcome:
    options.setdefault("workers", 1)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_contacts", str(path), account=account, stdout=out, stderr=err, **options)
    except CommandError as error:
        return Outcome(out.getvalue(), err.getvalue(), error)
    return Outcome(out.getvalue(), err.getvalue(), None)


def summary(stdout: str, verb: str = "Imported", account: str = "Acme") -> dict:
    """The counts of the summary line, which is all of stdout."""
    match = SUMMARY.fullmatch(stdout.rstrip("\n"))
    assert match, stdout
    assert (match["verb"], match["account"]) == (verb, account), stdout
    return {name: int(match[name]) for name in ("rows", "created", "updated", "unchanged", "skipped")}


def tally(*, created=0, updated=0, unchanged=0, skipped=0) -> dict:
    rows = created + updated + unchanged + skipped
    return {"rows": rows, "created": created, "updated": updated, "unchanged": unchanged, "skipped": skipped}


def imported(path, **options) -> dict:
    """Run an import in which no row may be skipped; return its counts."""
    outcome = run_import(path, **options)
    assert outcome.error is None, (outcome.error, outcome.stdout)
    return summary(outcome.stdout, account=options.get("account", "Acme"))


def imported_with_skips(path, **options) -> dict:
    """Run an import that skips rows: it exits with status 1 after printing its summary."""
    outcome = run_import(path, **options)
    assert isinstance(outcome.error, CommandError), outcome
    assert outcome.error.returncode == 1
    assert re.fullmatch(r"\d+ row\(s\) skipped; reasons in .+ \(row 1 is the first data row\)\.", str(outcome.error))
    return summary(outcome.stdout, verb="Would import" if options.get("dry_run") else "Imported")


def error_rows(path) -> list[tuple[int, str | None, str]]:
    """The error file as (row, field, reason); an empty field (a row-level problem) is None."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["row", "field", "reason"]
    return [(int(row), field or None, reason) for row, field, reason in rows[1:]]


def write_csv(path: Path, header: list[str], *rows: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def jsonl_text(*lines) -> str:
    """One line per item: dicts (and other values) as JSON, strings as they are."""
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


def write_jsonl(path: Path, *lines) -> Path:
    path.write_text(jsonl_text(*lines), encoding="utf-8")
    return path


def fields_of(contact: Contact) -> dict:
    """A contact's fields as the API shows them (ids and timestamps aside)."""
    return {
        "phone": str(contact.phone) if contact.phone else None,
        "email": contact.email,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "country": contact.country,
        "lifecycle_stage": contact.lifecycle_stage,
        "tags": contact.tags,
        "metadata": contact.metadata,
        "preferences": contact.preference_map,
    }


def contact(**lookup) -> dict:
    return fields_of(Contact.objects.get(**lookup))


def contact_fields(account) -> list[dict]:
    contacts = [fields_of(found) for found in Contact.objects.for_account(account)]
    return sorted(contacts, key=lambda fields: (fields["phone"] or "", fields["email"] or ""))


def row_versions() -> dict:
    """Every contact's ``updated_at`` and row version (``xmin``): any rewrite of a row changes the latter."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, updated_at, xmin::text FROM contacts_contact")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def table_counts() -> tuple[int, int, int]:
    return Contact.objects.count(), ActivityEvent.objects.count(), SuppressionEntry.objects.count()


def preference_events(contact_id: str) -> list[tuple]:
    """Sorted (channel, old status, new status, reason) of a contact's ``preference.updated`` events."""
    return sorted(
        (event.channel, event.data["old_status"], event.data["new_status"], event.data["reason"])
        for event in ActivityEvent.objects.filter(contact_id=contact_id, type="preference.updated")
    )


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def bytes_stdin(monkeypatch, text: str) -> None:
    """Standard input as the command sees it in a shell pipe: bytes under a text wrapper."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode("utf-8")), encoding="utf-8"))


# --- Reading: CSV, JSONL, files and stdin ----------------------------------------------


def test_csv_creates_a_contact_per_row_with_every_field(account, tmp_path):
    header = ["phone", "email", "first_name", "last_name", "country", "lifecycle_stage", "tags", "metadata"]
    extra = ["metadata.seats", "metadata.plan", "metadata.trial", "metadata.ratio", "metadata.zip", "preferences"]
    ada = [" +1 (415) 555-2671 ", "Ada@Example.COM", " Ada ", "Lovelace", "", "customer", "vip|beta| vip "]
    ada_extra = ['{"source": {"fair": "1851"}}', "12", "pro", "true", "2.5", "02134"]
    preferences = '{"sms": "opted_in", "email": "opted_out"}'
    grace = ["", "grace@example.com", "Grace", "Hopper", "gb", "", '["navy", "a|b", "navy"]', *[""] * 7]
    path = write_csv(tmp_path / "contacts.csv", [*header, *extra], [*ada, *ada_extra, preferences], grace)

    assert imported(path) == tally(created=2)

    assert contact(email="ada@example.com") == {
        "phone": P1,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "US",
        "lifecycle_stage": "customer",
        "tags": ["vip", "beta"],
        "metadata": {
            "source": {"fair": "1851"},
            "seats": 12,
            "plan": "pro",
            "trial": True,
            "ratio": 2.5,
            "zip": "02134",
        },
        "preferences": {**ALL_UNSET, "sms": "opted_in", "email": "opted_out"},
    }
    assert contact(email="grace@example.com") == {
        "phone": None,
        "email": "grace@example.com",
        "first_name": "Grace",
        "last_name": "Hopper",
        "country": "GB",
        "lifecycle_stage": "lead",
        "tags": ["navy", "a|b"],
        "metadata": {},
        "preferences": ALL_UNSET,
    }
    assert Contact.objects.count() == 2
    assert not (tmp_path / "contacts.csv.errors.csv").exists()


def test_jsonl_creates_a_contact_per_line_with_every_field(account, tmp_path):
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {
            "phone": "+1 415-555-2671",
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "lifecycle_stage": "customer",
            "tags": ["vip", " vip", "beta"],
            "metadata": {"plan": "pro", "nested": {"a": [1, None]}},
            "metadata.seats": 12,
            "preferences": {"whatsapp": "opted_in"},
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
        },
        "",
        {"email": "grace@example.com", "country": "gb", "phone": None},
    )

    assert imported(path) == tally(created=2)

    assert contact(email="ada@example.com") == {
        "phone": P1,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "US",
        "lifecycle_stage": "customer",
        "tags": ["vip", "beta"],
        "metadata": {"plan": "pro", "nested": {"a": [1, None]}, "seats": 12},
        "preferences": {**ALL_UNSET, "whatsapp": "opted_in"},
    }
    assert contact(email="grace@example.com") == {
        "phone": None,
        "email": "grace@example.com",
        "first_name": "",
        "last_name": "",
        "country": "GB",
        "lifecycle_stage": "lead",
        "tags": [],
        "metadata": {},
        "preferences": ALL_UNSET,
    }


def test_format_comes_from_the_extension_unless_given(account, tmp_path):
    cases = [
        ("contacts.csv", None, "csv"),
        ("contacts.jsonl", None, "jsonl"),
        ("contacts.txt", None, "csv"),
        ("contacts.txt", "jsonl", "jsonl"),
        ("contacts.jsonl", "csv", "csv"),
        ("contacts.csv", "jsonl", "jsonl"),
    ]
    for number, (name, fmt, content) in enumerate(cases):
        phone = f"+1650555{number:04d}"
        path = tmp_path / str(number) / name
        path.parent.mkdir()
        path.write_text(
            f"phone,first_name\n{phone},Case {number}\n"
            if content == "csv"
            else jsonl_text({"phone": phone, "first_name": f"Case {number}"}),
            encoding="utf-8",
        )

        assert imported(path, **({"format": fmt} if fmt else {})) == tally(created=1), (name, fmt)

        assert contact(phone=phone)["first_name"] == f"Case {number}"


def test_csv_from_stdin(account, tmp_path, monkeypatch):
    # With a byte-order mark, as spreadsheet programs write it.
    bytes_stdin(monkeypatch, f"\ufeffphone,email,tags\n{P1},ada@example.com,a|b\nnot a phone,,\n,grace@example.com,\n")
    errors = tmp_path / "errors.csv"

    assert imported_with_skips("-", errors=str(errors)) == tally(created=2, skipped=1)

    assert error_rows(errors) == [(2, "phone", INVALID_PHONE)]
    assert [(found["phone"], found["email"], found["tags"]) for found in contact_fields(account)] == [
        (None, "grace@example.com", []),
        (P1, "ada@example.com", ["a", "b"]),
    ]


def test_jsonl_from_stdin(account, tmp_path, monkeypatch):
    bytes_stdin(monkeypatch, jsonl_text({"phone": P1, "tags": ["a"]}, [1], {"email": "grace@example.com"}))
    errors = tmp_path / "errors.csv"

    assert imported_with_skips("-", format="jsonl", errors=str(errors)) == tally(created=2, skipped=1)

    assert error_rows(errors) == [(2, None, "Each line must be a JSON object.")]
    assert contact(phone=P1)["tags"] == ["a"]
    assert Contact.objects.filter(email="grace@example.com").count() == 1


# --- Field rules: bad rows are skipped and reported ---------------------------------------

CSV_COLUMNS = ["phone", "email", "first_name", "country", "lifecycle_stage", "tags", "metadata", "preferences"]
OK = "ok@example.com"


def cells(**values) -> list[str]:
    return [values.get(column, "") for column in CSV_COLUMNS]


# (cells, the error file's (field, reason) for the row); no errors for a good row.
CSV_ROWS = [
    (cells(phone=P1, first_name="Ann"), []),
    (cells(phone="+1 415 555 267"), [("phone", INVALID_PHONE)]),
    (cells(phone="(415) 555-2672"), [("phone", NATIONAL_PHONE)]),
    (cells(phone="(415) 555-2673", country="us"), []),
    (cells(phone="+1 415 555 2674 ext. 9"), [("phone", "Phone extensions are not supported.")]),
    (cells(email="not-an-email"), [("email", INVALID_EMAIL)]),
    (cells(email=OK, country="XX"), [("country", UNKNOWN_COUNTRY)]),
    (cells(email="bad@", country="XX"), [("email", INVALID_EMAIL), ("country", UNKNOWN_COUNTRY)]),
    # A quoted cell spanning two lines: rows are records, not lines.
    (cells(email="multi@example.com", metadata='{"note":\n "two lines"}'), []),
    (cells(email=OK, lifecycle_stage="VIP Customer"), [("lifecycle_stage", BAD_STAGE)]),
    (cells(email=OK, first_name="x" * 101), [("first_name", "Ensure this field has no more than 100 characters.")]),
    (cells(email=OK, tags="ok| "), [("tags.1", BLANK)]),
    (cells(email=OK, tags='["ok", 5]'), [("tags.1", NOT_A_STRING)]),
    (cells(email=OK, tags="x" * 65), [("tags.0", "Ensure this field has no more than 64 characters.")]),
    (cells(email=OK, tags="|".join(f"t{n}" for n in range(101))), [("tags", "At most 100 tags are allowed.")]),
    (cells(email=OK, metadata=json.dumps({f"k{n}": n for n in range(51)})), [("metadata", METADATA_KEYS)]),
    (cells(email=OK, metadata=json.dumps({"k" * 41: 1})), [(f"metadata.{'k' * 41}", METADATA_KEY)]),
    (cells(email=OK, metadata=json.dumps({"big": "x" * 8200})), [("metadata", METADATA_SIZE)]),
    (cells(email=OK, metadata="[1, 2]"), [("metadata", "Must be a JSON object.")]),
    (cells(email=OK, preferences='{"fax": "opted_in"}'), [("preferences.fax", "Unknown channel.")]),
    (
        cells(email=OK, preferences='{"sms": "maybe"}'),
        [("preferences.sms", "Must be one of: opted_in, opted_out, unset.")],
    ),
    (cells(email=OK, first_name="Ann\x00"), [("first_name", NUL)]),
    (cells(email=OK, metadata='{"note": "a\\u0000b"}'), [("metadata.note", NUL)]),
    (cells(email=OK, metadata='{"note": "\\ud800"}'), [("metadata.note", SURROGATE)]),
    (cells(email=OK, tags='["\\udfff"]'), [("tags.0", SURROGATE)]),
    (cells(email=OK, tags="[oops"), [("tags", NOT_JSON)]),
    (cells(email=OK, metadata="{oops"), [("metadata", NOT_JSON)]),
    (cells(email=OK, preferences="{oops"), [("preferences", NOT_JSON)]),
    (cells(first_name="Nobody"), [("phone", NO_IDENTIFIER)]),
    ([*cells(email=OK), "surplus"], [(None, "More cells than columns.")]),
    (cells(email="Last@Example.com"), []),
]


def test_bad_csv_rows_are_skipped_and_reported_and_good_rows_imported(account, tmp_path):
    path = write_csv(tmp_path / "contacts.csv", CSV_COLUMNS, *(row for row, _ in CSV_ROWS))
    expected = [(number, field, reason) for number, (_, errors) in enumerate(CSV_ROWS, 1) for field, reason in errors]
    bad = sum(1 for _, errors in CSV_ROWS if errors)

    outcome = run_import(path)

    assert outcome.error is not None
    assert outcome.error.returncode == 1
    assert str(outcome.error) == (f"{bad} row(s) skipped; reasons in {path}.errors.csv (row 1 is the first data row).")
    assert summary(outcome.stdout) == tally(created=4, skipped=bad)
    # Rows refused when matched (no identifier) are reported after rows refused when validated: compare by row.
    assert sorted(error_rows(f"{path}.errors.csv"), key=lambda entry: entry[0]) == expected
    assert [(found["phone"], found["email"]) for found in contact_fields(account)] == [
        (None, "last@example.com"),
        (None, "multi@example.com"),
        (P1, None),
        (P3, None),
    ]
    assert contact(email="multi@example.com")["metadata"] == {"note": "two lines"}


# Bodies the API refuses; as JSONL lines the importer must refuse them with the same (attr, detail).
API_REFUSED = [
    {"phone": "+1 415 555 267"},
    {"phone": "(415) 555-2672"},
    {"phone": "(415) 555-2672", "country": "ZZ"},
    {"phone": 4155552672},
    {"email": "nope"},
    {"email": 5},
    {"email": OK, "country": "XX"},
    {"email": "bad@", "country": "XX"},
    {"email": OK, "lifecycle_stage": "Bad Stage"},
    {"email": OK, "lifecycle_stage": None},
    {"email": OK, "first_name": "x" * 101},
    {"email": OK, "tags": ["ok", " "]},
    {"email": OK, "tags": "vip"},
    {"email": OK, "tags": None},
    {"email": OK, "tags": [str(n) for n in range(101)]},
    {"email": OK, "metadata": {str(n): n for n in range(51)}},
    {"email": OK, "metadata": {"k" * 41: 1}},
    {"email": OK, "metadata": {"": 1}},
    {"email": OK, "metadata": {"big": "x" * 8200}},
    {"email": OK, "metadata": [1]},
    {"email": OK, "metadata": None},
    {"email": OK, "first_name": "a\x00b"},
    {"email": OK, "last_name": "\ud800"},
    {"email": OK, "metadata": {"k": "\x00"}},
    {"email": OK, "metadata": {"k\x00": 1}},
    {"email": OK, "metadata": {"deep": json.loads("[" * 70 + "]" * 70)}},
    {"email": OK, "fist_name": "Ada"},
]


def test_jsonl_rows_are_refused_exactly_as_the_api_refuses_them(api, tmp_path):
    api_errors = []
    for body in API_REFUSED:
        response = api.post(CONTACTS, json.dumps(body), content_type="application/json")
        assert response.status_code == 400, (body, response.content)
        api_errors.append(sorted((error["attr"] or "", error["detail"]) for error in response.json()["errors"]))
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"phone": P1},
        *API_REFUSED,
        [1, 2],
        '"text"',
        "{not json",
        "",
        {"email": "last@example.com", "preferences": {"sms": "sometimes"}},
        {"email": "last@example.com", "preferences": {"pager": "opted_in"}},
        {"email": "last@example.com", "preferences": ["sms"]},
        {"email": "last@example.com", "id": 7},
        {"email": "last@example.com"},
    )

    assert imported_with_skips(path) == tally(created=2, skipped=len(API_REFUSED) + 7)

    reported = error_rows(f"{path}.errors.csv")
    for number, expected in enumerate(api_errors, 2):
        assert sorted((field or "", reason) for row, field, reason in reported if row == number) == expected, (
            API_REFUSED[number - 2]
        )
    first = len(API_REFUSED) + 2
    assert [entry for entry in reported if entry[0] > first - 1] == [
        (first, None, "Each line must be a JSON object."),
        (first + 1, None, "Each line must be a JSON object."),
        (first + 2, None, "Not a valid JSON line."),
        # The blank line is passed over, but still counted: row numbers are line numbers.
        (first + 4, "preferences.sms", "Must be one of: opted_in, opted_out, unset."),
        (first + 5, "preferences.pager", "Unknown channel."),
        (first + 6, "preferences", "Must be a JSON object of channel statuses."),
        (first + 7, "id", NOT_A_STRING),
    ]
    assert sorted(str(found.phone or found.email) for found in Contact.objects.all()) == [P1, "last@example.com"]


def test_nan_and_infinity_in_jsonl_are_not_json(account, tmp_path):
    """The API refuses them as not JSON and PostgreSQL's jsonb cannot hold them: the lines are skipped."""
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        '{"email": "a@example.com", "metadata": {"score": NaN}}',
        '{"email": "b@example.com", "metadata": {"score": -Infinity}}',
        '{"email": "c@example.com", "metadata": {"score": 1e400}}',
        {"email": "good@example.com"},
    )

    assert imported_with_skips(path) == tally(created=1, skipped=3)

    assert error_rows(f"{path}.errors.csv") == [(number, None, "Not a valid JSON line.") for number in (1, 2, 3)]
    assert [found.email for found in Contact.objects.all()] == ["good@example.com"]


def test_nan_and_infinity_in_csv_json_cells_are_not_json(account, tmp_path):
    path = write_csv(
        tmp_path / "contacts.csv",
        ["email", "metadata"],
        ["a@example.com", '{"score": NaN}'],
        ["b@example.com", '{"score": 1e400}'],
        ["good@example.com", ""],
    )

    assert imported_with_skips(path) == tally(created=1, skipped=2)

    assert error_rows(f"{path}.errors.csv") == [(1, "metadata", NOT_JSON), (2, "metadata", NOT_JSON)]
    assert [found.email for found in Contact.objects.all()] == ["good@example.com"]


def test_metadata_column_cells_are_typed_when_json_and_text_otherwise(account, tmp_path):
    path = write_csv(
        tmp_path / "contacts.csv",
        ["email", "metadata.a", "metadata.b", "metadata.c", "metadata.d", "metadata.e", "metadata.f", "metadata.g"],
        ["ada@example.com", "12", "pro", "[1, 2]", '{"x": null}', "NaN", "Infinity", "007"],
    )

    assert imported(path) == tally(created=1)

    assert contact(email="ada@example.com")["metadata"] == {
        "a": 12,
        "b": "pro",
        "c": [1, 2],
        "d": {"x": None},
        "e": "NaN",
        "f": "Infinity",
        "g": "007",
    }


@pytest.mark.parametrize("header", ["phone,fist_name", "phone,metadata.", "phone,Email", "phone,,email"])
def test_an_unknown_column_refuses_the_whole_file(account, tmp_path, header):
    path = tmp_path / "contacts.csv"
    path.write_text(f"{header}\n{P1},x\n{P2},y\n", encoding="utf-8")

    outcome = run_import(path)

    assert isinstance(outcome.error, CommandError)
    assert outcome.error.returncode == 1
    assert str(outcome.error).startswith("Unknown column(s): ")
    assert outcome.stdout == ""
    assert Contact.objects.count() == 0
    assert not Path(f"{path}.errors.csv").exists()


def test_a_file_that_is_not_utf8_is_refused(account, tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_bytes(f"phone,first_name\n{P1},Jos\xe9\n".encode("latin-1"))

    outcome = run_import(path)

    assert isinstance(outcome.error, CommandError)
    assert str(outcome.error).startswith("The file is not UTF-8 text")
    assert Contact.objects.count() == 0


def test_a_missing_file_is_an_error(account, tmp_path):
    outcome = run_import(tmp_path / "missing.csv")

    assert isinstance(outcome.error, CommandError)
    assert str(outcome.error) == f"No such file: {tmp_path / 'missing.csv'}"


def test_the_account_must_exist(account, tmp_path):
    path = write_csv(tmp_path / "contacts.csv", ["phone"], [P1])

    outcome = run_import(path, account="Nobody")

    assert isinstance(outcome.error, CommandError)
    assert str(outcome.error) == "No account named 'Nobody' (create it with create_api_key --account)."
    assert Contact.objects.count() == 0


# --- Upserts: by id, then phone, then email, else created ------------------------------------


def test_a_row_with_an_id_of_the_accounts_contact_updates_it(account, make_contact, tmp_path):
    ada = make_contact(phone=P1, email="ada@example.com", first_name="Ada", last_name="Lovelace")
    path = write_csv(
        tmp_path / "contacts.csv",
        ["id", "phone", "email", "first_name"],
        [ada.pk, "+1 415 555 2672", "Augusta@Example.com", "Augusta"],
    )

    assert imported(path) == tally(updated=1)

    assert list(Contact.objects.values_list("pk", flat=True)) == [ada.pk]
    assert contact(pk=ada.pk) == {
        "phone": P2,
        "email": "augusta@example.com",
        "first_name": "Augusta",
        "last_name": "Lovelace",
        "country": "US",
        "lifecycle_stage": "lead",
        "tags": [],
        "metadata": {},
        "preferences": ALL_UNSET,
    }


def test_a_row_with_an_id_is_skipped_when_its_phone_or_email_is_another_contacts(account, make_contact, tmp_path):
    ada = make_contact(phone=P1, email="ada@example.com", first_name="Ada")
    bob = make_contact(phone=P2, email="bob@example.com", first_name="Bob")
    before = row_versions()
    path = write_csv(
        tmp_path / "contacts.csv",
        ["id", "phone", "email", "first_name"],
        [ada.pk, "+1 (415) 555-2672", "", "Ada 1"],
        [ada.pk, "", "BOB@example.com", "Ada 2"],
        [ada.pk, P1, "ada@example.com", "Augusta"],
    )

    assert imported_with_skips(path) == tally(updated=1, skipped=2)

    assert error_rows(f"{path}.errors.csv") == [
        (1, "phone", f"Another contact has this phone: {bob.pk}."),
        (2, "email", f"Another contact has this email: {bob.pk}."),
    ]
    assert (contact(pk=ada.pk)["phone"], contact(pk=ada.pk)["email"], contact(pk=ada.pk)["first_name"]) == (
        P1,
        "ada@example.com",
        "Augusta",
    )
    assert (contact(pk=bob.pk)["phone"], contact(pk=bob.pk)["email"], contact(pk=bob.pk)["first_name"]) == (
        P2,
        "bob@example.com",
        "Bob",
    )
    assert row_versions()[bob.pk] == before[bob.pk]


def test_a_row_with_an_id_of_another_accounts_contact_never_touches_it(account, other_account, make_contact, tmp_path):
    theirs = make_contact(account=other_account, phone=P1, email="ada@example.com", first_name="Theirs")
    theirs_before = contact(pk=theirs.pk)
    before = row_versions()
    path = write_csv(
        tmp_path / "contacts.csv",
        ["id", "phone", "email", "first_name"],
        [theirs.pk, P1, "", "Mine"],
        [theirs.pk, "", "", "Nobody"],
        [theirs.pk, "", "ada@example.com", "Mine too"],
    )

    assert imported_with_skips(path) == tally(created=2, skipped=1)

    assert error_rows(f"{path}.errors.csv") == [(2, "id", NO_IDENTIFIER)]
    assert contact(pk=theirs.pk) == theirs_before
    assert row_versions()[theirs.pk] == before[theirs.pk]
    ours = Contact.objects.for_account(account)
    assert sorted((str(found.phone or ""), found.email or "", found.first_name) for found in ours) == [
        ("", "ada@example.com", "Mine too"),
        (P1, "", "Mine"),
    ]
    assert theirs.pk not in {found.pk for found in ours}


def test_a_row_matches_a_contact_by_phone_in_any_written_form(account, make_contact, tmp_path):
    ada = make_contact(phone=P1, first_name="Ada")
    forms = [
        (["phone"], ["+14155552671"]),
        (["phone"], ["+1 (415) 555-2671"]),
        (["phone"], ["+1.415.555.2671"]),
        (["phone"], [" +1 415-555-2671 "]),
        (["phone", "country"], ["(415) 555-2671", "us"]),
        (["phone", "country"], ["4155552671", "US"]),
    ]
    for number, (header, cells_) in enumerate(forms):
        path = write_csv(tmp_path / f"{number}.csv", [*header, "last_name"], [*cells_, f"Form {number}"])

        assert imported(path) == tally(updated=1), cells_

        assert list(Contact.objects.values_list("pk", "first_name", "last_name")) == [(ada.pk, "Ada", f"Form {number}")]


def test_phone_is_matched_before_email(account, make_contact, tmp_path):
    by_phone = make_contact(phone=P1, first_name="Phone")
    by_email = make_contact(email="ada@example.com", first_name="Email")
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "last_name"],
        # Matched by phone; its email is the other contact's, so the row is refused naming that contact.
        [P1, "ada@example.com", "X"],
        [P1, "new@example.com", "Y"],
        [P2, "ADA@example.com", "Z"],
    )

    assert imported_with_skips(path) == tally(updated=2, skipped=1)

    assert error_rows(f"{path}.errors.csv") == [(1, "email", f"Another contact has this email: {by_email.pk}.")]
    assert (contact(pk=by_phone.pk)["phone"], contact(pk=by_phone.pk)["email"]) == (P1, "new@example.com")
    assert contact(pk=by_phone.pk)["last_name"] == "Y"
    assert (contact(pk=by_email.pk)["phone"], contact(pk=by_email.pk)["email"]) == (P2, "ada@example.com")
    assert (contact(pk=by_email.pk)["last_name"], contact(pk=by_email.pk)["country"]) == ("Z", "US")
    assert Contact.objects.count() == 2


def test_a_row_matches_a_contact_by_email_case_insensitively(account, make_contact, tmp_path):
    ada = make_contact(email="Ada@Example.com")
    path = write_csv(tmp_path / "contacts.csv", ["email", "first_name"], ["ADA@EXAMPLE.COM", "Ada"])

    assert imported(path) == tally(updated=1)

    assert list(Contact.objects.values_list("pk", "email", "first_name")) == [(ada.pk, "ada@example.com", "Ada")]


@pytest.mark.parametrize("batch_size", [1, 2, 5000])
def test_later_rows_update_the_contact_an_earlier_row_created(account, tmp_path, batch_size):
    """Whatever the batches, each row counts once: created, updated or unchanged."""
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "first_name", "last_name", "tags"],
        [P1, "", "Ann", "", "a"],
        ["", "bob@example.com", "Bob", "", ""],
        [P3, "", "Cy", "", ""],
        ["+1 (415) 555-2671", "", "", "Lee", "b|c"],
        [P5, "BOB@example.com", "", "", ""],
        [P1, "", "Ann", "", ""],
    )

    assert imported(path, batch_size=batch_size) == tally(created=3, updated=2, unchanged=1)

    assert [
        (found["phone"], found["email"], found["first_name"], found["last_name"], found["tags"])
        for found in contact_fields(account)
    ] == [
        (P1, None, "Ann", "Lee", ["b", "c"]),
        (P3, None, "Cy", "", []),
        (P5, "bob@example.com", "Bob", "", []),
    ]


def test_another_accounts_contacts_are_never_matched_or_touched(account, other_account, make_contact, tmp_path):
    theirs = make_contact(account=other_account, phone=P1, email="ada@example.com", first_name="Theirs", tags=["x"])
    theirs_before = contact(pk=theirs.pk)
    before = row_versions()
    path = write_csv(tmp_path / "contacts.csv", ["phone", "email", "first_name"], [P1, "", "Mine"])
    other = write_csv(tmp_path / "other.csv", ["email", "first_name"], ["ADA@example.com", "Mine too"])

    assert imported(path) == tally(created=1)
    assert imported(other) == tally(created=1)

    assert contact(pk=theirs.pk) == theirs_before
    assert row_versions()[theirs.pk] == before[theirs.pk]
    assert [(found["phone"], found["email"], found["first_name"]) for found in contact_fields(account)] == [
        (None, "ada@example.com", "Mine too"),
        (P1, None, "Mine"),
    ]

    theirs_file = write_csv(tmp_path / "theirs.csv", ["phone", "last_name"], [P1, "Updated"])
    assert imported(theirs_file, account="Globex") == tally(updated=1)
    assert contact(pk=theirs.pk) == {**theirs_before, "last_name": "Updated"}
    assert contact(account=account, phone=P1)["last_name"] == ""


# --- Semantics ------------------------------------------------------------------------------


def test_empty_cells_and_missing_keys_leave_stored_values_alone(account, make_contact, tmp_path):
    ada = make_contact(
        phone=P1,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        country="GB",
        lifecycle_stage="customer",
        tags=["vip"],
        metadata={"plan": "pro"},
    )
    contact_set_preferences(account=account, contact_id=ada.pk, statuses={"sms": "opted_in"}, api_key_id=None)
    stored, before, counts = contact(pk=ada.pk), row_versions(), table_counts()
    header = ["id", "phone", "email", "first_name", "last_name", "country", "lifecycle_stage", "tags", "metadata"]
    path = write_csv(
        tmp_path / "contacts.csv",
        [*header, "preferences", "metadata.plan", "created_at", "updated_at"],
        ["", P1, *[""] * 11],
        [ada.pk, *[""] * 12],
        ["", "", "ADA@example.com", *[""] * 10],
    )
    jsonl = write_jsonl(tmp_path / "contacts.jsonl", {"phone": P1}, {"id": ada.pk}, {"email": "ada@example.com"})

    # One row a batch: how rows of one batch are counted is another test's business.
    assert imported(path, batch_size=1) == tally(unchanged=3)
    assert imported(jsonl, batch_size=1) == tally(unchanged=3)

    assert contact(pk=ada.pk) == stored
    assert row_versions() == before
    assert table_counts() == counts


def test_metadata_merges_null_removes_a_key_and_tags_replace(account, make_contact, tmp_path):
    ada = make_contact(phone=P1, tags=["a", "b"], metadata={"plan": "pro", "seats": 12, "keep": True})
    merge = write_csv(
        tmp_path / "merge.csv",
        ["phone", "tags", "metadata", "metadata.extra", "metadata.keep"],
        [P1, "c|a", '{"seats": 20, "plan": null}', "x", ""],
    )
    remove = write_csv(tmp_path / "remove.csv", ["phone", "tags", "metadata.extra"], [P1, "[]", "null"])
    jsonl = write_jsonl(tmp_path / "merge.jsonl", {"phone": P1, "metadata": {"keep": None, "new": [1]}, "tags": ["z"]})

    assert imported(merge) == tally(updated=1)
    assert (contact(pk=ada.pk)["metadata"], contact(pk=ada.pk)["tags"]) == (
        {"seats": 20, "keep": True, "extra": "x"},
        ["c", "a"],
    )

    assert imported(remove) == tally(updated=1)
    assert (contact(pk=ada.pk)["metadata"], contact(pk=ada.pk)["tags"]) == ({"seats": 20, "keep": True}, [])

    assert imported(jsonl) == tally(updated=1)
    assert (contact(pk=ada.pk)["metadata"], contact(pk=ada.pk)["tags"]) == ({"seats": 20, "new": [1]}, ["z"])


def test_metadata_over_the_limits_after_the_merge_is_refused_like_the_api(api, account, make_contact, tmp_path):
    ada = make_contact(phone=P1, first_name="Ada", metadata={f"k{n}": n for n in range(45)})
    six_more = {f"n{n}": n for n in range(6)}
    response = api.patch(f"{CONTACTS}/{ada.pk}", {"metadata": six_more}, format="json")
    assert response.status_code == 400
    assert [(error["attr"], error["detail"]) for error in response.json()["errors"]] == [("metadata", METADATA_KEYS)]
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "first_name", "metadata"],
        [P1, "Refused", json.dumps(six_more)],
        [P1, "Merged", json.dumps({**dict.fromkeys([f"k{n}" for n in range(6)]), **six_more})],
    )

    assert imported_with_skips(path) == tally(updated=1, skipped=1)

    assert error_rows(f"{path}.errors.csv") == [(1, "metadata", METADATA_KEYS)]
    stored = contact(pk=ada.pk)
    assert stored["first_name"] == "Merged"
    assert stored["metadata"] == {**{f"k{n}": n for n in range(6, 45)}, **six_more}


def test_preferences_set_the_channels_given_and_are_recorded_as_import_events(account, make_contact, tmp_path):
    ada = make_contact(phone=P1)
    statuses = {"sms": "opted_out", "viber": "opted_in"}
    contact_set_preferences(account=account, contact_id=ada.pk, statuses=statuses, api_key_id=None)
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "preferences"],
        [P1, '{"sms": "opted_out", "email": "opted_in", "viber": "unset"}'],
        [P2, '{"whatsapp": "opted_in", "rcs": "unset"}'],
    )

    assert imported(path) == tally(created=1, updated=1)

    assert contact(pk=ada.pk)["preferences"] == {**ALL_UNSET, "sms": "opted_out", "email": "opted_in"}
    assert preference_events(ada.pk) == [
        ("email", "unset", "opted_in", "import"),
        ("sms", "unset", "opted_out", "api"),
        ("viber", "opted_in", "unset", "import"),
        ("viber", "unset", "opted_in", "api"),
    ]
    new = Contact.objects.get(phone=P2)
    assert fields_of(new)["preferences"] == {**ALL_UNSET, "whatsapp": "opted_in"}
    assert preference_events(new.pk) == [("whatsapp", "unset", "opted_in", "import")]
    event = ActivityEvent.objects.get(contact_id=new.pk)
    assert (event.account_id, event.type, event.channel) == (account.pk, "preference.updated", "whatsapp")
    assert event.data == {"old_status": "unset", "new_status": "opted_in", "api_key_id": None, "reason": "import"}


def write_records_csv(path: Path, records: list[dict]) -> Path:
    """The records as CSV: a column per key seen, JSON cells for lists and objects, empty cells for absent keys."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    rows = [
        [
            json.dumps(record[column]) if isinstance(record.get(column), list | dict) else str(record.get(column, ""))
            for column in columns
        ]
        for record in records
    ]
    return write_csv(path, columns, *rows)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_second_identical_import_changes_nothing(account, make_contact, tmp_path, fmt):
    make_contact(email="old@example.com", first_name="Old", metadata={"a": 1, "b": 2})
    records = [
        {
            "phone": "+1 (415) 555-2671",
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "tags": ["vip", "beta"],
            "metadata": {"plan": "pro"},
            "preferences": {"sms": "opted_in"},
        },
        {
            "email": "OLD@example.com",
            "last_name": "Timer",
            "metadata": {"b": None, "c": 2},
            "preferences": {"email": "opted_out"},
        },
        {"phone": "(415) 555-2673", "country": "US", "lifecycle_stage": "customer", "metadata.seats": 3},
    ]
    if fmt == "csv":
        path = write_records_csv(tmp_path / "contacts.csv", records)
    else:
        path = write_jsonl(tmp_path / "contacts.jsonl", *records)
    assert imported(path) == tally(created=2, updated=1)
    contacts, before, counts = contact_fields(account), row_versions(), table_counts()

    assert imported(path) == tally(unchanged=3)

    assert contact_fields(account) == contacts
    assert row_versions() == before
    assert table_counts() == counts
    assert contact(email="old@example.com")["metadata"] == {"a": 1, "c": 2}


def test_imported_contacts_are_found_by_search_at_once(api, tmp_path):
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "first_name", "last_name"],
        [P1, "ada@example.com", "Ada", "Lovelace"],
        ["", "jose@example.org", "José", "Müller"],
    )
    assert imported(path) == tally(created=2)

    def found(term: str) -> list[str]:
        return [item["email"] for item in ok(api.get(CONTACTS, {"search": term}))["data"]]

    assert found("lovelace") == ["ada@example.com"]
    assert found("2671") == ["ada@example.com"]
    assert found("+1415") == ["ada@example.com"]
    assert found("jose") == ["jose@example.org"]
    assert found("mull jos") == ["jose@example.org"]
    assert found("example.org") == ["jose@example.org"]

    update = write_csv(tmp_path / "update.csv", ["email", "phone", "first_name"], ["ada@example.com", P2, "Augusta"])
    assert imported(update) == tally(updated=1)

    assert found("augusta lovelace") == ["ada@example.com"]
    assert found("2672") == ["ada@example.com"]
    assert found("2671") == []


def test_country_is_derived_from_the_phone_unless_given(account, make_contact, tmp_path):
    grace = make_contact(email="grace@example.com")
    canadian = make_contact(phone=P2, country="CA")
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "country"],
        ["+44 20 7946 0958", "", ""],
        ["+1 415 555 2673", "", "mx"],
        ["+800 1234 5678", "", ""],
        [P1, "grace@example.com", ""],
        [P2, "", ""],
    )

    assert imported(path) == tally(created=3, updated=1, unchanged=1)

    assert contact(phone=UK)["country"] == "GB"
    assert contact(phone=P3)["country"] == "MX"
    assert contact(phone="+80012345678")["country"] is None
    assert (contact(pk=grace.pk)["phone"], contact(pk=grace.pk)["country"]) == (P1, "US")
    assert contact(pk=canadian.pk)["country"] == "CA"


def test_an_opt_out_outlives_a_deleted_contact_and_wins_over_the_file(api, account, tmp_path):
    response = api.post(CONTACTS, {"phone": P1, "email": "ada@example.com"}, format="json")
    assert response.status_code == 201
    ada_id = response.json()["id"]
    ok(api.put(f"{CONTACTS}/{ada_id}/preferences", {"sms": "opted_out", "email": "opted_out"}, format="json"))
    assert api.delete(f"{CONTACTS}/{ada_id}").status_code == 204
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "preferences"],
        ["+1 (415) 555-2671", "", '{"sms": "opted_in", "whatsapp": "opted_in"}'],
        ["", "ADA@example.com", '{"email": "opted_in"}'],
        [P2, "someone@example.com", '{"sms": "opted_in"}'],
    )

    assert imported(path) == tally(created=3)

    suppressed = {**ALL_UNSET, "sms": "opted_out", "email": "opted_out"}
    by_phone, by_email = Contact.objects.get(phone=P1), Contact.objects.get(email="ada@example.com")
    assert ok(api.get(f"{CONTACTS}/{by_phone.pk}"))["preferences"] == {**suppressed, "whatsapp": "opted_in"}
    assert ok(api.get(f"{CONTACTS}/{by_email.pk}"))["preferences"] == suppressed
    assert contact(phone=P2)["preferences"] == {**ALL_UNSET, "sms": "opted_in"}
    optouts = ok(api.get(f"{CONTACTS}/optouts", {"channel": "sms"}))["data"]
    assert sorted(item["id"] for item in optouts) == sorted([by_phone.pk, by_email.pk])
    for found in (by_phone, by_email):
        assert ("sms", "opted_out", "suppression_list") in {
            (channel, new, reason) for channel, _, new, reason in preference_events(found.pk)
        }


def test_jsonl_null_clears_like_the_api(account, make_contact, tmp_path):
    ada = make_contact(phone=P1, email="ada@example.com", first_name="Ada", last_name="Lovelace", country="GB")
    path = write_jsonl(tmp_path / "contacts.jsonl", {"phone": P1, "email": None, "first_name": None, "country": None})

    assert imported(path) == tally(updated=1)

    stored = contact(pk=ada.pk)
    assert (stored["phone"], stored["email"], stored["first_name"], stored["last_name"], stored["country"]) == (
        P1,
        None,
        "",
        "Lovelace",
        None,
    )


# --- Dry run, progress, worker processes ---------------------------------------------------


def test_dry_run_reports_what_a_real_run_would_do_and_writes_nothing(account, make_contact, tmp_path):
    ada = make_contact(phone=P1, first_name="Ada")
    make_contact(phone=P3, first_name="Cy")
    dee = make_contact(email="dee@example.com", first_name="Dee")
    contact_set_preferences(account=account, contact_id=ada.pk, statuses={"sms": "opted_out"}, api_key_id=None)
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "first_name", "preferences"],
        [P1, "", "Augusta", '{"email": "opted_in"}'],
        [P2, "bob@example.com", "Bob", '{"sms": "opted_in"}'],
        ["not a phone", "", "", ""],
        [P3, "", "Cy", ""],
        ["", "DEE@example.com", "", '{"sms": "opted_out"}'],
    )
    contacts, before, counts = contact_fields(account), row_versions(), table_counts()

    dry = imported_with_skips(path, dry_run=True)
    dry_errors = error_rows(f"{path}.errors.csv")

    assert contact_fields(account) == contacts
    assert row_versions() == before
    assert table_counts() == counts

    assert imported_with_skips(path) == dry == tally(created=1, updated=2, unchanged=1, skipped=1)
    assert error_rows(f"{path}.errors.csv") == dry_errors == [(3, "phone", INVALID_PHONE)]
    assert contact(phone=P2)["preferences"] == {**ALL_UNSET, "sms": "opted_in"}
    assert contact(pk=dee.pk)["preferences"] == {**ALL_UNSET, "sms": "opted_out"}
    assert contact(pk=ada.pk)["first_name"] == "Augusta"


def test_progress_lines_on_a_stderr_that_is_not_a_terminal(account, tmp_path, monkeypatch):
    monkeypatch.setattr(import_command, "Progress", partial(Progress, every_seconds=0))
    path = write_csv(tmp_path / "contacts.csv", ["phone"], *([f"+1415555{n:04d}"] for n in range(6)))

    outcome = run_import(path, batch_size=2)

    assert outcome.error is None
    assert summary(outcome.stdout) == tally(created=6)
    lines = outcome.stderr.splitlines()
    matches = [re.fullmatch(r"(\d+)/6 rows \((\d+)%\), [\d,]+ rows/s, ETA \d+s", line) for line in lines]
    assert all(matches), lines
    assert [(match[1], match[2]) for match in matches] == [("2", "33"), ("4", "67"), ("6", "100")]


class TerminalStringIO(io.StringIO):
    def isatty(self):
        return True


def test_a_progress_bar_on_a_terminal(account, tmp_path):
    path = write_csv(tmp_path / "contacts.csv", ["phone"], *([f"+1415555{n:04d}"] for n in range(6)))
    out, err = io.StringIO(), TerminalStringIO()

    call_command("import_contacts", str(path), account="Acme", workers=1, batch_size=2, stdout=out, stderr=err)

    assert summary(out.getvalue()) == tally(created=6)
    bar = err.getvalue()
    assert bar.startswith("\r")
    assert "100%" in bar
    assert " rows/s]" in bar


def test_validation_in_worker_processes_keeps_the_file_order(account, tmp_path):
    bad = {7, 1001, 1500, 2500}
    rows = [
        ["not a phone" if number in bad else f"+1650555{number:04d}", f"p{number}@example.com", f"P{number}"]
        for number in range(1, 2501)
    ]
    path = write_csv(tmp_path / "contacts.csv", ["phone", "email", "first_name"], *rows)

    assert imported_with_skips(path, workers=2, batch_size=500) == tally(created=2496, skipped=4)

    assert error_rows(f"{path}.errors.csv") == [(number, "phone", INVALID_PHONE) for number in sorted(bad)]
    stored = {
        (str(phone), email, first_name)
        for phone, email, first_name in Contact.objects.values_list("phone", "email", "first_name")
    }
    assert stored == {tuple(row) for number, row in enumerate(rows, 1) if number not in bad}


# --- Kill and re-run -----------------------------------------------------------------------

KILL_ROWS = 20_000
KILL_BATCH = 500


def kill_file(path: Path) -> tuple[Path, dict]:
    """A file of distinct contacts, and each contact's expected fields by phone."""
    rows, expected = [], {}
    for number in range(KILL_ROWS):
        phone = f"+1{('415', '650')[number // 10_000]}555{number % 10_000:04d}"
        stage = ("lead", "customer", "churned")[number % 3]
        metadata = {"n": number, "even": number % 2 == 0}
        preferences = {"sms": "opted_in"} if number % 5 == 0 else {}
        rows.append(
            [
                phone,
                f"Person.{number}@Example.com",
                f"Zoë {number}",
                "Müller",
                "us" if number % 2 else "",
                stage,
                f"t{number % 7}|all",
                json.dumps(metadata),
                json.dumps(preferences) if preferences else "",
            ]
        )
        expected[phone] = {
            "phone": phone,
            "email": f"person.{number}@example.com",
            "first_name": f"Zoë {number}",
            "last_name": "Müller",
            "country": "US",
            "lifecycle_stage": stage,
            "tags": [f"t{number % 7}", "all"],
            "metadata": metadata,
            "preferences": {**ALL_UNSET, **preferences},
        }
    header = ["phone", "email", "first_name", "last_name", "country", "lifecycle_stage", "tags", "metadata"]
    return write_csv(path, [*header, "preferences"], *rows), expected


def subprocess_database_url() -> str:
    """A DATABASE_URL naming the test database; a Unix socket directory goes percent-encoded in the host."""
    database = connection.settings_dict
    user = quote(database["USER"] or "", safe="")
    password = f":{quote(database['PASSWORD'], safe='')}" if database.get("PASSWORD") else ""
    port = f":{database['PORT']}" if database.get("PORT") else ""
    host = quote(database["HOST"] or "", safe="")
    url = f"postgres://{user}{password}@{host}{port}/{quote(database['NAME'], safe='')}"
    parsed = dj_database_url.parse(url)
    assert (parsed["HOST"], parsed["NAME"], parsed["USER"], str(parsed["PORT"] or "")) == (
        database["HOST"],
        database["NAME"],
        database["USER"],
        str(database["PORT"] or ""),
    )
    return url


def stored_rows(account) -> list[dict]:
    """The account's contacts as fields_of() gives them, read in bulk (no PhoneNumber objects: they are slow)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT phone, email, first_name, last_name, country, lifecycle_stage, tags, metadata::text, "
            "preferences::text FROM contacts_contact WHERE account_id = %s",
            [account.pk],
        )
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    for row in rows:
        row["metadata"] = json.loads(row["metadata"])
        row["preferences"] = {**ALL_UNSET, **json.loads(row["preferences"])}
    return rows


def wait_for_other_sessions_to_end(timeout: float = 30) -> None:
    """Until no other session is connected to the test database (a killed import's, here)."""
    deadline = time.monotonic() + timeout
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            (sessions,) = cursor.fetchone()
        if not sessions:
            return
        assert time.monotonic() < deadline, f"{sessions} session(s) still connected after {timeout} s"
        time.sleep(0.01)


def test_a_killed_import_converges_when_run_again(account, tmp_path):
    path, expected = kill_file(tmp_path / "contacts.csv")
    env = {**os.environ, "DATABASE_URL": subprocess_database_url()}
    if "TEST_DATABASE_NAME" in os.environ:
        env["TEST_DATABASE_NAME"] = os.environ["TEST_DATABASE_NAME"]
    command = [sys.executable, "manage.py", "import_contacts", str(path), "--account", "Acme"]
    command += ["--batch-size", str(KILL_BATCH), "--workers", "2"]
    log = tmp_path / "killed.log"
    ours = Contact.objects.for_account(account)

    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while not ours.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL, log.read_text()
    # The writers die with the process, but a COMMIT they had already sent
    # is still carried out by their sessions: count once those are gone.
    wait_for_other_sessions_to_end()
    committed = ours.count()
    assert 0 < committed < KILL_ROWS
    assert committed % KILL_BATCH == 0  # whole batches only

    rerun = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    assert summary(rerun.stdout) == tally(created=KILL_ROWS - committed, unchanged=committed)
    stored = stored_rows(account)
    assert len(stored) == KILL_ROWS
    assert len({found["phone"] for found in stored}) == len({found["email"] for found in stored}) == KILL_ROWS
    assert {found["phone"]: found for found in stored} == expected
    events = ActivityEvent.objects.filter(account=account, type="preference.updated")
    assert events.count() == events.values("contact_id").distinct().count() == KILL_ROWS // 5


# --- Round trips through export_contacts -------------------------------------------------


@pytest.fixture
def exported_contacts(account, make_contact):
    ada = make_contact(
        phone="+1 (415) 555-2671",
        email="Ada@Example.com",
        first_name="Zoë Ada",
        last_name='O\'Brien, "Jr"',
        lifecycle_stage="customer",
        tags=["vip", "a|b", "c,d", 'say "hi"', "[draft]"],
        metadata={"plan": "pro", "seats": 12, "nested": {"a": [1, 2.5, "x, y"], "b": {"c": True, "d": None}}},
    )
    contact_set_preferences(
        account=account, contact_id=ada.pk, statuses={"sms": "opted_in", "email": "opted_out"}, api_key_id=None
    )
    make_contact(email="jose@example.org", first_name="José", last_name="Müller", metadata={"note": "l1\nl2"})
    make_contact(phone="+905321234567", country="DE", first_name="Çağla", tags=["İstanbul"])
    make_contact(phone="+800 1234 5678")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_imported_into_an_empty_account_reproduces_every_contact(account, exported_contacts, tmp_path, fmt):
    path = tmp_path / f"export.{fmt}"
    call_command("export_contacts", account="Acme", output=str(path), stdout=io.StringIO(), stderr=io.StringIO())
    empty = Account.objects.create(name="Initech")

    assert imported(path, account="Initech") == tally(created=4)

    assert contact_fields(empty) == contact_fields(account)
    assert not set(Contact.objects.for_account(empty).values_list("pk", flat=True)) & set(
        Contact.objects.for_account(account).values_list("pk", flat=True)
    )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_export_imported_back_into_its_account_changes_nothing(account, exported_contacts, tmp_path, fmt):
    path = tmp_path / f"export.{fmt}"
    call_command("export_contacts", account="Acme", output=str(path), stdout=io.StringIO(), stderr=io.StringIO())
    contacts, before, counts = contact_fields(account), row_versions(), table_counts()

    assert imported(path) == tally(unchanged=4)

    assert contact_fields(account) == contacts
    assert row_versions() == before
    assert table_counts() == counts
