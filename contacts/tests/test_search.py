"""Search and filters of ``GET /v1/contacts`` (API.md §4)."""

import datetime
import importlib
import io
import random
import re
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts import search
from contacts.api.filters import ContactFilter
from contacts.models import Contact, SearchWord
from contacts.search import (
    _WORD,
    MARK,
    LexemeQuery,
    account_tag,
    contact_lexemes,
    fold,
    parse_terms,
    search_columns,
)

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
TAG_LENGTH = len(account_tag("acc_1"))


def _search(api, text, **params):
    response = api.get("/v1/contacts", {"search": text, "limit": 100, **params})
    assert response.status_code == 200, response.json()
    assert response.json()["has_more"] is False
    return {contact["id"] for contact in response.json()["data"]}


def _list(api, **params):
    response = api.get("/v1/contacts", {"limit": 100, **params})
    assert response.status_code == 200, response.json()
    return {contact["id"] for contact in response.json()["data"]}


def _error_attrs(response):
    body = response.json()
    assert body["type"] == "validation_error", body
    return [error["attr"] for error in body["errors"]]


# --- words ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "vector"),
    [
        ("ada@example.com", "'{t}zoe' '{t}ann' '{t}ada' '{t}example' '{t}com' '{t} ada@example.com' '{t} example.com'"),
        (
            "o'brien@example.com",
            "'{t}zoe' '{t}ann' '{t}o' '{t}brien' '{t}example' '{t}com' '{t} o''brien@example.com' '{t} o''brien' "
            "'{t} example.com'",
        ),
        (
            '"a\\b"@example.com',
            "'{t}zoe' '{t}ann' '{t}a' '{t}b' '{t}example' '{t}com' '{t} \"a\\\\b\"@example.com' '{t} \"a\\\\b\"' "
            "'{t} example.com'",
        ),
        (None, "'{t}zoe' '{t}ann'"),
    ],
)
def test_the_search_vector_tags_and_quotes_every_lexeme_and_escapes_quotes_and_backslashes(email, vector):
    columns = search_columns(account_id="acc_1", phone=None, email=email, first_name="Zoë", last_name="Ann")
    assert columns["search_vector"] == vector.format(t=account_tag("acc_1"))


@pytest.mark.django_db
def test_the_account_tag_is_the_migration_s_sql_expression():
    with connection.cursor() as cursor:
        for account_id in ["acc_1", "acc_dCNjDEaZD8WoMMtN", "ünïcode"]:
            cursor.execute("SELECT '#' || substr(md5(%s), 1, 3)", [account_id])
            assert cursor.fetchone()[0] == account_tag(account_id)


def lexemes_as_before(*, first_name: str, last_name: str, email: str | None) -> list[str]:
    """contact_lexemes written plainly: no cache of names' words, emails through fold()."""
    lexemes = []
    for written in f"{fold(first_name)} {fold(last_name)}".split():
        words = _WORD.findall(written)
        lexemes += words + (["".join(words)] if len(words) > 1 else [])
    if email:
        folded = fold(email)
        local, _, domain = folded.partition("@")
        words = _WORD.findall(folded)
        lexemes += words + [" " + part for part in (folded, local, domain) if part and [part] != _WORD.findall(part)]
    stored = []
    for lexeme in lexemes:
        letters = re.match(r"[^0-9]+(?=[0-9])", lexeme)
        stored += [letters.group(), " " + lexeme] if letters and not lexeme.startswith(" ") else [lexeme]
    return [lexeme for lexeme in dict.fromkeys(stored) if lexeme]


@pytest.mark.parametrize(
    ("first_name", "last_name", "email"),
    [
        ("Zoë", "Müller", "zoe.muller@example.com"),
        ("Zoë", "Müller", "Zoë.Müller@Bücher.example"),
        ("Conan", "O'Brien", "o'brien@example.ie"),
        ("", "", "ADA@EXAMPLE.COM"),
        ("José María", "Ñúñez-Ødegård", None),
        ("Łukasz", "Straße", "straße@example.de"),
        ("ada", "ada", "ada@ada.ada"),
        ("Ann", "Lee", "ann.lee7@example.com"),  # a domain already seen, from the domains' cache
        ("", "", "x7@y8.example"),
        ("", "", "not-an-address"),  # stored data is validated; the rule still holds without an "@"
        ("", "", "word"),
        ("", "", None),
    ],
)
def test_contact_lexemes_are_what_they_were(first_name, last_name, email):
    for _ in range(2):  # the second time from the caches
        assert contact_lexemes(first_name=first_name, last_name=last_name, email=email) == lexemes_as_before(
            first_name=first_name, last_name=last_name, email=email
        )


def test_a_contact_without_words_has_no_search_vector():
    columns = search_columns(account_id="acc_1", phone=None, email=None, first_name="", last_name="")
    assert columns["search_vector"] is None


def test_terms_are_anded_in_any_order(api, make_contact):
    ada_lovelace = make_contact(email="one@example.com", first_name="Ada", last_name="Lovelace")
    make_contact(email="two@example.com", first_name="Ada", last_name="Byron")
    make_contact(email="three@example.com", first_name="Lord", last_name="Lovelace")

    assert _search(api, "ada lovelace") == {ada_lovelace.id}
    assert _search(api, "lovelace ada") == {ada_lovelace.id}
    assert _search(api, "  lovelace   ada ") == {ada_lovelace.id}
    assert _search(api, "ada lovelace nobody") == set()


