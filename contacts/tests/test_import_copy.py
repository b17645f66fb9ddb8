"""The importer writes ``text[]`` and ``jsonb`` columns as text it makes itself: PostgreSQL must store
exactly what psycopg's own list and Jsonb dumpers would have given it."""

import pytest
from django.db import connection
from psycopg.types.json import Jsonb

from contacts.importers import _copy_text, _event_data, _json_object, _text_array
from contacts.models import ActivityEvent, Contact
from contacts.tests.test_import import P1, P2, P3, P5, imported, tally, write_jsonl

pytestmark = pytest.mark.django_db(transaction=True)

TAG_LISTS = [
    [],
    ["a"],
    ["vip", "beta", "early-adopter"],
    ['say "hi"', '"', '""'],
    ["back\\slash", "\\", "\\\\", '\\"', "ends\\"],
    ["a,b", "{c}", "}", "{", "{}", ","],
    ["NULL", "null", "Null"],
    [" inner  space ", "tab\there", "line\nbreak", "carriage\rreturn", "\\N", "\\t"],
    ["Zoë", "日本語", "🙂", "ß", "\u00a0nbsp", "\u2028"],
    ["'", "''", "it's"],
    ["x" * 64],
    [""],
]

OBJECTS = [
    {},
    {"plan": "pro"},
    {"utm": {"source": "linkedin", "medium": None}, "languages": ["ru", "pt"], "newsletter": True, "none": None},
    {"quote": 'say "hi"', "backslash": "a\\b", "escapes": "\n\t\r\b\f\u001f\u007f", "slash": "a/b"},
    {"unicode": "Zoë 日本語 🙂", "Ключ": "значение", "\u2028": "\u2029"},
    {"int": 2**70, "negative": -5, "float": 1.5, "small": 1e-7, "large": 1e300, "zero": -0.0, "exp": 12.0, "e5": 1e-05},
    {"tiny": 1e-05, "tinier": 2.5e-06, "big": 1e16},  # orjson writes 0.00001 and 2.5e-6
    {"nested": [[[{"a": [1, {"b": None}]}]]], "empty": {}, "empty_list": []},
    {"\\u0041": "not an escape, a backslash and five characters"},
]


def stored_text(sql: str, *params) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchone()


COPY_VALUES = [
    "plain",
    "",
    None,
    "\\N",
    "back\\slash",
    "\\",
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "\r\n",
    "Zoë 日本語 🙂 \u2028",
    "\\t\\n",
    "ends\\",
    "\b\f\v\x1f\x7f",  # control characters COPY reads as themselves
]


@pytest.mark.parametrize("escaping", [False, True])
def test_copy_text_reads_back_as_the_values_written(escaping):
    plain = [("a", None, "b"), ("c", "d", ""), ("\b\f\v", "Zoë", None)]  # nothing to escape
    rows = (
        plain + [(value, f"{value}!" if value is not None else None, "x") for value in COPY_VALUES]
        if escaping
        else plain
    )

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE copied (n serial, a text, b text, c text)")
        with cursor.cursor.copy("COPY copied (a, b, c) FROM STDIN") as copy:
            copy.write(_copy_text(rows))
        cursor.execute("SELECT a, b, c FROM copied ORDER BY n")
        read_back = cursor.fetchall()
        cursor.execute("DROP TABLE copied")

    assert read_back == rows


@pytest.mark.parametrize("tags", TAG_LISTS)
def test_a_text_array_literal_is_the_list_psycopg_would_send(tags):
    literal = _text_array(tags)

    read_back, same_as_psycopg = stored_text("SELECT %s::text[], %s::text[] = %s::text[]", literal, literal, tags)

    assert read_back == tags
    assert same_as_psycopg is True


@pytest.mark.parametrize("value", OBJECTS)
def test_a_json_object_text_is_the_jsonb_psycopg_would_send(value):
    text = _json_object(value)

    ours, theirs = stored_text("SELECT %s::jsonb::text, %s::jsonb::text", text, Jsonb(value))

    assert ours == theirs


@pytest.mark.parametrize(("old", "new", "reason"), [("unset", "opted_in", "import"), ("opted_in", "opted_out", "x")])
def test_event_data_text_is_the_jsonb_psycopg_would_send(old, new, reason):
    data = {"old_status": old, "new_status": new, "api_key_id": None, "reason": reason}

    ours, theirs = stored_text("SELECT %s::jsonb::text, %s::jsonb::text", _event_data(old, new, reason), Jsonb(data))

    assert ours == theirs


def stored_columns(contact_id: str) -> tuple:
    return stored_text("SELECT tags::text, metadata::text FROM contacts_contact WHERE id = %s", contact_id)


def expected_columns(tags: list, metadata: dict) -> tuple:
    stored = {key: value for key, value in metadata.items() if value is not None}
    return stored_text("SELECT %s::text[]::text, %s::jsonb::text", tags, Jsonb(stored))


