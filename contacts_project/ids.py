"""Public identifiers: a type prefix and 16 random base62 characters (~95 bits)."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
RANDOM_LENGTH = 16


def random_token(length: int = RANDOM_LENGTH) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


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
