"""Several writing processes (contacts/import_writers.py) give what one process gives, row for row."""

import csv
import io
import multiprocessing
import re
import threading

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.models import Account
from contacts.import_writers import BatchOrder, KeyBoard, WriterFailed, batch_keys
from contacts.importers import ContactImporter, RecordFile, Row
from contacts.models import ActivityEvent
from contacts.tests.test_import import contact_fields, error_rows, run_import, summary, write_csv

pytestmark = pytest.mark.django_db(transaction=True)

PHONES = [f"+1415555{number:04d}" for number in range(2600, 2620)]


def order_dependent_file(path, stored) -> object:
    """Rows whose outcome depends on rows before them, in other batches when batches are 1 or 2 rows."""
    p = PHONES
    return write_csv(
        path,
        ["id", "phone", "email", "first_name", "preferences"],
        ["", p[0], "", "Created", '{"sms": "opted_in"}'],
        ["", p[0], "", "Then renamed by its phone", '{"sms": "opted_out"}'],
        [stored["moves"], p[2], "", "", ""],  # gives up p[1] (stored) for p[2]...
        ["", p[1], "", "New with the freed phone", ""],  # ...which this row then takes
        ["", p[3], "new@example.com", "By phone", ""],
        ["", p[4], "new@example.com", "Found by the email the row above gave", ""],
        ["", "", "shared@example.com", "Named by email", ""],  # the stored contact p[5]/shared@
        ["", p[5], "", "Renamed by phone, after", ""],
        ["", p[9], "shared@example.com", "Clashes", ""],  # the stored p[9] may not take shared@
        [stored["moves"], "", "moved@example.com", "Moved again", ""],
        ["", "", "moved@example.com", "Found by the email it was given", ""],
        ["", p[7], "", "Last", '{"email": "opted_in"}'],
    )


def stored_contacts(make_contact, account) -> dict:
    moves = make_contact(account=account, phone=PHONES[1], first_name="Moves")
    make_contact(account=account, phone=PHONES[5], email="shared@example.com", first_name="Shared")
    make_contact(account=account, phone=PHONES[9], email="taken@example.com", first_name="Taken")
    return {"moves": moves.pk}


def import_into(account, make_contact, tmp_path, **options):
    path = order_dependent_file(tmp_path / f"{account.name}.csv", stored_contacts(make_contact, account))
    outcome = run_import(path, account=account.name, **options)
    errors = [
        (row, field, re.sub(r"con_\w+", "con_…", reason)) for row, field, reason in error_rows(f"{path}.errors.csv")
    ]
    verb = "Would import" if options.get("dry_run") else "Imported"
    return summary(outcome.stdout, verb, account=account.name), errors


def preference_events(account) -> list:
    events = ActivityEvent.objects.filter(account=account, type="preference.updated")
    return sorted((event.channel, event.data["old_status"], event.data["new_status"]) for event in events)


@pytest.mark.parametrize("batch_size", [1, 2, 3])
@pytest.mark.parametrize("workers", [2, 3])
def test_several_writers_give_what_one_gives(account, make_contact, tmp_path, batch_size, workers):
    alone = Account.objects.create(name="Alone")
    expected = import_into(alone, make_contact, tmp_path, workers=1, batch_size=batch_size)

    assert import_into(account, make_contact, tmp_path, workers=workers, batch_size=batch_size) == expected

    assert contact_fields(account) == contact_fields(alone)
    assert preference_events(account) == preference_events(alone)
    names = {fields["first_name"] for fields in contact_fields(account)}
    assert {"Then renamed by its phone", "New with the freed phone", "Renamed by phone, after"} <= names
    assert expected[1] == [(9, "email", "Another contact has this email: con_….")]


def test_a_batch_rolled_back_makes_the_later_batches_in_flight_match_again(account, make_contact, tmp_path):
    """A concurrent writer takes a phone of batch 0 once: batch 0 and every batch after it still end as alone."""
    log = tmp_path / "attempts.log"
    write = ContactImporter._write

    def taken_once(self, created, changed):
        phones = [target.values["phone"] for target in created]
        with log.open("a") as handle:  # appended by the writing processes
            handle.write(f"{phones}\n")
        if PHONES[0] in phones and log.read_text().count(PHONES[0]) == 1:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO contacts_contact (id, account_id, phone, first_name, last_name, lifecycle_stage,"
                    " tags, metadata, preferences) VALUES ('con_taken', %s, %s, '', '', 'lead', '{}', '{}', '{}')",
                    [self.account.pk, PHONES[0]],
                )
        write(self, created, changed)

    alone = Account.objects.create(name="Alone")
    expected = import_into(alone, make_contact, tmp_path, workers=1, batch_size=2)
    ContactImporter._write = taken_once
    try:
        assert import_into(account, make_contact, tmp_path, workers=2, batch_size=2) == expected
    finally:
        ContactImporter._write = write

    assert log.read_text().count(PHONES[0]) == 2
    assert contact_fields(account) == contact_fields(alone)
    assert preference_events(account) == preference_events(alone)


