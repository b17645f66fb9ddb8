import io
import re
import threading
import unicodedata
from datetime import UTC, datetime

import phonenumbers
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count

from accounts.models import Account
from contacts.constants import CHANNELS, PREFERENCE_STATUSES
from contacts.models import ActivityEvent, Contact
from contacts.search import search_columns
from contacts.seeding import LISTS, MOBILE_PREFIXES, DemoData, IdMinter, prepared_ahead, seed_demo_data
from contacts.validation import clean_contact, clean_phone
from lists.models import ContactList, ListMembership
from segments.models import Segment
from segments.rules import list_references, validate_rules
from segments.services import segment_contacts

SEEDED = 600
CLIENT_EVENT_TYPES = {
    "message.sent",
    "message.delivered",
    "message.opened",
    "message.clicked",
    "message.failed",
    "message.received",
    "agent.interaction",
}


def _seed(name: str, contacts: int = SEEDED, seed: int = 7, batch_size: int = 250) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "seed_demo_data",
        "--account",
        name,
        "--contacts",
        str(contacts),
        "--seed",
        str(seed),
        "--batch-size",
        str(batch_size),
        stdout=out,
        stderr=err,
    )
    return out.getvalue(), err.getvalue()


def _people(account: Account) -> list[tuple]:
    """Everything the seed decides about each contact, oldest first (ids and timestamps aside)."""
    return list(
        Contact.objects.for_account(account)
        .order_by("created_at", "id")
        .values_list(
            "first_name",
            "last_name",
            "phone",
            "email",
            "country",
            "lifecycle_stage",
            "tags",
            "metadata",
            "preferences",
        )
    )


@pytest.fixture
def seeded(db):
    """An account seeded with 600 contacts, in batches of 250 (so three COPY batches, the last partial)."""
    _seed("Demo")
    return Account.objects.get(name="Demo")


def test_seed_command_creates_the_account_and_prints_a_summary(db):
    out, _ = _seed("Fresh", contacts=30)

    account = Account.objects.get(name="Fresh")
    assert out.startswith(f"Created account Fresh ({account.pk}), seed 7: 30 contacts, 20 lists with "), out
    assert Contact.objects.for_account(account).count() == 30
    assert ContactList.objects.for_account(account).count() == len(LISTS) == 20
    assert Segment.objects.for_account(account).count() == 10


def test_seed_command_rejects_bad_arguments(db):
    with pytest.raises(CommandError, match="--contacts must be 0 or more"):
        _seed("Fresh", contacts=-1)
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        _seed("Fresh", batch_size=0)
    with pytest.raises(CommandError, match="--account must be 1 to 200 characters"):
        _seed("   ")
    assert not Account.objects.exists()


def test_same_seed_gives_the_same_contacts_in_the_same_order(db):
    _seed("First")
    _seed("Second")
    first, second = Account.objects.get(name="First"), Account.objects.get(name="Second")

    people = _people(first)
    assert len(people) == SEEDED
    assert _people(second) == people
    assert not set(Contact.objects.for_account(first).values_list("id", flat=True)) & set(
        Contact.objects.for_account(second).values_list("id", flat=True)
    )

    def memberships(account):
        return sorted(ContactList.objects.for_account(account).values_list("name", "member_count"))

    assert memberships(second) == memberships(first)
    assert ActivityEvent.objects.for_account(second).count() == ActivityEvent.objects.for_account(first).count() > 0


def test_another_seed_gives_other_contacts(db):
    _seed("First", seed=1)
    _seed("Second", seed=2)

    first = _people(Account.objects.get(name="First"))
    second = _people(Account.objects.get(name="Second"))
    assert len(first) == len(second) == SEEDED
    assert sum(a == b for a, b in zip(first, second, strict=True)) < SEEDED // 100


def test_contacts_have_distinct_creation_times_in_the_past(seeded):
    created = list(Contact.objects.for_account(seeded).order_by("created_at").values_list("created_at", flat=True))

    assert len(set(created)) == SEEDED
    assert created[-1] <= datetime.now(UTC)


def test_every_seeded_contact_passes_the_api_field_rules(seeded):
    contacts = list(Contact.objects.for_account(seeded))

    for contact in contacts:
        stored = {
            "phone": str(contact.phone) if contact.phone else None,
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "country": contact.country,
            "lifecycle_stage": contact.lifecycle_stage,
            "tags": contact.tags,
            "metadata": contact.metadata,
        }
        cleaned = clean_contact(stored)
        cleaned["phone"] = str(cleaned["phone"]) if cleaned["phone"] else None
        assert cleaned == stored, stored
        assert contact.phone or contact.email
        assert set(contact.preferences) <= set(CHANNELS)
        assert set(contact.preferences.values()) <= set(PREFERENCE_STATUSES) - {"unset"}
        if contact.phone:
            assert contact.country == phonenumbers.region_code_for_number(contact.phone)
    assert len({contact.phone for contact in contacts if contact.phone}) == sum(1 for c in contacts if c.phone) > 0
    assert len({contact.email for contact in contacts if contact.email}) == sum(1 for c in contacts if c.email) > 0


