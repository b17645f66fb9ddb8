"""Public identifiers: a type prefix and 16 random base62 characters (~95 bits)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
RANDOM_LENGTH = 16


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


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_token()}"


def new_ids(prefix: str, count: int) -> list[str]:
    """``count`` ids as ``new_id`` makes them, from one call for random bytes.

    The same mapping onto the alphabet as ``random_token``; one urandom call
    per id (two Python calls deep) cost ~5 µs an id, and the importer makes
    ids by the thousand.
    """
    needed = count * RANDOM_LENGTH
    chars = b""
    while len(chars) < needed:
        # 248 of 256 bytes are kept: ask for ~4% more than needed, so a second call is rare.
        chars += secrets.token_bytes(needed - len(chars) + needed // 16 + 16).translate(_TO_ALPHABET, _DROPPED)
    text = chars[:needed].decode("ascii")
    prefix = f"{prefix}_"
    return [prefix + text[start : start + RANDOM_LENGTH] for start in range(0, needed, RANDOM_LENGTH)]


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
