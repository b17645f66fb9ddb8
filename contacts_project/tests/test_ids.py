import string
from collections import Counter

from contacts_project import ids
from contacts_project.ids import new_ids

ALPHABET = string.ascii_letters + string.digits


def test_new_ids_have_the_prefix_length_and_alphabet_and_use_all_of_it():
    made = new_ids("con", 2000)

    assert len(made) == 2000
    assert len(set(made)) == 2000
    assert {identifier[:4] for identifier in made} == {"con_"}
    assert {len(identifier) for identifier in made} == {20}
    assert set("".join(identifier[4:] for identifier in made)) == set(ALPHABET)
    assert new_ids("act", 0) == []


def test_new_ids_map_bytes_as_random_token_does_and_drop_the_biased_ones(monkeypatch):
    """Byte b < 248 is ALPHABET[b % 62]; 248-255 are dropped, so each character stays equally likely."""
    draws = [bytes([0, 61, 62, 247, 248, 255, 123] * 8), bytes(range(256))]
    monkeypatch.setattr(ids.secrets, "token_bytes", lambda size: draws.pop(0)[:size])

    made = new_ids("con", 3)

    kept = [0, 61, 62, 247, 123] * 8 + list(range(248))  # the first draw is short of 48 characters: a second call
    expected = "".join(ALPHABET[byte % 62] for byte in kept)[:48]
    assert made == ["con_" + expected[start : start + 16] for start in (0, 16, 32)]
    assert draws == []


def test_new_ids_are_uniform_over_the_alphabet():
    characters = Counter("".join(identifier[4:] for identifier in new_ids("con", 20_000)))

    # 320,000 draws: 5,161 expected of each character, a standard deviation of ~71. Keeping
    # the biased bytes would give 8 characters 21% more.
    share = sum(characters.values()) / len(ALPHABET)
    assert len(characters) == len(ALPHABET)
    assert 0.92 * share < min(characters.values()) <= max(characters.values()) < 1.08 * share
