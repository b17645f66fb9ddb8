"""Opt-outs that outlive the contact (API.md §5), and segment rules on preferences (§8), through the API."""

import datetime
import hashlib
import re

import pytest
from django.db import connection

from contacts.models import ActivityEvent, Contact, SuppressionEntry

CONTACTS = "/v1/contacts"
PREVIEW = "/v1/contacts/segments/preview"
CHANNELS = ("sms", "whatsapp", "email", "rcs", "viber", "voice")
ALL_UNSET = dict.fromkeys(CHANNELS, "unset")
PHONE = "+14155552671"
HEX64 = re.compile(r"[0-9a-f]{64}")


def created(api, **fields) -> dict:
    response = api.post(CONTACTS, fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def set_preferences(api, contact_id: str, statuses: dict) -> dict:
    return ok(api.put(f"{CONTACTS}/{contact_id}/preferences", statuses, format="json"))


def deleted(api, contact_id: str) -> None:
    response = api.delete(f"{CONTACTS}/{contact_id}")
    assert response.status_code == 204, response.content


def opted_out_then_deleted(api, statuses: dict, **fields) -> None:
    contact = created(api, **fields)
    set_preferences(api, contact["id"], statuses)
    deleted(api, contact["id"])


def preference_events(contact_id: str) -> list[tuple]:
    """Sorted (channel, old_status, new_status, reason) of the contact's ``preference.updated`` events."""
    return sorted(
        (event.channel, event.data["old_status"], event.data["new_status"], event.data.get("reason"))
        for event in ActivityEvent.objects.filter(contact_id=contact_id, type="preference.updated")
    )


# --- A new contact starts opted out ------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"phone": "+14155552671"},
        {"phone": "+1 (415) 555-2671"},
        {"phone": "+1 415-555-2671"},
        {"phone": "+1.415.555.2671"},
        {"phone": "+1 415 555 2671", "email": "someone.else@example.com"},
        {"phone": "(415) 555-2671", "country": "US"},
        {"phone": "415.555.2671", "country": "us"},
        {"phone": "4155552671", "country": "US", "first_name": "New"},
    ],
    ids=lambda fields: fields["phone"],
)
def test_new_contact_with_the_phone_of_a_deleted_opted_out_one_starts_opted_out(api, fields):
    opted_out_then_deleted(api, {"sms": "opted_out", "whatsapp": "opted_in"}, phone="+1 (415) 555-2671")

    contact = created(api, **fields)

    assert contact["phone"] == PHONE
    assert contact["preferences"] == {**ALL_UNSET, "sms": "opted_out"}
    assert ok(api.get(f"{CONTACTS}/{contact['id']}"))["preferences"] == {**ALL_UNSET, "sms": "opted_out"}
    assert preference_events(contact["id"]) == [("sms", "unset", "opted_out", "suppression_list")]


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com", "ada@EXAMPLE.com"])
def test_new_contact_with_the_email_in_another_case_starts_opted_out(api, email):
    opted_out_then_deleted(api, {"email": "opted_out", "rcs": "opted_in"}, email="Ada@example.COM")

    contact = created(api, email=email, first_name="Ada")

    assert contact["email"] == "ada@example.com"
    assert contact["preferences"] == {**ALL_UNSET, "email": "opted_out"}
    assert preference_events(contact["id"]) == [("email", "unset", "opted_out", "suppression_list")]


def test_the_suppression_event_shows_in_the_timeline(api):
    opted_out_then_deleted(api, {"sms": "opted_out"}, phone=PHONE)

    contact = created(api, phone=PHONE)
    timeline = ok(api.get(f"{CONTACTS}/{contact['id']}/activity"))

    assert [(event["type"], event["channel"]) for event in timeline["data"]] == [("preference.updated", "sms")]
    data = timeline["data"][0]["data"]
    assert (data["old_status"], data["new_status"], data["reason"]) == ("unset", "opted_out", "suppression_list")


@pytest.mark.parametrize(
    "fields",
    [{"phone": "+1 415 555 2671"}, {"email": "ADA@example.com"}, {"phone": PHONE, "email": "ada@example.com"}],
    ids=["phone-only", "email-only", "both"],
)
def test_every_opted_out_channel_is_carried_by_either_identifier(api, fields):
    opted_out_then_deleted(
        api,
        {"sms": "opted_out", "email": "opted_out", "voice": "opted_out", "whatsapp": "opted_in"},
        phone=PHONE,
        email="ada@example.com",
    )

    contact = created(api, **fields)

    expected = {**ALL_UNSET, "sms": "opted_out", "email": "opted_out", "voice": "opted_out"}
    assert contact["preferences"] == expected
    assert preference_events(contact["id"]) == [
        (channel, "unset", "opted_out", "suppression_list") for channel in ("email", "sms", "voice")
    ]