def test_term_matches_a_name_word_by_prefix(api, make_contact):
    ada = make_contact(email="one@example.com", first_name="Ada Augusta", last_name="King")
    make_contact(email="two@example.com", first_name="Grace", last_name="Hopper")

    assert _search(api, "aug") == {ada.id}
    assert _search(api, "kin") == {ada.id}
    assert _search(api, "a") == {ada.id}
    assert _search(api, "gusta") == set()
    assert _search(api, "ing") == set()


@pytest.mark.parametrize(
    ("stored", "query"),
    [
        ("José", "jose"),
        ("José", "JOSÉ"),
        ("Jose", "josé"),
        ("Müller", "mull"),
        ("Müller", "MÜLL"),
        ("Müller", "müller"),
        ("ada", "ADA"),
        ("ADA", "ada"),
        ("Øre", "ore"),
        ("Łukasz", "luk"),
        ("Zoë", "zoe"),
    ],
)
def test_name_match_ignores_case_and_accents(api, make_contact, stored, query):
    wanted = make_contact(email="one@example.com", first_name=stored)
    make_contact(email="two@example.com", first_name="Someone", last_name="Else")

    assert _search(api, query) == {wanted.id}


def test_last_name_with_accents_is_found_unaccented(api, make_contact):
    wanted = make_contact(email="one@example.com", first_name="Anna", last_name="Gómez-Müller")
    make_contact(email="two@example.com", first_name="Anna", last_name="Gomes")

    assert _search(api, "gomez") == {wanted.id}
    assert _search(api, "anna mull") == {wanted.id}


@pytest.mark.parametrize(
    "query",
    [
        "grace.hopper",  # local part
        "grace",  # a word of the local part
        "hopper",
        "navy.example",  # domain
        "navy",
        "grace.hopper@navy.example",  # whole address
        "GRACE.HOPPER@NAVY.EXAMPLE",
        "grace.hopper@na",  # prefix of the whole address
        "grace.hop",
    ],
)
def test_email_local_part_domain_and_whole_address_match(api, make_contact, query):
    wanted = make_contact(email="grace.hopper@navy.example", first_name="Amazing", last_name="Admiral")
    make_contact(email="alan.turing@bletchley.example", first_name="Alan", last_name="Turing")

    assert _search(api, query) == {wanted.id}


@pytest.mark.parametrize(
    ("name", "lexemes"),
    [
        ("पटेल", ["पटेल"]),  # the vowel sign "े" is part of the word
        ("प्रियंका", ["परियंका"]),  # the virama is dropped as accents are, the other marks stay
        ("सिंह", ["सिंह"]),
        ("ชัยวัฒน์", ["ชัยวัฒน์"]),  # Thai vowel and tone marks
        ("Nguyễn", ["nguyen"]),  # accents still go
    ],
)
def test_a_word_keeps_the_combining_marks_fold_keeps(name, lexemes):
    assert contact_lexemes(first_name=name, last_name="", email=None) == lexemes


def test_names_with_vowel_signs_are_found_by_prefix_and_whole_and_not_by_their_letters_alone(api, make_contact):
    patel = make_contact(email="one@example.in", first_name="Priyanka", last_name="पटेल")
    sharma = make_contact(email="two@example.in", first_name="प्रियंका", last_name="शर्मा")
    pal = make_contact(email="three@example.in", first_name="Priyanka", last_name="पल")

    assert parse_terms("Priyanka पटेल") == [("words", "( 'priyanka':* )"), ("words", "( 'पटेल':* )")]
    assert _search(api, "Priyanka पटेल") == {patel.id}
    assert _search(api, "पटे") == {patel.id}
    assert _search(api, "प्रियंका शर्मा") == {sharma.id}
    assert _search(api, "प्रियं") == {sharma.id}
    # "ल" was a word of पटेल when marks cut words: now only a name starting with it matches.
    assert _search(api, "ल") == set()
    assert _search(api, "पल") == {pal.id}


def test_only_a_term_with_a_separator_looks_behind_the_whole_mark():
    # A word-only prefix would otherwise walk every stored address that starts with it.
    assert parse_terms("grace") == [("words", "( 'grace':* )")]
    assert parse_terms("Grace.Hop") == [("words", "( ' grace.hop':* | 'gracehop':* | ( 'grace' & 'hop':* ) )")]
    # fold() may turn a character into a space ("¨" is a space and a combining mark): never into the mark.
    assert parse_terms("a¨b.c") == [("words", "( ' ab.c':* | 'abc':* | ( 'a' & 'b' & 'c' ) )")]


