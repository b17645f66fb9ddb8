"""The only request parser: JSON, strictly.

Each check answers something that would otherwise be a 500 further down:
PostgreSQL rejects NUL characters in text and JSONB; Python's ``json`` raises
RecursionError (not ValueError, which DRF catches) on deep nesting; a body
read without a bound can exhaust a worker. ``NaN``/``Infinity`` are not JSON.
"""

import json
import math
import re

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.settings import api_settings

from contacts_project.api.errors import PayloadTooLarge

NUL_MESSAGE = "NUL characters (\\u0000) are not allowed."
SURROGATE_MESSAGE = "Unpaired surrogates (\\ud800-\\udfff) are not valid Unicode text."
# NUL cannot be stored in PostgreSQL text or JSONB; a lone surrogate (legal in
# JSON's \\u escapes) cannot be encoded as UTF-8 at all.
_INVALID_TEXT = re.compile("[\x00\ud800-\udfff]")


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text):
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


# Made once: json.loads with hooks builds a decoder (and its scanner) per call,
# which was most of a small document's decoding (an import decodes three JSON
# cells a row). decode() differs from loads() only on bytes and a leading BOM:
# callers pass text, and both refuse a BOM with a ValueError.
_STRICT_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


# orjson reads an integer past 64 bits as a float, losing digits. Such a
# number is 19 digits or more in a row: the text then goes to ``json``. A
# regex search costs more than orjson's decoding, so it runs only when the
# text holds 19 digits in all (counted by deleting them, in C).
_LONG_NUMBER = re.compile(r"[0-9]{19}")
_DIGITS = b"0123456789"


def strict_json_loads(text: str):
    """``json.loads`` that refuses NaN, Infinity and numbers out of range (not JSON; not storable).

    orjson decodes first (about half of ``json``'s time on an imported
    row's metadata) wherever it gives what ``json`` would: it refuses NaN,
    Infinity and out-of-range numbers itself. What it refuses goes to
    ``json``, which says why in the words callers have always shown, or
    takes what only orjson refuses (a lone surrogate escape, which
    ``check_json_document`` then names).
    """
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate character: invalid UTF-8, which orjson refuses
    if len(data) - len(data.translate(None, _DIGITS)) < 19 or _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return _STRICT_DECODER.decode(text)


def _check_text(text: str, path: tuple[str, ...]) -> None:
    match = _INVALID_TEXT.search(text)
    if match:
        attr = ".".join(path) or api_settings.NON_FIELD_ERRORS_KEY
        if match.group() == "\x00":
            raise ValidationError({attr: [NUL_MESSAGE]}, code="null_characters")
        raise ValidationError({attr: [SURROGATE_MESSAGE]}, code="invalid_unicode")


def is_plain_json_text(text: str, *, max_depth: int) -> bool:
    """True when ``text`` cannot decode to anything ``check_json_document`` refuses.

    A cheap look at the raw text (no escapes, no NUL or surrogate, fewer
    brackets than the depth allows, counting one level for an enclosing
    object), so a bulk path walks only the rare document that needs it. An
    escape (\\u0000, \\ud800) is the only way decoded JSON can hold what
    ``_INVALID_TEXT`` refuses when the raw text does not. Substring tests, not
    a regex: an alternation tried at every position of an imported row's ~400
    characters cost 5.8 µs, these 1.6; a str encodes to UTF-8 exactly when it
    holds no surrogate.
    """
    if "\\u" in text or "\x00" in text or text.count("[") + text.count("{") >= max_depth - 1:
        return False
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return False
    return True


def check_json_document(data, *, max_depth: int) -> None:
    """Reject text PostgreSQL cannot hold (naming where) and nesting deeper than ``max_depth``."""
    stack = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if depth > max_depth:
            raise ParseError(f"JSON is nested deeper than {max_depth} levels.")
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, path)
                stack.append((item, (*path, key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, (*path, str(index)), depth + 1) for index, item in enumerate(value))


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(limit)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"Request body is not valid UTF-8 (byte {exc.start}).") from None
        try:
            data = strict_json_loads(text)
        except RecursionError:
            raise ParseError(f"JSON is nested deeper than {settings.API_MAX_JSON_DEPTH} levels.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {exc}") from None
        if not is_plain_json_text(text, max_depth=settings.API_MAX_JSON_DEPTH):
            check_json_document(data, max_depth=settings.API_MAX_JSON_DEPTH)
        return data
