"""The import's pipeline (contacts/importers.py): batch N+1 is matched while batch N is written.

The main thread matches a batch against the stored rows with the batches
still in flight laid over them; the writer thread locks the rows again and
writes the plan only if they are as the main thread saw them. These tests
slow the writer down so that batches really are in flight, and change rows
between a plan and its write.
"""

import io
import threading
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError

from contacts.importers import ContactImporter
from contacts.models import ActivityEvent, Contact
from contacts.tests.test_import import (
    ALL_UNSET,
    P1,
    P2,
    P3,
    P5,
    error_rows,
    imported,
    imported_with_skips,
    preference_events,
    tally,
    write_csv,
)

pytestmark = pytest.mark.django_db(transaction=True)

A, B = "a@example.com", "b@example.com"


@pytest.fixture
def slow_writer(monkeypatch):
    """The writer takes a while over each batch, so the main thread plans the next ones meanwhile."""
    write = ContactImporter._write

    def slow(self, created, changed):
        time.sleep(0.03)
        write(self, created, changed)

    monkeypatch.setattr(ContactImporter, "_write", slow)


@pytest.fixture
def pipeline(monkeypatch):
    """What the pipeline did: how many contacts were in flight at each plan, which batches were matched again."""
    seen = {"in_flight": [], "rematched": []}
    plan, rematch = ContactImporter._plan, ContactImporter._rematch

    def recording_plan(self, batch, in_flight):
        seen["in_flight"].append(len(in_flight.values))
        return plan(self, batch, in_flight)

    def recording_rematch(self, planned):
        seen["rematched"].append([row.number for row in planned.rows])
        return rematch(self, planned)

    monkeypatch.setattr(ContactImporter, "_plan", recording_plan)
    monkeypatch.setattr(ContactImporter, "_rematch", recording_rematch)
    return seen


def after_plan(monkeypatch, number: int, action) -> None:
    """Run ``action`` once the main thread has matched batch ``number`` (from 0), before the writer sees it."""
    plan = ContactImporter._plan
    count = {"plans": 0}

    def plan_then_act(self, batch, in_flight):
        planned = plan(self, batch, in_flight)
        if count["plans"] == number:
            action()
        count["plans"] += 1
        return planned

    monkeypatch.setattr(ContactImporter, "_plan", plan_then_act)


def quiet() -> dict:
    return {"stdout": io.StringIO(), "stderr": io.StringIO()}


def writer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "import-writer"]


CHAIN = [
    [P1, A, "A1", "", ""],  # 1 creates C
    [P3, "", "Cy", "", ""],  # 2 creates Cy
    ["", A, "", "", ""],  # 3 (with P2 below) moves C from P1 to P2
    [P1, "", "New", "", ""],  # 4 P1 is free again: creates D
    [P2, "", "", "L", ""],  # 5 finds C by its new phone
    [P1, B, "", "", ""],  # 6 gives D an email
    ["", B, "D2", "", ""],  # 7 finds D by that email
    ["", A, "", "", '{"sms": "opted_in"}'],  # 8 C opts in
    [P3, B, "", "", ""],  # 9 refused: D has that email
    [P1, "", "D2", "", ""],  # 10 changes nothing
]
CHAIN[2][0] = P2


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5000])
def test_later_batches_find_what_batches_still_in_flight_create_and_change(
    account, tmp_path, slow_writer, pipeline, batch_size
):
    path = write_csv(tmp_path / "chain.csv", ["phone", "email", "first_name", "last_name", "preferences"], *CHAIN)

    assert imported_with_skips(path, batch_size=batch_size) == tally(created=3, updated=5, unchanged=1, skipped=1)

    c, d, cy = Contact.objects.get(email=A), Contact.objects.get(email=B), Contact.objects.get(phone=P3)
    assert (str(c.phone), c.first_name, c.last_name, c.preference_map) == (
        P2,
        "A1",
        "L",
        {**ALL_UNSET, "sms": "opted_in"},
    )
    assert (str(d.phone), d.first_name, d.last_name) == (P1, "D2", "")
    assert (cy.email, cy.first_name) == (None, "Cy")
    assert Contact.objects.count() == 3
    assert error_rows(f"{path}.errors.csv") == [(9, "email", f"Another contact has this email: {d.pk}.")]
    assert preference_events(c.pk) == [("sms", "unset", "opted_in", "import")]
    assert ActivityEvent.objects.count() == 1
    # Every plan held: nothing was matched again, and later batches were matched with earlier ones in flight.
    assert pipeline["rematched"] == []
    if batch_size < len(CHAIN):
        assert max(pipeline["in_flight"]) > 0


def test_a_chain_of_updates_across_many_batches_in_flight(account, tmp_path, slow_writer, pipeline):
    """Each row renames the contact the row before it created or renamed, batch after batch."""
    rows = [[P1, A, "v0"]] + [[P1 if n % 2 else P5, A, f"v{n}"] for n in range(1, 30)]
    path = write_csv(tmp_path / "chain.csv", ["phone", "email", "first_name"], *rows)

    assert imported(path, batch_size=2) == tally(created=1, updated=29)

    assert list(Contact.objects.values_list("email", "first_name")) == [(A, "v29")]
    assert str(Contact.objects.get().phone) == P1
    assert pipeline["rematched"] == []
    assert max(pipeline["in_flight"]) > 0


