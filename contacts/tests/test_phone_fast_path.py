"""clean_phone reads E.164 text without phonenumbers.parse: it must give exactly what parse gives."""

import random

import phonenumbers
import pytest

from contacts import validation
from contacts.search import search_columns
from contacts.validation import _E164_TEXT, FieldInvalid, _parse_e164, clean_phone, e164

PHONE_TYPES = [
    value for name, value in vars(phonenumbers.PhoneNumberType).items() if name.isupper() and isinstance(value, int)
]
# National prefixes and carrier codes that parse may strip even after a "+", and Italian leading zeros.
HAND_PICKED = [
    "+14155552671",
    "+442079460958",
    "+4402079460958",
    "+44020794609580",
    "+4418002079460958",
    "+79123456789",
    "+789123456789",
    "+74951234567",
    "+784951234567",
    "+5491123456789",
    "+54911234567890",
    "+541115123456789",
    "+5411123456789",
    "+5215512345678",
    "+525512345678",
    "+552112345678",
    "+55902112345678",
    "+5590211234567890",
    "+390612345678",
    "+39061234567",
    "+3900612345678",
    "+39000000",
    "+3900",
    "+390",
    "+3961234567",
    "+8613812345678",
    "+86013812345678",
    "+8611912345678",
    "+61183112345678",
    "+610412345678",
    "+819012345678",
    "+8100037680312345678",
    "+8200812345678",
    "+2410111234567",
    "+261201234567",
    "+2612012345",
    "+29810011234567",
    "+352150012345678",
    "+37080012345678",
    "+3758012345678",
    "+37880123456",
    "+423100112345678",
    "+5061900123456",
    "+591012212345",
    "+6720123456",
    "+80012345678",
    "+882345678901",
    "+9991234567",
    "+1234",
    "+10000",
    "+441234567890123456789",
    "+999",
    "+123456789012345678901",
    "+4400000000000",
    "+0441234567",
]


def example_texts() -> list[str]:
    numbers = [
        phonenumbers.example_number_for_type(region, number_type)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for number_type in PHONE_TYPES
    ]
    numbers += [phonenumbers.invalid_example_number(region) for region in sorted(phonenumbers.SUPPORTED_REGIONS)]
    numbers += [
        phonenumbers.example_number_for_non_geo_entity(code)
        for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS)
    ]
    texts = set()
    for number in filter(None, numbers):
        national = phonenumbers.national_significant_number(number)
        for prefix in ("", "0", "00", "1", "8", "9", "15", "90"):
            texts.add(f"+{number.country_code}{prefix}{national}")
        texts.add(f"+{number.country_code}{national[:-1]}")
        texts.add(f"+{number.country_code}{national}1")
    return sorted(texts)


def random_texts() -> list[str]:
    """Digits after every country code, weighted to the national prefixes' first digits and to leading zeros."""
    draw = random.Random(20261127)
    texts = []
    for country_code in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE):
        for _ in range(60):
            length = draw.randint(1, 18)
            first = draw.choice("0001189" + "23456789")
            texts.append(f"+{country_code}{first}{''.join(draw.choices('0123456789', k=length - 1))}")
    return texts


def parsed(text: str) -> tuple:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as error:
        return ("error", error.error_type)
    return fields(number)


def fields(number) -> tuple:
    return (
        number.country_code,
        number.national_number,
        number.italian_leading_zero,
        number.number_of_leading_zeros,
        number.extension,
    )


@pytest.mark.parametrize(
    ("texts", "share_taken"),
    [(HAND_PICKED, 0.3), (example_texts(), 0.5), (random_texts(), 0.5)],
    ids=["hand", "examples", "random"],
)
def test_the_fast_path_gives_what_parse_gives_or_leaves_it_to_parse(texts, share_taken):
    taken = 0
    for text in texts:
        if not _E164_TEXT.fullmatch(text):
            continue
        number = _parse_e164(text)
        if number is not None:
            taken += 1
            assert fields(number) == parsed(text), text
    # The shortcut must be the rule, not the exception, for it to be worth having.
    assert taken > share_taken * len(texts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+14155552671", (1, 4155552671, None, None, None)),
        ("+390612345678", (39, 612345678, True, None, None)),
        ("+39000000", (39, 0, True, 5, None)),
        ("+3900612345678", (39, 612345678, True, 2, None)),
    ],
)
def test_the_fast_path_reads_country_code_national_number_and_leading_zeros(text, expected):
    assert fields(_parse_e164(text)) == expected


@pytest.mark.parametrize(
    "text", ["+4402079460958", "+789123456789", "+5491123456789", "+55902112345678", "+441234567890123456789"]
)
def test_what_parse_may_strip_or_refuse_is_left_to_parse(text):
    assert _parse_e164(text) is None


def cleaned(text: str):
    try:
        phone = clean_phone(text, None)
    except FieldInvalid as error:
        return ("invalid", error.code, error.message)
    return (e164(phone), fields(phone))


def test_clean_phone_is_the_same_with_and_without_the_fast_path(monkeypatch):
    texts = [*HAND_PICKED, *example_texts()[::7], *random_texts()[::7]]
    fast = [cleaned(text) for text in texts]

    monkeypatch.setattr(validation, "_parse_e164", lambda text: None)

    assert [cleaned(text) for text in texts] == fast


def region_as_before(country_code: int, national_number: int, leading_zeros: int | None) -> str | None:
    """What _region answered when it always asked region_code_for_number."""
    number = phonenumbers.PhoneNumber(
        country_code=country_code, national_number=national_number, number_of_leading_zeros=leading_zeros
    )
    if leading_zeros:
        number.italian_leading_zero = True
    return phonenumbers.region_code_for_number(number)


def test_the_region_of_a_number_is_what_region_code_for_number_answers():
    keys = {(1, 4155552671, None), (1, 6135550123, None), (7, 7012345678, None), (44, 1481123456, None), (999, 1, None)}
    for text in example_texts():
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            continue
        keys.add((number.country_code, number.national_number, number.number_of_leading_zeros))

    assert {key: validation._region(*key) for key in keys} == {key: region_as_before(*key) for key in keys}
    assert {validation._region(*key) for key in keys} >= {"US", "CA", "KZ", "GG", "IT", "001", None}


def test_validity_is_what_is_valid_number_for_region_answers():
    numbers = []
    for text in [*HAND_PICKED, *example_texts(), *random_texts()]:
        try:
            numbers.append(phonenumbers.parse(text, None))
        except phonenumbers.NumberParseException:
            continue
    regions = [*sorted(phonenumbers.SUPPORTED_REGIONS), "001", "ZZ"]
    answers = {True: 0, False: 0}
    for number in numbers:
        own = phonenumbers.region_code_for_number(number)
        # The number's own region (what clean_phone asks), and one it is not from.
        for region in filter(None, {own, regions[number.national_number % len(regions)]}):
            expected = phonenumbers.is_valid_number_for_region(number, region)
            assert validation._is_valid_for_region(number, region) is expected, (number, region)
            answers[expected] += 1
    # Both answers are well represented, or the comparison proves little.
    assert min(answers.values()) > 1000, answers


def test_the_search_columns_hold_the_e164_digits_and_the_national_number():
    checked = 0
    for text in [*HAND_PICKED, *example_texts(), *random_texts()]:
        try:
            number = clean_phone(text, None)
        except FieldInvalid:
            continue
        columns = search_columns(account_id="acc_1", phone=number, email=None, first_name="", last_name="")
        assert columns["phone_digits"] == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
        assert columns["phone_national"] == phonenumbers.national_significant_number(number)
        checked += 1
    assert checked > 1000