def test_a_writer_that_fails_stops_the_import_with_its_traceback(account, tmp_path, monkeypatch):
    def broken(self, rows, locked=None):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(ContactImporter, "_match_and_write", broken)
    path = write_csv(tmp_path / "contacts.csv", ["phone"], *[[phone] for phone in PHONES])

    with pytest.raises(WriterFailed, match="the disk is on fire"):
        call_command(
            "import_contacts",
            str(path),
            account="Acme",
            workers=2,
            batch_size=2,
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )


def test_a_dry_run_with_several_writers_writes_nothing(account, make_contact, tmp_path):
    alone = Account.objects.create(name="Alone")
    expected = import_into(alone, make_contact, tmp_path, workers=1, batch_size=2, dry_run=True)

    assert import_into(account, make_contact, tmp_path, workers=2, batch_size=2, dry_run=True) == expected
    assert [fields["first_name"] for fields in contact_fields(account)] == ["Moves", "Shared", "Taken"]


# --- The shared order, in one process --------------------------------------------------------


@pytest.fixture
def order():
    return BatchOrder(multiprocessing.get_context("fork"))


def nothing_shared(first, last):
    return None


def test_batches_lock_and_commit_in_file_order(order):
    lock(order, 0)
    token = lock(order, 1)  # batch 0 holds its locks: batch 1 may take its own
    waiting = threading.Thread(target=order.wait_to_commit, args=(1, token))
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive()  # batch 1 may not commit before batch 0

    assert order.wait_to_commit(0, 0)
    order.committed(0)
    waiting.join(timeout=2)
    assert not waiting.is_alive()


def lock(order, number) -> int:
    token = order.wait_to_lock(number, nothing_shared)
    order.locked(number, token)
    return token


def test_a_rolled_back_batch_overtakes_the_later_ones(order):
    tokens = [lock(order, number) for number in (0, 1, 2)]

    order.rolled_back(1)

    assert order.wait_to_commit(0, tokens[0])  # earlier batches are not touched
    order.committed(0)
    assert not order.wait_to_commit(2, tokens[2])  # batch 2 locked before batch 1's rollback: it must match again
    blocked = threading.Thread(target=order.wait_to_lock, args=(2, nothing_shared))
    blocked.start()
    blocked.join(timeout=0.2)
    assert blocked.is_alive()  # batch 2 locks again only after batch 1 did
    tokens[1] = lock(order, 1)
    blocked.join(timeout=2)
    assert not blocked.is_alive()
    tokens[2] = lock(order, 2)
    assert order.wait_to_commit(1, tokens[1])
    order.committed(1)
    assert order.wait_to_commit(2, tokens[2])


def test_a_batch_that_begins_its_lock_after_a_rollback_is_not_overtaken_by_it(order):
    """The deadlock this guards against: a batch refused its commit for a rollback it had already seen."""
    lock(order, 0)
    order.rolled_back(0)  # batch 1 has not begun its lock
    first = lock(order, 0)
    assert order.wait_to_commit(0, first)
    order.committed(0)

    later = lock(order, 1)
    assert order.wait_to_commit(1, later)


@pytest.mark.parametrize("batch_0_locks_again_first", [False, True])
def test_a_batch_still_locking_when_an_earlier_one_rolls_back_must_match_again(order, batch_0_locks_again_first):
    lock(order, 0)
    stale = order.wait_to_lock(1, nothing_shared)  # batch 1 is running its SELECT … FOR UPDATE...

    order.rolled_back(0)  # ...when batch 0 is rolled back
    if batch_0_locks_again_first:
        again = lock(order, 0)
    order.locked(1, stale)  # batch 1's first lock moves no turn on, whenever it ends
    if not batch_0_locks_again_first:
        again = lock(order, 0)

    assert order.wait_to_commit(0, again)
    order.committed(0)
    assert not order.wait_to_commit(1, stale)
    assert order.wait_to_commit(1, lock(order, 1))  # its turn to lock is still there


