"""Imports whose batches move identifiers between contacts, and a unique violation at the write."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, transaction

from contacts import importers
from contacts.importers import _SELECT_TARGETS, ContactImporter, _text_array
from contacts.models import Contact
from contacts.tests.test_import import P1, P2, P3, imported, tally, write_csv
from contacts.tests.test_search import _bulk_contacts

pytestmark = pytest.mark.django_db(transaction=True)


def quiet() -> dict:
    return {"stdout": io.StringIO(), "stderr": io.StringIO()}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_stored_contacts_may_swap_phones_and_a_new_contact_take_a_freed_one(
    account, make_contact, tmp_path, batch_size
):
    """Unique indexes are checked row by row: the batch's writes must never pass through a duplicate."""
    x, y = make_contact(phone=P1, first_name="X"), make_contact(phone=P2, first_name="Y")
    path = write_csv(
        tmp_path / "contacts.csv",
        ["id", "phone", "first_name"],
        [x.pk, P3, ""],  # X frees P1...
        [y.pk, P1, ""],  # ...Y takes it and frees P2...
        [x.pk, P2, ""],  # ...X takes P2, freeing P3...
        ["", P3, "Z"],  # ...which a new contact takes.
    )

    assert imported(path, batch_size=batch_size) == tally(created=1, updated=3)

    assert sorted((found.first_name, str(found.phone)) for found in Contact.objects.all()) == [
        ("X", P2),
        ("Y", P1),
        ("Z", P3),
    ]


def test_a_file_that_fails_midway_keeps_every_batch_matched_before_the_failure(account, tmp_path):
    """As batch by batch: the batches matched before the bad byte are written (and the command says so)."""
    path = tmp_path / "contacts.csv"
    rows = "".join(f"+1415555{n:04d}\n" for n in range(1500))
    path.write_bytes(f"phone\n{rows}".encode() + b"Jos\xe9\n")

    with pytest.raises(CommandError, match="rows before it were imported"):
        call_command("import_contacts", str(path), account="Acme", workers=1, batch_size=100, **quiet())

    # The first 1,000 rows (one chunk of validation) were batched before the read failed.
    assert Contact.objects.count() == 1000


def test_a_unique_violation_in_the_copy_rolls_the_batch_back_and_matches_it_again(account, tmp_path, monkeypatch):
    """COPY's errors come from psycopg's own cursor: they must reach the retry as Django's IntegrityError."""
    write, attempts = ContactImporter._write, []

    def taken_before_the_copy(self, created, changed):
        attempts.append([target.values["phone"] for target in created])
        if len(attempts) == 1:
            # A concurrent writer would commit this between our lock and our COPY;
            # here it is in the batch's own transaction, rolled back with it.
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO contacts_contact (id, account_id, phone, first_name, last_name, lifecycle_stage,"
                    " tags, metadata, preferences) VALUES ('con_taken', %s, %s, '', '', 'lead', '{}', '{}', '{}')",
                    [self.account.pk, P1],
                )
        write(self, created, changed)

    monkeypatch.setattr(ContactImporter, "_write", taken_before_the_copy)
    path = write_csv(tmp_path / "contacts.csv", ["phone", "first_name"], [P1, "Ada"])

    assert imported(path) == tally(created=1)
    assert attempts == [[P1], [P1]]
    assert list(Contact.objects.values_list("first_name", flat=True)) == ["Ada"]


def _lookup_plan(account_id: str, phones: list[str], emails: list[str]) -> list[str]:
    """The plan's nodes (without their long conditions) of the importer's lookup."""
    params = {"account": account_id, "ids": "{}", "phones": _text_array(phones), "emails": _text_array(emails)}
    with transaction.atomic(), connection.cursor() as cursor:
        # A few thousand rows are cheaper to read whole, or along the primary
        # key, than to probe: left with bitmap scans, the plan shows how the
        # planner reaches the account's rows, as it does on a table of millions.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {_SELECT_TARGETS} ORDER BY id FOR UPDATE", params)
        return [row[0].split("  (cost")[0].strip() for row in cursor.fetchall() if "(cost" in row[0]]


def test_the_lookup_probes_the_unique_indexes_for_an_account_the_statistics_have_not_seen(account, other_account):
    """An import fills a new account: estimated at one row, its lookup walked every contact it already had."""
    _bulk_contacts(other_account, 3000, seed=3)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")
    phones = [f"+1415555{number:04d}" for number in range(10)]
    emails = [f"new{number}@example.com" for number in range(10)]

    plan = _lookup_plan(account.pk, phones, emails)

    assert "->  Bitmap Index Scan on contact_phone_unique" in plan, plan
    assert "->  Bitmap Index Scan on contact_email_unique" in plan, plan
    assert not any(node.startswith("->  Bitmap Index Scan on contact_stage") for node in plan), plan


def test_an_import_that_creates_many_contacts_refreshes_the_account_statistics(account, tmp_path, monkeypatch):
    monkeypatch.setattr(importers, "ANALYZE_AFTER_CREATED", 3)

    def estimated_rows() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'contacts_contact'::regclass")
            return cursor.fetchone()[0]

    before = estimated_rows()
    assert imported(write_csv(tmp_path / "two.csv", ["phone"], [P1], [P2])) == tally(created=2)
    assert estimated_rows() == before  # fewer than ANALYZE_AFTER_CREATED: left to autovacuum

    assert imported(write_csv(tmp_path / "three.csv", ["email"], ["a@x.io"], ["b@x.io"], ["c@x.io"])) == tally(
        created=3
    )
    assert estimated_rows() == 5
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s = ANY(most_common_vals::text::text[]) FROM pg_stats "
            "WHERE tablename = 'contacts_contact' AND attname = 'account_id'",
            [account.pk],
        )
        assert cursor.fetchone() == (True,)


@pytest.mark.parametrize(("sqlstate", "retried"), [("40P01", True), ("57014", False)])
def test_a_deadlock_is_matched_again_and_another_operational_error_stops_the_import(
    account, tmp_path, monkeypatch, sqlstate, retried
):
    """40P01: PostgreSQL broke a lock cycle with another writer by ending this batch; 57014: a cancel."""
    write, attempts = ContactImporter._write, []

    def fails_once(self, created, changed):
        attempts.append(len(created))
        if len(attempts) == 1:
            with connection.cursor() as cursor:
                cursor.execute(f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$")
        write(self, created, changed)

    monkeypatch.setattr(ContactImporter, "_write", fails_once)
    path = write_csv(tmp_path / "contacts.csv", ["phone", "first_name"], [P1, "Ada"])

    if retried:
        assert imported(path) == tally(created=1)
        assert attempts == [1, 1]
        assert list(Contact.objects.values_list("first_name", flat=True)) == ["Ada"]
    else:
        with pytest.raises(OperationalError):
            call_command("import_contacts", str(path), account=account.name, workers=1, **quiet())
        assert attempts == [1]
        assert not Contact.objects.exists()
