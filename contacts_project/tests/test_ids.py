import string
import time
from collections import Counter

import pytest
from django.db import connection

from contacts_project import ids
from contacts_project.ids import new_id, new_ids, time_part

ALPHABET = string.ascii_letters + string.digits


def test_new_ids_have_the_prefix_length_and_alphabet_and_use_all_of_it():
    made = new_ids("con", 2000)

    assert len(made) == 2000
    assert len(set(made)) == 2000
    assert {identifier[:4] for identifier in made} == {"con_"}
    assert {len(identifier) for identifier in made} == {20}
    assert set("".join(identifier[11:] for identifier in made)) == set(ALPHABET)
    assert new_ids("act", 0) == []


def test_the_time_part_sorts_as_the_milliseconds_do():
    moments = [0, 1, 61, 62, 3843, 1_795_000_000_000, 1_795_000_000_001, 62**7 - 1]
    parts = [time_part(moment) for moment in moments]

    assert {len(part) for part in parts} == {7}
    assert parts[0] == "0000000"
    assert parts[-1] == "zzzzzzz"
    assert sorted(parts) == parts
    assert len(set(parts)) == len(parts)


@pytest.mark.django_db
def test_ids_made_later_sort_after_earlier_ones_in_the_database_too(monkeypatch):
    """The order the primary-key index keeps, in the column's collation, not only Python's."""
    clock = iter([1_795_000_000_000, 1_795_000_000_001, 1_795_000_062_000, 1_795_003_844_000])
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(clock) * 1_000_000)
    made = [new_id("con"), *new_ids("con", 1), new_id("con"), new_id("con")]
    with connection.cursor() as cursor:
        cursor.execute("SELECT array_agg(id ORDER BY id) FROM unnest(%s::varchar(24)[]) AS id", [list(reversed(made))])
        assert cursor.fetchone()[0] == made


def test_ids_start_with_the_time_they_were_made():
    before = time.time_ns() // 1_000_000
    identifier = new_id("lst")
    after = time.time_ns() // 1_000_000

    assert time_part(before) <= identifier[4:11] <= time_part(after)


def test_new_ids_map_bytes_as_random_token_does_and_drop_the_biased_ones(monkeypatch):
    """Byte b < 248 is ALPHABET[b % 62]; 248-255 are dropped, so each character stays equally likely."""
    draws = [bytes([0, 61, 62, 247, 248, 255, 123] * 8), bytes(range(256))]
    monkeypatch.setattr(ids.secrets, "token_bytes", lambda size: draws.pop(0)[:size])

    made = new_ids("con", 5)

    kept = [0, 61, 62, 247, 123] * 8 + list(range(248))  # the first draw is short of 45 characters: a second call
    expected = "".join(ALPHABET[byte % 62] for byte in kept)[:45]
    assert [identifier[11:] for identifier in made] == [expected[start : start + 9] for start in range(0, 45, 9)]
    assert draws == []


def test_new_ids_are_uniform_over_the_alphabet():
    characters = Counter("".join(identifier[11:] for identifier in new_ids("con", 36_000)))

    # 324,000 draws: 5,226 expected of each character, a standard deviation of ~72. Keeping
    # the biased bytes would give 8 characters 21% more.
    share = sum(characters.values()) / len(ALPHABET)
    assert len(characters) == len(ALPHABET)
    assert 0.92 * share < min(characters.values()) <= max(characters.values()) < 1.08 * share
