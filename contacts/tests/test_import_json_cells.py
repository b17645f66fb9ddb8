"""The strict JSON decoder and the plain-text test the importer and the API share, held to their references."""

import json
import math
import random
import re

import pytest

from contacts.importers import MAX_JSON_DEPTH
from contacts_project.api.parsers import is_plain_json_text, strict_json_loads

TEXTS = [
    '{"plan": "pro", "n": [1, 2.5, {"x": null}], "ok": true}',
    '["a", "b"]',
    "NaN",
    "[NaN]",
    '{"a": Infinity}',
    "-Infinity",
    "1e400",
    "[-1e400]",
    "1e308",
    "1.7976931348623157e308",
    "2e-400",
    "123456789012345678901234567890",
    "-0",
    "-0.0",
    "1E5",
    '"\\ud800"',
    '"\\u0000"',
    '{"a": 1, "a": 2}',
    "\ufeff[]",
    "  [1]  \n",
    "[1] x",
    "[1,]",
    "{'a': 1}",
    "",
    " ",
    "nan",
    "[" * 5000 + "]" * 5000,
]


def outcome(loads, text):
    try:
        value = loads(text)
    except ValueError:
        return "ValueError"
    except RecursionError:
        return "RecursionError"
    return ("value", repr(value))


def _refuse(value):
    raise ValueError(value)


def _finite(text):
    value = float(text)
    if math.isinf(value):
        raise ValueError(text)
    return value


def loads_per_call(text):
    """What strict_json_loads was: json.loads building its decoder with the hooks on every call."""
    return json.loads(text, parse_constant=_refuse, parse_float=_finite)


@pytest.mark.parametrize("text", TEXTS)
def test_the_decoder_made_once_answers_as_json_loads_with_the_hooks(text):
    assert outcome(strict_json_loads, text) == outcome(loads_per_call, text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "-Infinity", "1e400", "[-1e999]"])
def test_not_json_numbers_are_refused(text):
    assert outcome(strict_json_loads, text) == "ValueError"


PLAIN_EDGES = [
    "",
    '{"plan": "pro"}',
    "Zoë\nMüller\n日本語\n🙂",
    "a\\u0041",
    "a\\\\u",
    "\\",
    "u",
    "\x00",
    "Zoë\x00",
    "\ud800",
    "Zoë\udfff",
    "\ud83d\ude00",
    "[" * (MAX_JSON_DEPTH - 2),
    "[" * (MAX_JSON_DEPTH - 1),
    "{" * 31 + "[" * 31,
    "{" * 31 + "[" * 32,
]


def random_texts(count: int) -> list[str]:
    draw = random.Random(20261127)
    alphabet = ["a", "u", "\\", "\x00", "\ud800", "\udbff", "\udfff", "é", "🙂", "[", "{", "]", "\n", '"']
    return ["".join(draw.choices(alphabet, k=draw.randint(0, 80))) for _ in range(count)]


# What is_plain_json_text was, as one regex: the reference its substring tests must match.
_MAY_DECODE_TO_INVALID = re.compile(r"\\u|[\x00\ud800-\udfff]")


def plain_by_regex(text: str) -> bool:
    return _MAY_DECODE_TO_INVALID.search(text) is None and text.count("[") + text.count("{") < MAX_JSON_DEPTH - 1


@pytest.mark.parametrize("text", PLAIN_EDGES)
def test_the_plain_text_test_answers_as_the_regex(text):
    assert is_plain_json_text(text, max_depth=MAX_JSON_DEPTH) == plain_by_regex(text)


def test_the_plain_text_test_answers_as_the_regex_on_random_text():
    texts = random_texts(20_000)

    answers = [is_plain_json_text(text, max_depth=MAX_JSON_DEPTH) for text in texts]

    assert answers == [plain_by_regex(text) for text in texts]
    assert 0 < sum(answers) < len(texts)