def test_every_seeded_contact_has_its_search_columns(seeded):
    contacts = Contact.objects.for_account(seeded).values(
        "phone", "email", "first_name", "last_name", "search_vector", "phone_digits", "phone_national"
    )

    for contact in contacts:
        expected = search_columns(
            account_id=seeded.pk,
            phone=contact["phone"],
            email=contact["email"],
            first_name=contact["first_name"],
            last_name=contact["last_name"],
        )
        # The stored tsvector is PostgreSQL's rendering of the lexemes: compare the lexeme sets.
        stored = set(re.findall(r"'((?:[^']|'')*)'", contact["search_vector"]))
        assert stored == set(re.findall(r"'((?:[^']|'')*)'", expected["search_vector"])), contact
        assert (contact["phone_digits"], contact["phone_national"]) == (
            expected["phone_digits"],
            expected["phone_national"],
        )


def test_seeded_contacts_are_found_by_search(seeded):
    contact = Contact.objects.for_account(seeded).exclude(phone=None).exclude(email=None).order_by("created_at")[7]

    assert contact in Contact.objects.for_account(seeded).search(contact.first_name, accounts=[seeded])
    assert contact in Contact.objects.for_account(seeded).search(str(contact.phone)[-6:], accounts=[seeded])
    assert contact in Contact.objects.for_account(seeded).search(contact.email, accounts=[seeded])


def test_names_come_in_several_scripts(seeded):
    names = " ".join(
        f"{first} {last}" for first, last in Contact.objects.for_account(seeded).values_list("first_name", "last_name")
    )
    scripts = {
        unicodedata.name(char).split()[0]
        for char in names
        if char.isalpha() and not char.isascii() and unicodedata.name(char, "").split()
    }

    assert {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "CJK", "HANGUL"} <= scripts, scripts
    assert "ğ" in names or "ş" in names or "İ" in names  # Turkish letters


def test_member_counts_equal_the_memberships(seeded):
    lists = ContactList.objects.for_account(seeded).annotate(real=Count("memberships"))

    assert [(item.name, item.member_count) for item in lists] == [(item.name, item.real) for item in lists]
    assert sum(item.member_count for item in lists) == ListMembership.objects.for_account(seeded).count() > SEEDED // 2
    assert not ListMembership.objects.for_account(seeded).exclude(contact__account=seeded).exists()


def test_segments_are_valid_and_match_contacts(seeded):
    segments = list(Segment.objects.for_account(seeded))
    list_ids = set(ContactList.objects.for_account(seeded).values_list("id", flat=True))

    assert len(segments) == 10
    counts = {}
    for segment in segments:
        validate_rules(segment.rules)
        assert {list_id for _, list_id in list_references(segment.rules)} <= list_ids
        counts[segment.name] = segment_contacts(account=seeded, rules=segment.rules).count()
    assert sum(1 for count in counts.values() if count > 0) >= 8, counts


def test_activity_events_belong_to_the_accounts_contacts(seeded):
    events = ActivityEvent.objects.for_account(seeded)

    assert events.count() > SEEDED // 10
    assert set(events.values_list("type", flat=True)) <= CLIENT_EVENT_TYPES
    assert set(events.values_list("channel", flat=True)) <= set(CHANNELS)
    assert not events.exclude(contact__account=seeded).exists()
    assert not events.filter(type__startswith="message.", channel=None).exists()
    with_events = events.values("contact").distinct().count()
    assert 0 < with_events < SEEDED


def test_seeding_an_account_twice_keeps_phones_emails_and_names_unique(db):
    _seed("Twice", contacts=120)
    _seed("Twice", contacts=120)

    account = Account.objects.get(name="Twice")
    contacts = Contact.objects.for_account(account)
    assert contacts.count() == 240
    phones = [phone for phone in contacts.values_list("phone", flat=True) if phone]
    emails = [email for email in contacts.values_list("email", flat=True) if email]
    assert len(set(phones)) == len(phones)
    assert len(set(emails)) == len(emails)
    assert ContactList.objects.for_account(account).filter(name="Newsletter (2)").exists()
    assert Segment.objects.for_account(account).count() == 20