def test_created_and_updated_contacts_store_what_the_dumpers_would(account, make_contact, tmp_path):
    """Through COPY (text format, its own escaping) into the table and into the temporary table of updates."""
    stored = make_contact(phone=P2, tags=["old"], metadata={})
    # Tags as clean_tags leaves them: trimmed, none blank, no duplicates.
    tags = [
        'say "hi"',
        '"',
        "back\\slash",
        "\\",
        '\\"',
        "a,b",
        "{c}",
        "}",
        "in\tner",
        "line\nbreak",
        "\\N",
        "Zoë",
        "🙂",
    ]
    metadata = OBJECTS[3] | OBJECTS[4] | OBJECTS[7]
    other_tags, other_metadata = ["NULL", "null", "it's", "日本語"], OBJECTS[2] | OBJECTS[5] | OBJECTS[6]
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"phone": P1, "tags": tags, "metadata": metadata, "preferences": {"sms": "opted_in"}},
        {"id": stored.pk, "tags": other_tags, "metadata": other_metadata, "preferences": {"email": "opted_out"}},
    )

    assert imported(path) == tally(created=1, updated=1)

    created = Contact.objects.get(phone=P1)
    assert stored_columns(created.pk) == expected_columns(tags, metadata)
    assert stored_columns(stored.pk) == expected_columns(other_tags, other_metadata)
    assert (created.tags, Contact.objects.get(pk=stored.pk).tags) == (tags, other_tags)
    events = {
        (event.contact_id, event.channel): event.data
        for event in ActivityEvent.objects.filter(type="preference.updated")
    }
    assert events == {
        (created.pk, "sms"): {"old_status": "unset", "new_status": "opted_in", "api_key_id": None, "reason": "import"},
        (stored.pk, "email"): {
            "old_status": "unset",
            "new_status": "opted_out",
            "api_key_id": None,
            "reason": "import",
        },
    }


@pytest.mark.parametrize("email", ['"quo\\"ted"@example.com', '"a\\\\b"@example.com', '"a,b{}"@example.com'])
def test_a_row_matches_a_stored_email_that_needs_escaping_in_an_array_literal(account, make_contact, tmp_path, email):
    """The lookup sends the batch's ids, phones and emails as array literals made by the importer."""
    stored = make_contact(email=email, first_name="Old")
    path = write_jsonl(tmp_path / "contacts.jsonl", {"email": email.upper(), "first_name": "New"})

    assert imported(path) == tally(updated=1)

    assert list(Contact.objects.values_list("pk", "first_name")) == [(stored.pk, "New")]


def stored_metadata() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, metadata::text FROM contacts_contact")
        return dict(cursor.fetchall())


def test_metadata_text_made_by_the_worker_is_used_only_while_it_is_what_is_stored(account, make_contact, tmp_path):
    """The worker's JSON of a row's metadata stands for the contact's only when nothing was merged or removed."""
    make_contact(phone=P2, metadata={"kept": 1})
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"phone": P1, "metadata": {"a": 1, "nested": {"n": None}}},  # the row's own object
        {"phone": P1, "metadata": {"b": 2}},  # merged onto an earlier row's
        {"phone": P1, "first_name": "Ada"},  # no metadata: the last row has no text
        {"phone": P2, "metadata": {"new": "x"}},  # merged onto what is stored
        {"phone": P3, "metadata": {"gone": None, "c": [1, None]}},  # a null removes a key
        {"phone": P5, "metadata": {}},
    )

    assert imported(path, batch_size=10) == tally(created=3, updated=3)

    assert stored_metadata() == {
        P1: expected_columns([], {"a": 1, "nested": {"n": None}, "b": 2})[1],
        P2: expected_columns([], {"kept": 1, "new": "x"})[1],
        P3: expected_columns([], {"c": [1, None]})[1],
        P5: "{}",
    }


def test_preferences_in_any_order_store_the_same_object(account, tmp_path):
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"phone": P1, "preferences": {"sms": "opted_in", "email": "opted_out"}},
        {"phone": P2, "preferences": {"email": "opted_out", "sms": "opted_in"}},
        {"phone": P3, "preferences": {"email": "opted_out", "sms": "unset"}},
    )

    assert imported(path) == tally(created=3)

    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, preferences::text FROM contacts_contact")
        stored = dict(cursor.fetchall())
    assert stored == {
        P1: '{"sms": "opted_in", "email": "opted_out"}',
        P2: '{"sms": "opted_in", "email": "opted_out"}',
        P3: '{"email": "opted_out"}',
    }


def test_preference_events_of_a_new_contact_and_of_a_later_row_of_the_batch(account, tmp_path):
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"phone": P1, "preferences": {"viber": "unset", "sms": "opted_in", "email": "opted_out"}},
        {"phone": P1, "preferences": {"sms": "opted_out", "email": "unset", "rcs": "unset"}},
    )

    assert imported(path) == tally(created=1, updated=1)

    created = Contact.objects.get(phone=P1)
    assert created.preferences == {"sms": "opted_out"}
    events = ActivityEvent.objects.filter(contact_id=created.pk)
    assert sorted((event.channel, event.data["old_status"], event.data["new_status"]) for event in events) == [
        ("email", "opted_out", "unset"),
        ("email", "unset", "opted_out"),
        ("sms", "opted_in", "opted_out"),
        ("sms", "unset", "opted_in"),
    ]


def test_metadata_kept_as_text_compares_as_the_object_it_encodes(account, make_contact, tmp_path):
    """Rows count as unchanged when their metadata is what the contact already has, text or object."""
    make_contact(phone=P2, metadata={})
    make_contact(phone=P3, metadata={})
    same = {"plan": "pro", "n": [1, 2.5], "utm": {"source": "x"}}
    path = write_jsonl(
        tmp_path / "contacts.jsonl",
        {"phone": P1, "metadata": same},
        {"phone": P1, "metadata": same},  # the same again: unchanged
        {"phone": P1, "metadata": {"plan": "pro"}},  # a key already there: unchanged
        {"phone": P2, "metadata": {}},  # nothing onto nothing: unchanged
        {"phone": P3, "metadata": {"new": True}},
    )

    assert imported(path) == tally(created=1, updated=1, unchanged=3)

    assert stored_metadata() == {
        P1: expected_columns([], same)[1],
        P2: "{}",
        P3: '{"new": true}',
    }
