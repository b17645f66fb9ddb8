"""clean_email runs Django's EmailValidator with its patterns compiled at import and domain verdicts
remembered: it must accept and refuse exactly what Django's validator does."""

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from contacts.validation import FieldInvalid, clean_email

ADDRESSES = [
    "ada@example.com",
    "Ada.Lovelace@Example.COM",
    "a+b@sub.example.co.uk",
    "o'brien@example.ie",
    "x@localhost",
    "x@LOCALHOST",
    "x@[127.0.0.1]",
    "x@[::1]",
    "x@[IPv6:::1]",
    "x@[300.0.0.1]",
    "x@[1.2.3]",
    '"quoted local"@example.com',
    '"quo\\"ted"@example.com',
    '"unterminated@example.com',
    "zoë@example.com",
    "user@bücher.de",
    "user@xn--bcher-kva.de",
    "user@例え.テスト",
    "user@example",
    "user@example.",
    "user@.example.com",
    "user@example..com",
    "user@-example.com",
    "user@example-.com",
    "user@exa_mple.com",
    "user@123.com",
    "user@example.c",
    "user@example.123",
    "user@" + "a" * 63 + ".com",
    "user@" + "a" * 64 + ".com",
    "a" * 64 + "@example.com",
    "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "com",
    "@example.com",
    "user@",
    "user",
    "user@@example.com",
    "us er@example.com",
    "user@exam ple.com",
    "user.@example.com",
    ".user@example.com",
    "us..er@example.com",
    "user@example.com\n",
    "\nuser@example.com",
    "user@example.com.",
]


def django_says(text: str):
    try:
        EmailValidator()(text)
    except ValidationError:
        return "invalid"
    return text.lower()


def ours(text: str):
    try:
        return clean_email(text)
    except FieldInvalid as error:
        return "invalid" if error.message == "Enter a valid email address." else error.message


@pytest.mark.parametrize("repeat", [1, 2])  # the second time, domain verdicts come from the cache
def test_clean_email_accepts_and_refuses_what_djangos_validator_does(repeat):
    for text in ADDRESSES:
        assert ours(text) == django_says(text.strip()), text