def test_every_mobile_prefix_yields_valid_distinct_numbers():
    generator = DemoData(seed=0, count=1, anchor=datetime(2026, 11, 27, tzinfo=UTC))
    issued = []

    for region, pools in generator.pools.items():
        assert len(pools) == len(MOBILE_PREFIXES[region])
        for pool in pools:
            numbers = [pool.take(set())[1] for _ in range(40)]
            issued += numbers
            for number in numbers:
                assert str(clean_phone(number, None)) == number
                assert phonenumbers.region_code_for_number(phonenumbers.parse(number)) == region
    assert len(set(issued)) == len(issued) == 40 * sum(len(prefixes) for prefixes in MOBILE_PREFIXES.values())
    # Pools never overlap: no prefix extends another of its country (and a
    # +1 number belongs to one region only, checked above).
    for prefixes in MOBILE_PREFIXES.values():
        assert not [(a, b) for a in prefixes for b in prefixes if a != b and b.startswith(a)]


def test_seed_data_can_skip_taken_identifiers():
    anchor = datetime(2026, 11, 27, tzinfo=UTC)
    plain = list(DemoData(seed=4, count=50, anchor=anchor).contacts())
    phones = {contact.phone_e164 for contact in plain if contact.phone_e164}
    emails = {contact.email for contact in plain if contact.email}

    again = list(DemoData(seed=4, count=50, anchor=anchor, taken_phones=phones, taken_emails=emails).contacts())

    assert not {contact.phone_e164 for contact in again} & phones
    assert not {contact.email for contact in again} & emails


def test_minted_ids_have_the_id_format():
    ids = IdMinter("con").take(5000)

    assert len(set(ids)) == 5000
    assert all(re.fullmatch(r"con_[A-Za-z0-9]{16}", value) for value in ids)
    assert len({char for value in ids for char in value[4:]}) == 62


def test_seed_demo_data_reports_progress_per_batch(db):
    account = Account.objects.create(name="Progress")
    reported = []

    summary = seed_demo_data(account=account, contacts=25, seed=1, batch_size=10, on_contacts=reported.append)

    assert reported == [10, 10, 5]
    assert summary.contacts == 25
    assert summary.memberships == ListMembership.objects.for_account(account).count()
    assert summary.events == ActivityEvent.objects.for_account(account).count()


def test_batch_preparation_errors_reach_the_loader():
    def prepare(batch):
        if batch == ["boom"]:
            raise ValueError("generation failed")
        return batch

    prepared = prepared_ahead(iter([["a"], ["boom"], ["never"]]), prepare)

    assert next(prepared) == ["a"]
    with pytest.raises(ValueError, match="generation failed"):
        next(prepared)


def test_batch_preparation_stops_when_the_loader_stops():
    produced = []

    def prepare(batch):
        produced.append(batch)
        return batch

    prepared = prepared_ahead(iter([[number] for number in range(1000)]), prepare)
    assert next(prepared) == [0]
    prepared.close()  # what a failed COPY does to the loop

    assert not any(thread.name == "seed-demo-data" for thread in threading.enumerate())
    assert len(produced) < 10


def _seed_sized(name: str, *, lists: int, segments: int, contacts: int = 300) -> Account:
    call_command(
        "seed_demo_data", "--account", name, "--contacts", str(contacts), "--seed", "7",
        "--lists", str(lists), "--segments", str(segments), stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    return Account.objects.get(name=name)


def test_seed_command_makes_more_lists_and_segments_on_request(db):
    account = _seed_sized("Bench", lists=50, segments=25)

    lists = list(ContactList.objects.for_account(account))
    assert len(lists) == 50
    assert len({item.name.lower() for item in lists}) == 50
    assert sum(1 for item in lists if item.member_count > 0) >= 40
    segments = list(Segment.objects.for_account(account))
    assert len(segments) == 25
    list_ids = {item.pk for item in lists}
    for segment in segments:
        validate_rules(segment.rules)
        assert {list_id for _, list_id in list_references(segment.rules)} <= list_ids


def test_more_lists_stay_deterministic(db):
    first = _seed_sized("First", lists=50, segments=20)
    second = _seed_sized("Second", lists=50, segments=20)

    assert _people(second) == _people(first)

    def memberships(account):
        return sorted(ContactList.objects.for_account(account).values_list("name", "member_count"))

    assert memberships(second) == memberships(first)


def test_segments_without_their_list_are_replaced(db):
    account = _seed_sized("Listless", lists=0, segments=20, contacts=20)

    assert not ContactList.objects.for_account(account).exists()
    segments = list(Segment.objects.for_account(account))
    assert len(segments) == 20
    assert not any(list_references(segment.rules) for segment in segments)
