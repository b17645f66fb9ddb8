"""Public identifiers: a type prefix, then 16 base62 characters that sort by creation time.

An id is ``con_`` (``lst_``, ``act_``…), 7 characters of the millisecond it
was made and 9 random ones (~53.6 bits). Ids made later sort after earlier
ones, as with ULID or UUIDv7: a new row's id lands beside the ids of the rows
made just before it, at one end of the primary-key index, and so does every
index led by a contact id (the activity indexes). With fully random ids each
new row touched a page anywhere in those indexes, and a bulk import's
preference events cost PostgreSQL ~15% more CPU per contact (23.6 s against
20.0 s of backend CPU for 200,000 contacts). The time in an id says no more
than the object's ``created_at``. Ids are still opaque: nothing reads the
time back.

API key secrets are different: ``random_token`` is all random.
"""

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits
# The time part in code-point order ("0" < "A" < "a"), which is the order of the
# ids' collation too; 62**7 milliseconds last until the year 4199.
_SORTED_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
TIME_LENGTH = 7
RANDOM_LENGTH = 16  # characters after the prefix, time and random together
_RANDOM_PART = RANDOM_LENGTH - TIME_LENGTH


# Random bytes map onto the alphabet with ``bytes.translate``; bytes from 248
# up are dropped so each of the 62 characters stays equally likely. One
# urandom call per token instead of one per character: the importer makes
# millions of ids, and ``secrets.choice`` per character cost ~40 µs an id.
_UNBIASED_LIMIT = 248  # the largest multiple of 62 that fits in a byte
_TO_ALPHABET = bytes(ord(_ALPHABET[byte % len(_ALPHABET)]) if byte < _UNBIASED_LIMIT else 0 for byte in range(256))
_DROPPED = bytes(range(_UNBIASED_LIMIT, 256))


def random_token(length: int = RANDOM_LENGTH) -> str:
    token = b""
    while len(token) < length:
        token += secrets.token_bytes(length + 4).translate(_TO_ALPHABET, _DROPPED)
    return token[:length].decode("ascii")


def time_part(milliseconds: int) -> str:
    """``milliseconds`` since the epoch as 7 characters that sort as the numbers do."""
    digits = []
    for _ in range(TIME_LENGTH):
        milliseconds, digit = divmod(milliseconds, 62)
        digits.append(_SORTED_ALPHABET[digit])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    return new_ids(prefix, 1)[0]


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids of this millisecond, from one call for random bytes.

    The same mapping onto the alphabet as ``random_token``; one urandom call
    per id (two Python calls deep) cost ~5 µs an id, and the importer makes
    ids by the thousand.
    """
    needed = count * _RANDOM_PART
    chars = b""
    while len(chars) < needed:
        # 248 of 256 bytes are kept: ask for ~4% more than needed, so a second call is rare.
        chars += secrets.token_bytes(needed - len(chars) + needed // 16 + 16).translate(_TO_ALPHABET, _DROPPED)
    text = chars[:needed].decode("ascii")
    prefix = f"{prefix}_{time_part(time.time_ns() // 1_000_000)}"
    return [prefix + text[start : start + _RANDOM_PART] for start in range(0, needed, _RANDOM_PART)]


class IdFactory:
    """A picklable ``default=`` for model id fields, e.g. ``IdFactory("con")``.

    Migrations serialize it by import path and arguments, so one class serves
    every model instead of one module-level function per prefix.
    """

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self):
        return ("contacts_project.ids.IdFactory", (self.prefix,), {})

    def __eq__(self, other):
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self):
        return hash(self.prefix)