def test_identifiers_of_two_deleted_contacts_combine(api):
    opted_out_then_deleted(api, {"sms": "opted_out"}, phone=PHONE)
    opted_out_then_deleted(api, {"viber": "opted_out"}, email="ada@example.com")

    contact = created(api, phone=PHONE, email="ada@example.com")

    assert contact["preferences"] == {**ALL_UNSET, "sms": "opted_out", "viber": "opted_out"}
    assert preference_events(contact["id"]) == [
        ("sms", "unset", "opted_out", "suppression_list"),
        ("viber", "unset", "opted_out", "suppression_list"),
    ]


def test_other_identifiers_start_unset(api):
    opted_out_then_deleted(api, dict.fromkeys(CHANNELS, "opted_out"), phone=PHONE, email="ada@example.com")

    other_phone = created(api, phone="+14155552672")
    other_email = created(api, email="ada@example.org")
    national_elsewhere = created(api, phone="4155552671", country="CA")

    for contact in (other_phone, other_email):
        assert contact["preferences"] == ALL_UNSET
        assert preference_events(contact["id"]) == []
    # (415) 555-2671 read as Canadian is still +1 415 555 2671: the same number.
    assert national_elsewhere["phone"] == PHONE
    assert national_elsewhere["preferences"] == dict.fromkeys(CHANNELS, "opted_out")


# --- What leaves no suppression ------------------------------------------------------


@pytest.mark.parametrize(
    "statuses",
    [{}, {"sms": "opted_in", "email": "opted_in"}, dict.fromkeys(CHANNELS, "opted_in"), {"sms": "unset"}],
    ids=["never-asked", "opted-in", "all-opted-in", "unset"],
)
def test_contact_never_opted_out_leaves_no_suppression(api, account, statuses):
    opted_out_then_deleted(api, statuses, phone=PHONE, email="ada@example.com")

    assert not SuppressionEntry.objects.exists()
    contact = created(api, phone=PHONE, email="ada@example.com")
    assert contact["preferences"] == ALL_UNSET
    assert preference_events(contact["id"]) == []


def test_an_opt_out_lives_only_after_the_contact_is_deleted(api):
    first = created(api, phone=PHONE)
    set_preferences(api, first["id"], {"sms": "opted_out"})

    assert not SuppressionEntry.objects.exists()
    # The phone is still taken by the live contact; its own preferences are the only record.
    assert api.post(CONTACTS, {"phone": PHONE}, format="json").status_code == 409


def test_suppression_is_per_account(api, other_api, account, other_account):
    opted_out_then_deleted(api, {"sms": "opted_out", "email": "opted_out"}, phone=PHONE, email="ada@example.com")

    theirs = created(other_api, phone="+1 (415) 555-2671", email="ADA@example.com")

    assert theirs["preferences"] == ALL_UNSET
    assert preference_events(theirs["id"]) == []
    assert not SuppressionEntry.objects.filter(account=other_account).exists()
    mine = created(api, phone=PHONE)
    assert mine["preferences"] == {**ALL_UNSET, "sms": "opted_out", "email": "opted_out"}


def test_another_accounts_deletion_suppresses_nothing_here(api, other_api, account):
    opted_out_then_deleted(other_api, dict.fromkeys(CHANNELS, "opted_out"), phone=PHONE, email="ada@example.com")

    mine = created(api, phone=PHONE, email="ada@example.com")

    assert mine["preferences"] == ALL_UNSET
    assert not SuppressionEntry.objects.filter(account=account).exists()


def test_deleting_and_re_creating_twice_does_not_duplicate_entries(api, account):
    opted_out_then_deleted(api, {"sms": "opted_out", "email": "opted_out"}, phone=PHONE, email="ada@example.com")
    entries = set(SuppressionEntry.objects.values_list("account_id", "channel", "identifier_hash"))
    # Two channels times two identifiers.
    assert len(entries) == 4
    assert {channel for _, channel, _ in entries} == {"sms", "email"}

    for _ in range(2):
        contact = created(api, phone=PHONE, email="ada@example.com")
        assert contact["preferences"] == {**ALL_UNSET, "sms": "opted_out", "email": "opted_out"}
        deleted(api, contact["id"])

    assert SuppressionEntry.objects.count() == 4
    assert set(SuppressionEntry.objects.values_list("account_id", "channel", "identifier_hash")) == entries
    assert created(api, phone=PHONE)["preferences"] == {**ALL_UNSET, "sms": "opted_out", "email": "opted_out"}