def test_the_migrations_write_what_search_columns_now_writes(make_contact):
    from importlib import import_module

    migration = import_module("contacts.migrations.0006_search_tags_and_mark")
    joining = import_module("contacts.migrations.0008_search_joined_name_words")
    marks = import_module("contacts.migrations.0009_search_words_keep_marks")
    contacts = [
        make_contact(email="grace.hopper@navy.example", first_name="Grace"),
        make_contact(email="o'brien@example.ie", first_name="R2D2", last_name="O'Brien"),
        make_contact(email="jl@example.fr", first_name="Jean-Luc", last_name="D'Ávila-Nuñez"),
        make_contact(email="jwilliams7@acme.example", last_name="Williams"),
        make_contact(email="ada+news@x.example"),
        make_contact(phone="+14155552671", first_name="Ada"),
        make_contact(phone="+14155552672"),
    ]
    # Words that were cut at their vowel signs (0009).
    with_marks = [
        make_contact(email="priya@example.in", first_name="प्रियंका", last_name="पटेल"),
        make_contact(email="priya@उदाहरण.भारत", first_name="Priya"),
    ]

    def old_lexemes(contact):  # as contact_lexemes wrote them before the mark
        lexemes = _WORD.findall(fold(contact.first_name)) + _WORD.findall(fold(contact.last_name))
        if contact.email:
            folded = fold(contact.email)
            local, _, domain = folded.partition("@")
            lexemes += [folded, local, domain, *_WORD.findall(folded)]
        return list(dict.fromkeys(lexemes)) or None

    with connection.cursor() as cursor:
        for contact in contacts + with_marks:
            cursor.execute(
                "UPDATE contacts_contact SET search_vector = array_to_tsvector(%s) WHERE id = %s",
                [old_lexemes(contact), contact.id],
            )

        editor = SimpleNamespace(connection=connection)
        migration.tag_and_mark(None, editor)
        migration.tag_and_mark(None, editor)  # a second run changes nothing
        joining.join_name_words(None, editor)
        joining.join_name_words(None, editor)
        marks.keep_marks_in_words(None, editor)
        for contact in contacts + with_marks:
            now = search_columns(
                account_id=contact.account_id,
                phone=None,
                email=contact.email,
                first_name=contact.first_name,
                last_name=contact.last_name,
            )["search_vector"]
            cursor.execute(
                "SELECT search_vector IS NOT DISTINCT FROM %s::tsvector, search_vector "
                "FROM contacts_contact WHERE id = %s",
                [now, contact.id],
            )
            same, stored = cursor.fetchone()
            assert same is True, (stored, now)

        # Backwards, 0006 gives back what it found, plus what 0008 added (0009 changes words, not adds them).
        migration.untag_and_unmark(None, editor)
        for contact in contacts:
            before = old_lexemes(contact)
            # The letters of a word with digits stay, as one more word, and so do joined name words.
            letters = [match.group() for lexeme in before or [] if (match := re.match("[^0-9@.+']+(?=[0-9])", lexeme))]
            written = f"{fold(contact.first_name)} {fold(contact.last_name)}".split()
            joined = ["".join(words) for word in written if len(words := _WORD.findall(word)) > 1]
            cursor.execute(
                "SELECT search_vector IS NOT DISTINCT FROM array_to_tsvector(%s) FROM contacts_contact WHERE id = %s",
                [before + letters + joined if before else None, contact.id],
            )
            assert cursor.fetchone()[0] is True, contact


def test_a_search_asks_the_index_for_its_accounts_tags_only(account, make_contact):
    mine = account_tag(account.pk)
    make_contact(first_name="Ada", email="ada@example.com")
    one = str(Contact.objects.for_account(account).search("ada 2671", accounts=[account]).query)
    assert f"'{mine}ada'" in one
    assert f"'{mine}2671':*" in one
    assert one.count("'#") == 2

    first, second = sorted(account_tag(account_id) for account_id in ["acc_1", "acc_2"])
    both = str(Contact.objects.search("ada", accounts=["acc_1", "acc_2"]).query)
    assert first != second
    assert f"( '{first}ada':* | '{second}ada':* )" in both

    assert not Contact.objects.search("ada", accounts=[]).exists()


def test_a_word_with_digits_after_its_letters_matches_by_prefix_and_by_its_letters(api, make_contact):
    wanted = make_contact(email="james.williams123@acme.example", first_name="Ada", last_name="R2D2")
    make_contact(email="james.williams124@acme.example", first_name="Bob")

    for query in ["williams123", "williams12 ada", "james.williams123", "james.williams123@acme", "r2", "R2D2", "r"]:
        assert _search(api, query) == {wanted.id}, query
    for query in ["williams", "williams1", "james", "acme.example", "jam wil"]:
        assert len(_search(api, query)) == 2, query
    assert _search(api, "williams125") == set()
    assert _search(api, "illiams") == set()


def test_email_search_does_not_match_another_address(api, make_contact):
    make_contact(email="grace.hopper@navy.example")

    assert _search(api, "grace.hopper@army.example") == set()
    assert _search(api, "army") == set()


# --- phone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "+1415",  # E.164 prefix with "+"
        "1415",  # and without
        "14155552671",
        "+14155552671",
        "415555",  # national number prefix
        "4155552671",
        "2671",  # suffix
        "671",
        "+1 (415) 555-2671",  # a whole written number
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "1 415 555 2671",
    ],
)
def test_phone_term_matches_prefix_national_prefix_and_suffix(api, make_contact, query):
    wanted = make_contact(phone="+14155552671")
    make_contact(phone="+12125550100")
    make_contact(phone="+442079460000")

    assert _search(api, query) == {wanted.id}


def test_phone_term_in_the_middle_of_the_number_does_not_match(api, make_contact):
    make_contact(phone="+14155552671")

    assert _search(api, "5552") == set()
    assert _search(api, "+1 (415) 555-2670") == set()


def test_phone_term_combines_with_a_name_term(api, make_contact):
    wanted = make_contact(phone="+14155552671", first_name="Ada")
    make_contact(phone="+14155550123", first_name="Grace")
    make_contact(phone="+12125550100", first_name="Ada")

    assert _search(api, "ada +1415") == {wanted.id}
    assert _search(api, "415555 ada") == {wanted.id}


