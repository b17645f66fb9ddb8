import gc
import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError, ValidationError

from contacts_project.api import parsers
from contacts_project.api.parsers import check_json_document, is_plain_json_text, strict_json_loads
from contacts_project.bulk import fewer_gc_passes
from contacts_project.ids import new_id, random_token

MAX_DEPTH = 64


def nested(depth: int) -> str:
    """A JSON object whose scalar sits ``depth`` levels deep, as check_json_document counts."""
    return '{"a": ' * (depth - 1) + "1" + "}" * (depth - 1)


def refused(text: str) -> bool:
    try:
        check_json_document(json.loads(text), max_depth=MAX_DEPTH)
    except (ParseError, ValidationError):
        return True
    return False


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Ada", "tags": ["a", "b"], "metadata": {"plan": "pro", "n": [1, 2, {"x": null}]}}',
        *(nested(depth) for depth in range(MAX_DEPTH - 3, MAX_DEPTH + 3)),
        '{"note": "a\\u0000b"}',
        '{"note": "\\ud800"}',
        '{"k\\u0000": 1}',
        '{"note": "caf\\u00e9"}',
        '["\x00"]',
        "[" * 70 + "]" * 70,
    ],
)
def test_plain_text_never_decodes_to_what_the_full_check_refuses(text):
    # The bulk paths skip the walk for plain text: that must never let through what the walk refuses.
    assert not (is_plain_json_text(text, max_depth=MAX_DEPTH) and refused(text))


def test_ordinary_documents_are_plain_and_escapes_or_deep_nesting_are_not():
    assert is_plain_json_text('{"first_name": "José", "metadata": {"plan": "pro"}}', max_depth=MAX_DEPTH)
    assert not is_plain_json_text('{"note": "caf\\u00e9"}', max_depth=MAX_DEPTH)
    assert not is_plain_json_text("Ann\x00", max_depth=MAX_DEPTH)
    assert not is_plain_json_text(nested(MAX_DEPTH), max_depth=MAX_DEPTH)


def json_decoded(text: str):
    """What ``json`` alone makes of ``text``: the value, or the exception's type and message."""
    try:
        return parsers._STRICT_DECODER.decode(text)
    except (ValueError, RecursionError) as error:
        return type(error), str(error)


def strictly_decoded(text: str):
    try:
        return strict_json_loads(text)
    except (ValueError, RecursionError) as error:
        return type(error), str(error)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "b": [true, false, null], "c": {"d": "é"}}',
        '{"a": 1, "b": 2, "a": 3}',  # the last duplicate wins, in the first one's place
        str(2**63 - 1),
        str(2**63),
        str(2**64),  # orjson would read this as a float
        str(-(2**63) - 1),
        "123456789012345678901234567890",
        "12345678901234567890.5",
        '"18446744073709551616"',  # digits in a string: json decodes it, to the same string
        "1e400",
        "-1e400",
        "0.1e-400",
        "NaN",
        "Infinity",
        "-0",
        "-0.0",
        "1E2",
        '"\\ud800"',  # a lone surrogate: orjson refuses it, json takes it (and check_json_document names it)
        '"\ud800"',  # a lone surrogate character, which no UTF-8 holds
        '"\\u0000"',
        '"a\x01b"',
        "[1,]",
        "01",
        "\ufeff{}",
        " \n[\r]\t",
        "[] \x0b",
        "[" * 2000 + "]" * 2000,
        "",
    ],
)
def test_strict_loads_gives_what_json_gives_value_or_error(text):
    expected = json_decoded(text)

    got = strictly_decoded(text)

    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(value=JSON_VALUES, ensure_ascii=st.booleans())
def test_strict_loads_decodes_any_json_as_json_does(value, ensure_ascii):
    text = json.dumps(value, ensure_ascii=ensure_ascii)

    got = strict_json_loads(text)

    assert got == json.loads(text)
    assert json.dumps(got) == json.dumps(json.loads(text))  # same types, same float bits, same key order


def test_random_tokens_have_the_length_and_alphabet_and_use_all_of_it():
    tokens = [random_token() for _ in range(2000)]
    alphabet = set(string.ascii_letters + string.digits)
    assert {len(token) for token in tokens} == {16}
    assert set("".join(tokens)) == alphabet
    assert len(set(tokens)) == len(tokens)
    assert len(random_token(32)) == 32
    identifier = new_id("con")
    assert identifier.startswith("con_")
    assert len(identifier) == 20


def test_fewer_gc_passes_restores_the_collector():
    before = gc.get_threshold()
    with fewer_gc_passes(threshold=12345):
        assert gc.get_threshold()[0] == 12345
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