def test_a_contact_changed_between_plan_and_write_is_matched_again_under_the_lock(
    account, make_contact, tmp_path, monkeypatch, pipeline
):
    ada = make_contact(phone=P1, first_name="Ada")
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "first_name", "last_name"],
        [P3, "Cy", ""],
        [P5, "Ed", ""],
        [P1, "", "Lovelace"],  # batch 1: planned with Ada's first name as read
        [P2, "Bob", ""],
        [P1, "", "King"],  # batch 2: planned with batch 1's plan in flight
    )
    # Another writer (the API) renames Ada after batch 1 was matched, before it is written.
    after_plan(monkeypatch, 1, lambda: Contact.objects.filter(pk=ada.pk).update(first_name="Augusta"))

    assert imported(path, batch_size=2) == tally(created=3, updated=2)

    stored = Contact.objects.get(pk=ada.pk)
    assert (stored.first_name, stored.last_name) == ("Augusta", "King")
    assert Contact.objects.count() == 4
    # Batch 1 was stale; batch 2, matched assuming batch 1's plan, is matched again too.
    assert pipeline["rematched"] == [[3, 4], [5]]


def test_a_contact_created_between_plan_and_write_is_updated_not_duplicated(
    account, make_contact, tmp_path, monkeypatch, pipeline
):
    path = write_csv(
        tmp_path / "contacts.csv",
        ["phone", "email", "first_name"],
        [P3, "", "Cy"],
        [P5, "", "Ed"],
        [P2, B, "Bob"],  # batch 1 plans to create Bob...
    )
    # ...but the API creates a contact with that phone first.
    after_plan(monkeypatch, 1, lambda: make_contact(phone=P2, first_name="Robert", last_name="Smith"))

    assert imported(path, batch_size=2) == tally(created=2, updated=1)

    bob = Contact.objects.get(phone=P2)
    assert (bob.email, bob.first_name, bob.last_name) == (B, "Bob", "Smith")
    assert Contact.objects.count() == 3
    assert pipeline["rematched"] == [[3]]


def test_a_unique_violation_at_the_write_rolls_the_plan_back_and_matches_again(
    account, make_contact, tmp_path, monkeypatch, pipeline
):
    """A contact created after the writer's lock (here: its check is skipped) makes the COPY fail."""
    path = write_csv(tmp_path / "contacts.csv", ["phone", "first_name"], [P3, "Cy"], [P5, "Ed"], [P2, "Bob"])
    after_plan(monkeypatch, 1, lambda: make_contact(phone=P2, first_name="Robert"))
    holds = ContactImporter._holds
    monkeypatch.setattr(ContactImporter, "_holds", lambda self, plan: holds(self, plan) or plan.rows[0].number == 3)

    assert imported(path, batch_size=2) == tally(created=2, updated=1)

    assert list(Contact.objects.filter(phone=P2).values_list("first_name", flat=True)) == ["Bob"]
    assert Contact.objects.count() == 3
    assert pipeline["rematched"] == [[3]]


@pytest.mark.parametrize("error", [RuntimeError, IntegrityError])
def test_an_error_in_the_writer_is_the_commands_error_and_stops_it(account, tmp_path, monkeypatch, error):
    """Any error; a unique violation too once the batch's attempts to match again are used up."""
    write = ContactImporter._write
    calls = {"count": 0}

    def failing(self, created, changed):
        calls["count"] += 1
        if calls["count"] >= 2:
            raise error("the disk is on fire")
        write(self, created, changed)

    monkeypatch.setattr(ContactImporter, "_write", failing)
    path = write_csv(tmp_path / "contacts.csv", ["phone"], *([f"+1415555{n:04d}"] for n in range(10)))

    with pytest.raises(error, match="the disk is on fire"):
        call_command("import_contacts", str(path), account="Acme", workers=1, batch_size=2, **quiet())

    assert writer_threads() == []
    # The first batch was committed; the second was rolled back, the later ones never written.
    assert sorted(str(phone) for phone in Contact.objects.values_list("phone", flat=True)) == [
        "+14155550000",
        "+14155550001",
    ]


def test_an_interrupt_stops_the_writer_and_a_rerun_converges(account, tmp_path, monkeypatch, slow_writer):
    rows = [[f"+1415555{n:04d}", "X"] for n in range(12)]
    path = write_csv(tmp_path / "contacts.csv", ["phone", "first_name"], *rows)

    def interrupt():
        raise KeyboardInterrupt

    after_plan(monkeypatch, 3, interrupt)

    with pytest.raises(KeyboardInterrupt):
        call_command("import_contacts", str(path), account="Acme", workers=1, batch_size=2, **quiet())

    assert writer_threads() == []
    committed = Contact.objects.count()
    assert committed in (4, 6)  # whole batches: the plans queued when interrupted are dropped or written
    monkeypatch.undo()

    assert imported(path, batch_size=2) == tally(created=12 - committed, unchanged=committed)
    assert Contact.objects.count() == 12


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


def test_a_file_that_fails_midway_keeps_every_batch_matched_before_the_failure(account, tmp_path, slow_writer):
    """As batch by batch: the batches matched before the bad byte are written (and the command says so)."""
    path = tmp_path / "contacts.csv"
    rows = "".join(f"+1415555{n:04d}\n" for n in range(1500))
    path.write_bytes(f"phone\n{rows}".encode() + b"Jos\xe9\n")

    with pytest.raises(CommandError, match="rows before it were imported"):
        call_command("import_contacts", str(path), account="Acme", workers=1, batch_size=100, **quiet())

    # The first 1,000 rows (one chunk of validation) were batched before the read failed.
    assert Contact.objects.count() == 1000
    assert writer_threads() == []