@pytest.mark.parametrize("query", ["!!!", "-", "+", "()", "... --- ...", "@", "#$%^&*", "''", '"', "+ - . ( )"])
def test_search_of_only_punctuation_matches_nothing(api, make_contact, query):
    make_contact(phone="+14155552671", email="a@example.com", first_name="Ada")

    assert _search(api, query) == set()


def test_apostrophes_and_tsquery_syntax_are_plain_text(api, make_contact):
    obrien = make_contact(email="one@example.com", first_name="Conan", last_name="O'Brien")
    ada = make_contact(email="two@example.com", first_name="Ada")

    assert _search(api, "o'brien") == {obrien.id}
    assert _search(api, "brien") == {obrien.id}
    assert _search(api, "ada:*") == {ada.id}
    assert _search(api, "!ada") == {ada.id}
    assert _search(api, "ada | conan") == set()
    assert _search(api, "(ada)") == {ada.id}


def test_a_name_written_with_separators_is_found_as_typed_with_or_without_them(api, make_contact):
    obrien = make_contact(email="one@example.com", first_name="Conan", last_name="O'Brien")
    dangelo = make_contact(email="two@example.com", first_name="Jean-Luc", last_name="D'Ávila")
    spaced = make_contact(email="three@example.com", first_name="Jean Luc", last_name="Obama")

    assert contact_lexemes(first_name="Jean-Luc", last_name="O'Brien", email=None) == [
        "jean",
        "luc",
        "jeanluc",
        "o",
        "brien",
        "obrien",
    ]
    assert _search(api, "o'b") == {obrien.id, spaced.id}  # as "ob": the separator is not a letter to match
    assert _search(api, "o'br") == {obrien.id}
    assert _search(api, "obri") == {obrien.id}
    assert _search(api, "d'a") == {dangelo.id}
    assert _search(api, "davi") == {dangelo.id}
    assert _search(api, "jean-l") == {dangelo.id}  # "l" is not a prefix on its own after a separator
    assert _search(api, "jean-lu") == {dangelo.id, spaced.id}
    assert _search(api, "jeanl") == {dangelo.id}


def test_a_one_letter_word_after_a_separator_is_not_a_prefix_to_walk():
    # 'b':* would walk every lexeme of the account starting with "b"; the joined form is asked instead.
    assert parse_terms("o'b") == [("words", "( ' o''b':* | 'ob':* | ( 'o' & 'b' ) )")]
    assert parse_terms("o'br") == [("words", "( ' o''br':* | 'obr':* | ( 'o' & 'br':* ) )")]
    # A one-letter term alone is still a prefix: it is all the user typed.
    assert parse_terms("o") == [("words", "( 'o':* )")]


def test_words_before_a_separator_in_a_term_are_whole_and_the_last_is_a_prefix(api, make_contact):
    obrien = make_contact(email="one@example.com", first_name="Conan", last_name="O'Brien")
    olivia = make_contact(email="two@example.com", first_name="Olivia", last_name="Brien")
    ada = make_contact(email="ada.lovelace@example.org", first_name="Ada")

    assert _search(api, "o'bri") == {obrien.id}
    assert _search(api, "o brien") == {obrien.id, olivia.id}  # two terms: each a prefix
    assert _search(api, "ada.love") == {ada.id}
    assert _search(api, "ad.lovelace") == set()


def test_a_repeated_term_matches_as_the_term_once(api, make_contact):
    ada = make_contact(email="ada@example.com", first_name="Ada", last_name="Ada")
    make_contact(email="bob@example.com", first_name="Bob")

    assert parse_terms("ada Ada ADA") == parse_terms("ada")
    assert _search(api, "ada ada") == {ada.id}


@pytest.mark.parametrize(
    "query",
    ["'", "\\", "\\'", "a & b", "a | b", "!z", "a <-> b", "z:*", "(((", ":*", "''''", "😀", "a" * 150],
)
def test_odd_search_strings_never_fail(api, make_contact, query):
    make_contact(email="ada@example.com", first_name="Ada")

    response = api.get("/v1/contacts", {"search": query})

    assert response.status_code == 200, response.content
    assert response.json()["data"] == []


# --- freshness and tenancy -------------------------------------------------------


def test_new_and_changed_contacts_are_searchable_immediately(api):
    created = api.post(
        "/v1/contacts", {"first_name": "Ada", "email": "ada@old.example", "phone": "+14155552671"}, format="json"
    )
    assert created.status_code == 201
    contact_id = created.json()["id"]
    assert _search(api, "ada") == {contact_id}

    updated = api.patch(
        f"/v1/contacts/{contact_id}",
        {"first_name": "Grace", "email": "grace@new.example", "phone": "+12125550100"},
        format="json",
    )
    assert updated.status_code == 200

    assert _search(api, "ada") == set()
    assert _search(api, "grace") == {contact_id}
    assert _search(api, "old.example") == set()
    assert _search(api, "new.example") == {contact_id}
    assert _search(api, "2671") == set()
    assert _search(api, "0100") == {contact_id}


def test_cleared_fields_are_no_longer_searchable(api, make_contact):
    contact = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com", phone="+14155552671")

    response = api.patch(f"/v1/contacts/{contact.id}", {"last_name": None, "email": None}, format="json")

    assert response.status_code == 200
    assert _search(api, "lovelace") == set()
    assert _search(api, "example") == set()
    assert _search(api, "ada") == {contact.id}


