"""The importer's strict JSON decoder, made once, answers as strict_json_loads does."""

import pytest

from contacts.importers import _strict_json_loads
from contacts_project.api.parsers import strict_json_loads

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


@pytest.mark.parametrize("text", TEXTS)
def test_the_importers_decoder_answers_as_strict_json_loads(text):
    assert outcome(_strict_json_loads, text) == outcome(strict_json_loads, text)


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "-Infinity", "1e400", "[-1e999]"])
def test_not_json_numbers_are_refused(text):
    assert outcome(_strict_json_loads, text) == "ValueError"