def test_a_rollback_right_after_a_batch_gets_its_turn_counts_against_its_lock():
    """Between the turn and its lookup, an earlier batch rolled back: the lookup may predate its redo."""

    class RollbackAfterTheTurn(BatchOrder):
        def _wait(self, ready):
            token = super()._wait(ready)
            if self.pending:
                self.pending = False
                self.rolled_back(0)
            return token

    order = RollbackAfterTheTurn(multiprocessing.get_context("fork"))
    order.pending = False
    lock(order, 0)
    order.pending = True
    token = order.wait_to_lock(1, nothing_shared)  # batch 0 rolls back once batch 1 has its turn
    order.locked(1, token)

    again = lock(order, 0)
    assert order.wait_to_commit(0, again)
    order.committed(0)
    assert not order.wait_to_commit(1, token)


def test_a_batch_sharing_a_phone_or_email_with_one_in_flight_waits_for_its_commit(order):
    lock(order, 0)
    asked = []

    def shares_with_batch_0(first, last):
        asked.append((first, last))
        return 0 if first == 0 else None

    blocked = threading.Thread(target=order.wait_to_lock, args=(1, shares_with_batch_0))
    blocked.start()
    blocked.join(timeout=0.2)
    assert blocked.is_alive()
    assert asked == [(0, 0)]  # batches 0 to 0 are in flight

    order.committed(0)
    blocked.join(timeout=2)
    assert not blocked.is_alive()


def test_batch_keys_are_the_phones_and_emails_of_the_valid_rows():
    rows = [Row(number) for number in (1, 2, 3)]
    rows[0].phone, rows[0].fields = "+14155552600", {"email": "a@example.com"}
    rows[1].phone, rows[1].errors = "+14155552601", [("email", "Enter a valid email address.")]
    rows[2].fields = {"email": "c@example.com", "first_name": "C"}

    assert batch_keys(rows) == {"+14155552600", "a@example.com", "c@example.com"}


def test_the_key_board_names_the_latest_batch_in_flight_sharing_a_key():
    board = KeyBoard(multiprocessing.get_context("fork"), workers=2, batch_size=2)
    board.publish(4, frozenset({"+14155552600", "a@example.com"}))
    board.publish(5, frozenset({"b@example.com"}))
    board.publish(6, frozenset({"+14155552600"}))

    assert board.latest_sharing(frozenset({"+14155552600"}), 4, 6) == 6
    assert board.latest_sharing(frozenset({"+14155552600", "b@example.com"}), 4, 5) == 5
    assert board.latest_sharing(frozenset({"a@example.com"}), 5, 6) is None
    assert board.latest_sharing(frozenset(), 4, 6) is None
    board.publish(8, frozenset({"c@example.com"}))  # batch 4's slot, once batch 4 cannot be asked for
    with pytest.raises(RuntimeError, match="Batch 4's keys were taken over by batch 8"):
        board.latest_sharing(frozenset({"a@example.com"}), 4, 4)


def test_csv_records_are_what_csv_dictreader_reads_numbered_as_rows():
    text = (
        "email,first_name,last_name\r\n"
        "a@example.com,Ann,Lee\r\n"
        "\r\n"  # a blank line: no row
        'b@example.com,"Bo\r\nb",Ray\r\n'  # a quoted newline, inside one record
        "c@example.com\r\n"  # short: the missing cells are no values
        "d@example.com,Di,Lo,surplus,more\r\n"  # long: the surplus goes under None
        '"",,\r\n'
        "e@example.com,Eve,Ng"  # no newline at the end
    )
    source = RecordFile(io.StringIO(text, newline=""), "csv")

    chunks = list(source.chunks(2))
    records = [record for first, chunk in chunks for record in source.records(first, chunk)]

    reader = csv.DictReader(io.StringIO(text, newline=""))
    expected = [{key: value for key, value in row.items() if value is not None} for row in reader]
    assert [number for number, _ in records] == list(range(1, len(expected) + 1))
    assert [record for _, record in records] == expected
    assert records[3][1] == {"email": "d@example.com", "first_name": "Di", "last_name": "Lo", None: ["surplus", "more"]}
    assert [first for first, _ in chunks] == [1, 3, 5]