def test_search_never_shows_other_accounts_contacts(api, other_api, make_contact, other_account):
    mine = make_contact(phone="+14155552671", email="ada@example.com", first_name="Ada")
    theirs = make_contact(account=other_account, phone="+14155552671", email="ada@example.com", first_name="Ada")

    for query in ("ada", "ada@example.com", "example", "+1415", "2671", "+1 (415) 555-2671"):
        assert _search(api, query) == {mine.id}
        assert _search(other_api, query) == {theirs.id}


# --- filters ---------------------------------------------------------------------


def test_lifecycle_stage_filter_is_exact(api, make_contact):
    customer = make_contact(email="a@example.com", lifecycle_stage="customer")
    make_contact(email="b@example.com", lifecycle_stage="customer_lost")
    make_contact(email="c@example.com")

    assert _list(api, lifecycle_stage="customer") == {customer.id}
    assert _list(api, lifecycle_stage="custom") == set()


def test_country_filter_accepts_any_case(api, make_contact):
    us = make_contact(phone="+14155552671")
    make_contact(phone="+442079460000")

    assert _list(api, country="US") == {us.id}
    assert _list(api, country="us") == {us.id}
    assert _list(api, country="uS") == {us.id}
    assert _list(api, country="FR") == set()


@pytest.mark.parametrize("country", ["XX", "xx", "USA", "U", "1"])
def test_unknown_country_is_400(api, make_contact, country):
    make_contact(phone="+14155552671")

    response = api.get("/v1/contacts", {"country": country})

    assert response.status_code == 400
    assert _error_attrs(response) == ["country"]


def test_tag_filter_is_exact_and_case_sensitive(api, make_contact):
    vip = make_contact(email="a@example.com", tags=["vip", "beta"])
    upper = make_contact(email="b@example.com", tags=["VIP"])
    make_contact(email="c@example.com", tags=["vipx"])
    make_contact(email="d@example.com")

    assert _list(api, tag="vip") == {vip.id}
    assert _list(api, tag="beta") == {vip.id}
    assert _list(api, tag="VIP") == {upper.id}
    assert _list(api, tag="vi") == set()


def _timed_contacts(make_contact):
    """Three contacts created an hour apart, the last one updated two hours after T0."""
    contacts = [make_contact(email=f"t{i}@example.com") for i in range(3)]
    for i, contact in enumerate(contacts):
        Contact.objects.filter(pk=contact.pk).update(
            created_at=T0 + datetime.timedelta(hours=i), updated_at=T0 + datetime.timedelta(hours=i)
        )
    Contact.objects.filter(pk=contacts[0].pk).update(updated_at=T0 + datetime.timedelta(hours=5))
    return [contact.id for contact in contacts]


def test_created_after_and_before_are_strict_rfc3339_bounds(api, make_contact):
    first, second, third = _timed_contacts(make_contact)

    assert _list(api, created_after="2026-03-01T12:00:00Z") == {second, third}
    assert _list(api, created_after="2026-03-01T12:00:00.000001Z") == {second, third}
    assert _list(api, created_after="2026-03-01T11:59:59.999999Z") == {first, second, third}
    assert _list(api, created_before="2026-03-01T14:00:00Z") == {first, second}
    assert _list(api, created_after="2026-03-01T12:30:00Z", created_before="2026-03-01T13:30:00Z") == {second}
    # The same instant written with an offset.
    assert _list(api, created_after="2026-03-01T14:00:00+02:00") == {second, third}
    assert _list(api, created_before="2026-03-01T09:30:00-04:00") == {first, second}
    # RFC 3339 allows offsets up to ±23:59, PostgreSQL only ±15:59: converted before the query.
    assert _list(api, created_after="2026-03-02T11:30:00+23:30") == {second, third}
    assert _list(api, created_before="2026-02-28T15:00:00-23:00") == {first, second}


def test_updated_after_filters_on_updated_at(api, make_contact):
    first, second, third = _timed_contacts(make_contact)

    assert _list(api, updated_after="2026-03-01T12:30:00Z") == {first, second, third}
    assert _list(api, updated_after="2026-03-01T13:00:00Z") == {first, third}
    assert _list(api, updated_after="2026-03-01T13:30:00Z") == {first, third}
    assert _list(api, updated_after="2026-03-01T16:00:00Z") == {first}
    assert _list(api, updated_after="2026-03-01T17:00:00Z") == set()


@pytest.mark.parametrize("param", ["created_after", "created_before", "updated_after"])
@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-03-01T25:00:00Z",
        "12345",
        "2026-03-01Tx",
        "",  # sent empty: not the same as not sent
        "2026-03-01T12:00:00",  # no offset: no instant
        "2026-03-01",
        "0001-01-01T00:00:00+10:00",  # before year 1 in UTC
        "9999-12-31T23:00:00-10:00",  # after year 9999 in UTC
        "\u0662\u0660\u0662\u0666-\u0660\u0663-\u0660\u0661T12:00:00Z",  # Arabic-Indic digits
    ],
)
def test_malformed_timestamp_is_400_naming_the_parameter(api, make_contact, param, value):
    make_contact(email="a@example.com")

    response = api.get("/v1/contacts", {param: value})

    assert response.status_code == 400
    assert _error_attrs(response) == [param]