def test_a_later_opt_out_on_another_channel_adds_to_the_entries(api):
    opted_out_then_deleted(api, {"sms": "opted_out"}, phone=PHONE)
    contact = created(api, phone=PHONE)
    set_preferences(api, contact["id"], {"voice": "opted_out"})
    deleted(api, contact["id"])

    assert SuppressionEntry.objects.count() == 2
    assert created(api, phone=PHONE)["preferences"] == {**ALL_UNSET, "sms": "opted_out", "voice": "opted_out"}


# --- Updating to a suppressed identifier -------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize(
    ("start", "change"),
    [
        ({"email": "grace@example.com"}, {"phone": "+1 (415) 555-2671"}),
        ({"phone": "+12125550100"}, {"phone": "(415) 555-2671"}),
        ({"phone": "+12125550100"}, {"email": "ADA@Example.com"}),
        ({"phone": "+12125550100", "email": "grace@example.com"}, {"email": "ada@EXAMPLE.com", "first_name": "A"}),
    ],
    ids=["add-phone", "change-phone", "add-email", "change-email"],
)
def test_updating_to_a_suppressed_identifier_opts_the_contact_out(api, method, start, change):
    opted_out_then_deleted(api, {"sms": "opted_out", "email": "opted_out"}, phone=PHONE, email="ada@example.com")
    contact = created(api, **start)
    set_preferences(api, contact["id"], {"whatsapp": "opted_in"})
    assert contact["preferences"] == ALL_UNSET

    body = ok(getattr(api, method)(f"{CONTACTS}/{contact['id']}", change, format="json"))

    expected = {**ALL_UNSET, "sms": "opted_out", "email": "opted_out", "whatsapp": "opted_in"}
    assert body["preferences"] == expected
    assert ok(api.get(f"{CONTACTS}/{contact['id']}"))["preferences"] == expected
    assert [event for event in preference_events(contact["id"]) if event[3] == "suppression_list"] == [
        ("email", "unset", "opted_out", "suppression_list"),
        ("sms", "unset", "opted_out", "suppression_list"),
    ]


def test_updating_to_an_unsuppressed_identifier_changes_no_preference(api):
    opted_out_then_deleted(api, {"sms": "opted_out"}, phone=PHONE, email="ada@example.com")
    contact = created(api, email="grace@example.com")

    body = ok(api.patch(f"{CONTACTS}/{contact['id']}", {"phone": "+12125550100", "first_name": "G"}, format="json"))

    assert body["preferences"] == ALL_UNSET
    assert preference_events(contact["id"]) == []


def test_updating_other_fields_of_a_contact_that_opted_back_in_keeps_its_choice(api):
    opted_out_then_deleted(api, {"sms": "opted_out"}, phone=PHONE)
    contact = created(api, phone=PHONE)
    set_preferences(api, contact["id"], {"sms": "opted_in"})

    body = ok(api.patch(f"{CONTACTS}/{contact['id']}", {"first_name": "Ada", "tags": ["x"]}, format="json"))

    assert body["preferences"] == {**ALL_UNSET, "sms": "opted_in"}


# --- What is stored --------------------------------------------------------------------


