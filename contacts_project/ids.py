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