def test_filters_combine_with_each_other_and_with_search(api, make_contact):
    wanted = make_contact(phone="+14155552671", first_name="Ada", lifecycle_stage="customer", tags=["vip"])
    make_contact(phone="+14155550123", first_name="Ada", lifecycle_stage="customer", tags=["beta"])
    make_contact(phone="+14155550124", first_name="Ada", lifecycle_stage="lead", tags=["vip"])
    make_contact(phone="+442079460000", first_name="Ada", lifecycle_stage="customer", tags=["vip"])
    grace = make_contact(phone="+14155550125", first_name="Grace", lifecycle_stage="customer", tags=["vip"])
    Contact.objects.update(created_at=T0, updated_at=T0)

    params = {
        "lifecycle_stage": "customer",
        "country": "us",
        "tag": "vip",
        "created_after": "2026-03-01T00:00:00Z",
        "created_before": "2026-03-02T00:00:00Z",
        "updated_after": "2026-02-01T00:00:00Z",
    }
    assert _search(api, "ada", **params) == {wanted.id}
    assert _search(api, "+1415", **params) == {wanted.id, grace.id}
    assert _search(api, "grace", **params) == {grace.id}
    assert _search(api, "ada", **{**params, "created_after": "2026-03-02T00:00:00Z"}) == set()


def test_invalid_filter_with_search_is_still_400(api, make_contact):
    make_contact(phone="+14155552671", first_name="Ada")

    response = api.get("/v1/contacts", {"search": "ada", "country": "XX", "created_after": "soon"})

    assert response.status_code == 400
    assert sorted(_error_attrs(response)) == ["country", "created_after"]


# --- the vocabulary of words ------------------------------------------------------------