def test_entries_store_only_keyed_hashes_never_the_identifiers(api, account):
    phone = "+442079460958"
    email = "zoe.quinn@mailhost.test"
    opted_out_then_deleted(
        api,
        {"sms": "opted_out", "whatsapp": "opted_out", "email": "opted_out"},
        phone="+44 20 7946 0958",
        email="Zoe.Quinn@MailHost.test",
        first_name="Zoë",
        last_name="Quinn",
    )
    opted_out_then_deleted(api, {"voice": "opted_out"}, phone="+14155552671")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {SuppressionEntry._meta.db_table}")
        columns = [column.name for column in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    assert len(rows) == 3 * 2 + 1
    hashes = []
    for row in rows:
        for column, value in row.items():
            if column == "id":
                assert isinstance(value, int), row
            elif column == "account_id":
                assert value == account.pk, row
            elif column == "channel":
                assert value in CHANNELS, row
            elif column == "created_at":
                assert isinstance(value, datetime.datetime), row
            else:
                assert column == "identifier_hash", row
                assert isinstance(value, str), row
                assert HEX64.fullmatch(value), row
                hashes.append(value)
        # The account id is random text checked exactly above; everything else must not spell an identifier.
        text = repr({column: value for column, value in row.items() if column != "account_id"}).lower()
        # Long or non-hex fragments only, so a random hash cannot contain one by chance.
        for fragment in ("+44", "2079460958", "zoe", "quinn", "mailhost", "+1", "4155552671", "@"):
            assert fragment not in text, (fragment, row)
    # Two identifiers for the first contact (each on three channels), one for the second.
    assert len(set(hashes)) == 3
    # Keyed: not a plain digest of the identifier in any obvious spelling.
    plain = {
        hashlib.sha256(value.encode()).hexdigest()
        for value in (
            phone,
            email,
            "+14155552671",
            f"phone:{phone}",
            f"email:{email}",
            "phone:+14155552671",
            "Zoe.Quinn@MailHost.test",
        )
    }
    assert plain.isdisjoint(hashes)


def test_entries_hold_no_identifier_of_a_contact_with_only_an_email(api):
    opted_out_then_deleted(api, {"email": "opted_out"}, email="zoe.quinn@mailhost.test")

    entries = list(SuppressionEntry.objects.values())

    assert len(entries) == 1
    assert HEX64.fullmatch(entries[0]["identifier_hash"])
    assert entries[0]["channel"] == "email"
    assert "zoe" not in repr(entries).lower()


# --- Opting back in ----------------------------------------------------------------------


def test_a_suppressed_new_contact_can_opt_back_in(api, account):
    opted_out_then_deleted(api, {"sms": "opted_out", "email": "opted_out"}, phone=PHONE)
    contact = created(api, phone=PHONE)
    assert contact["preferences"] == {**ALL_UNSET, "sms": "opted_out", "email": "opted_out"}

    body = set_preferences(api, contact["id"], {"sms": "opted_in"})

    assert body == {**ALL_UNSET, "sms": "opted_in", "email": "opted_out"}
    assert ok(api.get(f"{CONTACTS}/{contact['id']}"))["preferences"] == body
    assert preference_events(contact["id"]) == [
        ("email", "unset", "opted_out", "suppression_list"),
        ("sms", "opted_out", "opted_in", "api"),
        ("sms", "unset", "opted_out", "suppression_list"),
    ]
    optouts = ok(api.get(f"{CONTACTS}/optouts", {"channel": "sms"}))
    assert optouts["data"] == []
    # A later update of the contact does not re-apply the suppression list.
    assert ok(api.patch(f"{CONTACTS}/{contact['id']}", {"last_name": "Lovelace"}, format="json"))["preferences"] == body


# --- Segment rules on preferences -------------------------------------------------------


def _preview(api, channel, operator, value) -> tuple[int, set[str]]:
    rules = {"match": "all", "conditions": [{"field": f"preferences.{channel}", "operator": operator, "value": value}]}
    body = ok(api.post(PREVIEW, {"rules": rules}, format="json"))
    return body["contact_count"], {contact["id"] for contact in body["sample"]}


def test_segment_rules_on_preferences_match_what_the_put_endpoint_set(api, other_api):
    opted_in = created(api, email="in@example.com")
    set_preferences(api, opted_in["id"], {"sms": "opted_in", "email": "opted_out"})
    opted_out = created(api, email="out@example.com")
    set_preferences(api, opted_out["id"], {"sms": "opted_out"})
    never = created(api, email="never@example.com")
    back_to_unset = created(api, email="back@example.com")
    set_preferences(api, back_to_unset["id"], {"sms": "opted_out", "voice": "opted_in"})
    set_preferences(api, back_to_unset["id"], {"sms": "unset"})
    out_then_in = created(api, email="out-in@example.com")
    set_preferences(api, out_then_in["id"], {"sms": "opted_out"})
    set_preferences(api, out_then_in["id"], {"sms": "opted_in"})
    # Another account's contacts with every status never count.
    for status in ("opted_in", "opted_out"):
        theirs = created(other_api, email=f"{status}@example.com")
        set_preferences(other_api, theirs["id"], {"sms": status})
    created(other_api, email="unset@example.com")

    everyone = {c["id"] for c in (opted_in, opted_out, never, back_to_unset, out_then_in)}
    expected = {
        ("eq", "opted_in"): {opted_in["id"], out_then_in["id"]},
        ("eq", "opted_out"): {opted_out["id"]},
        ("eq", "unset"): {never["id"], back_to_unset["id"]},
    }
    for (_, value), matching in list(expected.items()):
        expected[("neq", value)] = everyone - matching

    for (operator, value), matching in expected.items():
        assert _preview(api, "sms", operator, value) == (len(matching), matching), (operator, value)
    assert _preview(api, "email", "eq", "opted_out") == (1, {opted_in["id"]})
    assert _preview(api, "voice", "eq", "opted_in") == (1, {back_to_unset["id"]})
    assert _preview(api, "voice", "neq", "unset") == (1, {back_to_unset["id"]})
    assert _preview(api, "rcs", "eq", "unset") == (5, everyone)


def test_segment_rule_matches_a_contact_opted_out_by_the_suppression_list(api):
    opted_out_then_deleted(api, {"whatsapp": "opted_out"}, phone=PHONE)
    suppressed = created(api, phone=PHONE)
    created(api, phone="+12125550100")

    assert _preview(api, "whatsapp", "eq", "opted_out") == (1, {suppressed["id"]})
    assert Contact.objects.get(pk=suppressed["id"]).preference_map["whatsapp"] == "opted_out"
