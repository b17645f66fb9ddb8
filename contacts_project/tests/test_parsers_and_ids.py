import gc
import json
import string

import pytest
from rest_framework.exceptions import ParseError, ValidationError

from contacts_project.api.parsers import check_json_document, is_plain_json_text
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