def _stored_words() -> set[str]:
    """Every lexeme of the stored vectors that is not behind the mark."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT lexeme FROM contacts_contact, unnest(search_vector)")
        return {lexeme for (lexeme,) in cursor.fetchall() if lexeme[TAG_LENGTH] != MARK}


def _vocabulary() -> set[str]:
    return set(SearchWord.objects.values_list("lexeme", flat=True))


def test_every_write_puts_its_words_in_the_vocabulary_and_none_behind_the_mark(
    api, account, other_account, make_contact, tmp_path
):
    make_contact(first_name="Ada", last_name="Lovelace", email="ada.byron@example.com")
    created = api.post("/v1/contacts", {"first_name": "Grace", "email": "grace7@navy.example"}, format="json")
    assert created.status_code == 201
    renamed = api.patch(f"/v1/contacts/{created.json()['id']}", {"last_name": "Hopper"}, format="json")
    assert renamed.status_code == 200
    path = tmp_path / "contacts.csv"
    path.write_text("email,first_name,last_name\nalan@example.com,Alan,Turing\nedsger@example.com,Edsger,Dijkstra\n")
    call_command("import_contacts", str(path), account="Acme", workers=1, stdout=io.StringIO())
    make_contact(account=other_account, first_name="Ken", email="ken@example.com")

    words = _vocabulary()

    assert words == _stored_words()
    mine, theirs = account_tag(account.pk), account_tag(other_account.pk)
    assert {mine + word for word in ("ada", "byron", "grace", "hopper", "navy", "alan", "dijkstra")} <= words
    assert {theirs + "ken", theirs + "example"} <= words
    assert not any(word[TAG_LENGTH] == MARK for word in words)


def test_writes_keep_words_no_contact_holds_any_more_and_add_none_twice(api, make_contact):
    contact = make_contact(first_name="Ada", last_name="Lovelace", phone="+14155552601")
    assert api.patch(f"/v1/contacts/{contact.id}", {"first_name": "Grace"}, format="json").status_code == 200
    assert api.patch(f"/v1/contacts/{contact.id}", {"tags": ["vip"]}, format="json").status_code == 200
    make_contact(first_name="Ada", last_name="Byron", phone="+14155552602")

    tag = account_tag(contact.account_id)
    rows = list(SearchWord.objects.values_list("lexeme", flat=True))
    assert sorted(rows) == sorted({tag + word for word in ("ada", "lovelace", "grace", "byron")})


def test_the_purge_deletes_the_words_no_contact_holds_any_more(api, account, make_contact):
    tag = account_tag(account.pk)
    ada = make_contact(first_name="Ada", last_name="Lovelace", phone="+14155552601")
    grace = make_contact(first_name="Grace", last_name="Lovelace", phone="+14155552602")
    odd = make_contact(first_name="O'Hara", last_name="Back\\slash", phone="+14155552603")
    assert api.patch(f"/v1/contacts/{grace.id}", {"first_name": "Edsger"}, format="json").status_code == 200
    assert api.delete(f"/v1/contacts/{ada.id}").status_code == 204
    assert api.delete(f"/v1/contacts/{odd.id}").status_code == 204
    before = _vocabulary()
    out = io.StringIO()

    with CaptureQueriesContext(connection) as captured:
        purged = search.purge_unused_search_words(batch_size=2)
    call_command("purge_expired", stdout=out)

    assert purged == 8
    gone = ("ada", "grace", "o", "hara", "ohara", "back", "slash", "backslash")
    assert before - _vocabulary() == {tag + word for word in gone}
    assert _vocabulary() == _stored_words() == {tag + "edsger", tag + "lovelace"}
    # 10 words, 2 a batch, and the look that finds no more.
    assert sum("LOCK TABLE contacts_contact IN SHARE MODE" in query["sql"] for query in captured) == 6
    assert "and 0 unused search word(s)." in out.getvalue()


def test_the_migration_fills_the_vocabulary_from_the_stored_vectors(make_contact):
    make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    make_contact(first_name="Ada", last_name="Byron", phone="+14155552671")
    expected = _vocabulary()
    SearchWord.objects.all().delete()

    backfill = importlib.import_module("contacts.migrations.0010_search_words").BACKFILL
    with connection.cursor() as cursor:
        cursor.execute(backfill)
        cursor.execute(backfill)  # words already there are not added again

    assert sorted(SearchWord.objects.values_list("lexeme", flat=True)) == sorted(expected)
    assert expected == _stored_words()


def test_a_prefix_with_few_completions_is_asked_as_them_exactly(account, make_contact):
    tag = account_tag(account.pk)
    james = make_contact(first_name="James", last_name="Williams", phone="+14155552603")
    jameson = make_contact(first_name="Jameson", last_name="Williamson", phone="+14155552604")
    make_contact(first_name="Jamal", last_name="Wilson", phone="+14155552605")

    queryset = Contact.objects.for_account(account).search("James Williams", accounts=[account])

    sql = str(queryset.query)
    assert f"( '{tag}james' | '{tag}jameson' )" in sql
    assert f"( '{tag}williams' | '{tag}williamson' )" in sql
    assert ":*" not in sql
    assert set(queryset.values_list("pk", flat=True)) == {james.pk, jameson.pk}


def test_a_prefix_with_many_completions_stays_a_prefix(account, make_contact, monkeypatch):
    monkeypatch.setattr(search, "MAX_COMPLETIONS", 2)
    tag = account_tag(account.pk)
    for index, first_name in enumerate(["Alan", "Alice", "Alma"]):
        make_contact(first_name=first_name, last_name="Lovelace", phone=f"+141555526{index}0")
    contacts = Contact.objects.for_account(account)

    three = str(contacts.search("al lovelace", accounts=[account]).query)
    two = str(contacts.search("ali lovelace", accounts=[account]).query)

    assert f"'{tag}al':*" in three
    assert f"'{tag}alice'" in two
    assert f"'{tag}alice':*" not in two
    assert contacts.search("al lovelace", accounts=[account]).count() == 3


def test_a_lone_prefix_is_asked_as_a_prefix_without_a_look_at_the_vocabulary(
    account, make_contact, django_assert_num_queries
):
    make_contact(first_name="James", phone="+14155552671")
    contacts = Contact.objects.for_account(account)

    with django_assert_num_queries(1):
        assert contacts.search("jam", accounts=[account]).count() == 1
    with django_assert_num_queries(2):
        assert contacts.search("jam 2671", accounts=[account]).count() == 1


def test_a_prefix_nothing_completes_matches_nothing(api, make_contact):
    make_contact(first_name="Ada", last_name="Lovelace", phone="+14155552606")

    assert _search(api, "zed") == set()
    assert _search(api, "ada zed") == set()
    assert _search(api, "ada") != set()


def test_a_search_across_accounts_asks_every_tag_by_prefix(account, other_account, make_contact):
    make_contact(first_name="Ada", phone="+14155552607")
    make_contact(account=other_account, first_name="Ada", phone="+14155552608")
    first, second = sorted(account_tag(item.pk) for item in (account, other_account))

    sql = str(Contact.objects.search("ada", accounts=[account, other_account]).query)

    assert f"( '{first}ada':* | '{second}ada':* )" in sql


def test_completed_words_find_what_the_prefixes_find(account, make_contact):
    rng = random.Random(7)
    stems = ["jam", "will", "ann", "o'br", "jean-l", "müll", "дим", "ada.lo", "x"]
    for index in range(60):
        first = rng.choice(stems) + rng.choice(["", "es", "ie", "son", "a", "ov"])
        last = rng.choice(stems) + rng.choice(["", "iams", "er", "ace", "ien", "uc"])
        make_contact(first_name=first, last_name=last, email=f"c{index}@example.com")
    contacts = Contact.objects.for_account(account)
    tag = account_tag(account.pk)
    searches = [
        *stems,
        "jam will",
        "james williams",
        "jamie o'brien",
        "Jean-Luc",
        "jea mull",
        "димov",
        "ada.lo",
        "ada.lovelace",
        "x xuc",
        "example",
        "jam 9",
    ]

    completed = 0
    for text in searches:
        by_prefix = contacts
        for _, tsquery in parse_terms(text, (tag,)):
            by_prefix = by_prefix.filter(search_vector=LexemeQuery(tsquery))
        searched = contacts.search(text, accounts=[account])
        assert set(searched) == set(by_prefix), text
        completed += str(searched.query) != str(by_prefix.query)
    assert completed >= len(searches) // 2


# --- query plans -------------------------------------------------------------------

FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken"]
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Thompson"]


def _bulk_contacts(account, count, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        first = f"{rng.choice(FIRST_NAMES)}{i}"
        last = f"{rng.choice(LAST_NAMES)}{i}"
        email = f"{first.lower()}.{last.lower()}@d{i % 97}.example"
        phone = f"+1{rng.choice(['212', '415', '650', '718'])}{rng.randrange(2000000, 9999999)}"
        rows.append(
            Contact(
                account=account,
                phone=phone,
                email=email,
                first_name=first,
                last_name=last,
                country="US" if i % 50 else "GB",
                lifecycle_stage="lead" if i % 40 else "churned",
                tags=["bulk"] if i % 60 else ["rare"],
                metadata={"i": i},
                created_at=T0 - datetime.timedelta(minutes=i),
                updated_at=T0 - datetime.timedelta(minutes=i),
                **search_columns(account_id=account.pk, phone=phone, email=email, first_name=first, last_name=last),
            )
        )
    Contact.objects.bulk_create(rows, batch_size=1000)


def _plan(queryset):
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_search_and_filters_are_served_by_indexes_not_a_sequential_scan(account, other_account):
    _bulk_contacts(account, 3000, seed=1)
    _bulk_contacts(other_account, 1000, seed=2)
    with connection.cursor() as cursor:
        # What (auto)vacuum does in steady state: move the rows just inserted
        # from the GIN indexes' pending lists into the indexes proper. Manual
        # ANALYZE does not, and a 3,000-row pending list makes every GIN scan
        # look as costly as reading the table.
        cursor.execute("SELECT gin_clean_pending_list('contact_search'), gin_clean_pending_list('contact_tags')")
        cursor.execute("ANALYZE contacts_contact")
    sample = Contact.objects.for_account(account).order_by("created_at").first()
    contacts = Contact.objects.for_account(account)
    terms = {
        "word": sample.first_name[:5],
        "two words": f"{sample.last_name} {sample.first_name}",
        "email": sample.email,
        "email prefix": sample.email[:-4],
        "domain": sample.email.partition("@")[2],
        "phone digits": sample.phone_digits[:8],
        "phone with plus": "+" + sample.phone_digits,
        "national": sample.phone_national[:7],
        "phone suffix": sample.phone_digits[-5:],
        "written phone": f"+1 ({sample.phone_national[:3]}) {sample.phone_national[3:6]}-{sample.phone_national[6:]}",
        "mixed": f"{sample.first_name[:4]} {sample.phone_digits[-4:]}",
    }
    # Filters go through the API's own FilterSet, as the list endpoint applies them.
    filters = {
        "no filter": {},
        "lifecycle_stage": {"lifecycle_stage": "churned"},
        "country": {"country": "gb"},
        "tag": {"tag": "rare"},
        "created_after": {"created_after": "2026-03-01T11:30:00Z"},
        "created_before": {"created_before": "2026-02-27T10:10:00Z"},
        "updated_after": {"updated_after": "2026-03-01T11:30:00Z"},
    }

    def filtered(queryset, params):
        filterset = ContactFilter(data=params, queryset=queryset)
        assert filterset.is_valid(), filterset.errors
        return filterset.qs

    queries = {}
    for term_kind, term in terms.items():
        assert contacts.search(term, accounts=[account]).filter(pk=sample.pk).exists(), term_kind
        for filter_name, params in filters.items():
            queryset = filtered(contacts.search(term, accounts=[account]), params)
            queries[f"search {term_kind} + {filter_name}"] = queryset
            # The page the API runs: newest first, one row more than the limit.
            queries[f"page of search {term_kind} + {filter_name}"] = queryset.order_by("-created_at", "-id")[:21]
    for filter_name, params in filters.items():
        queryset = filtered(contacts, params)
        assert queryset.exists(), filter_name
        assert params == {} or queryset.count() < 100, filter_name
        queries[f"filter {filter_name} alone"] = queryset
        queries[f"page of filter {filter_name} alone"] = queryset.order_by("-created_at", "-id")[:21]
    del queries["filter no filter alone"]
    queries["first page of the listing"] = queries.pop("page of filter no filter alone")

    sequential = {name: _plan(queryset) for name, queryset in queries.items()}
    sequential = {name: plan for name, plan in sequential.items() if "Seq Scan on contacts_contact" in plan}

    assert sequential == {}


@pytest.mark.django_db
def test_phone_search_columns_keep_finer_statistics():
    # So that a rare phone prefix is seen as rare (migration contacts.0007).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attrelid::regclass::text, attname, attstattarget FROM pg_attribute "
            "WHERE (attrelid = 'contacts_contact'::regclass AND attname IN ('phone_digits', 'phone_national')) "
            "OR attrelid = 'contact_phone_reversed'::regclass AND attnum = 2"
        )
        targets = {(table, column): target for table, column, target in cursor.fetchall()}
    assert targets == {
        ("contacts_contact", "phone_digits"): 1000,
        ("contacts_contact", "phone_national"): 1000,
        ("contact_phone_reversed", "reverse"): 1000,
    }


def test_the_marks_migration_rewrites_the_vectors_words_cut_at_marks(make_contact):
    from importlib import import_module

    marks = import_module("contacts.migrations.0009_search_words_keep_marks")
    hindi = make_contact(email="priya@example.in", first_name="प्रियंका", last_name="पटेल")
    latin = make_contact(email="ada@example.com", first_name="Ada")
    tag = account_tag(hindi.account_id)
    cut = [tag + lexeme for lexeme in ("पर", "य", "क", "परयक", "पट", "ल", "पटल", "priya", "example", "in")]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE contacts_contact SET search_vector = array_to_tsvector(%s) WHERE id = %s", [cut, hindi.id]
        )
        cursor.execute("SELECT xmin FROM contacts_contact WHERE id = %s", [latin.id])
        untouched = cursor.fetchone()[0]

        marks.keep_marks_in_words(None, SimpleNamespace(connection=connection))

        cursor.execute("SELECT tsvector_to_array(search_vector) FROM contacts_contact WHERE id = %s", [hindi.id])
        stored = set(cursor.fetchone()[0])
        cursor.execute("SELECT xmin FROM contacts_contact WHERE id = %s", [latin.id])
        assert cursor.fetchone()[0] == untouched  # an ASCII-only contact is left alone
    assert {tag + "परियंका", tag + "पटेल"} <= stored
    assert not {tag + "य", tag + "ल", tag + "पट"} & stored
    assert stored == {
        tag + lexeme for lexeme in contact_lexemes(first_name="प्रियंका", last_name="पटेल", email="priya@example.in")
    }
