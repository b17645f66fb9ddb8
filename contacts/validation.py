"""The field rules of a contact (API.md §4), in one place for every way in.

The API's ContactSerializer, the admin and the importers all clean input with
``clean_contact``; nothing else decides what a valid phone, email or tag is.
It is plain Python (no DRF field machinery) because the importer runs it on
millions of rows: it costs a fraction of a serializer's per-row overhead.

Errors are collected per field as ``{attr: [(code, message)]}`` and raised
together as ``ContactInvalid``; the API turns them into its error format, the
importer into its error file.
"""

import json
import re
from functools import cache, lru_cache

import orjson
import phonenumbers
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from django_countries.data import COUNTRIES
from phonenumber_field.phonenumber import PhoneNumber

from contacts.constants import (
    CHANNELS,
    EMAIL_MAX_LENGTH,
    LIFECYCLE_STAGE_PATTERN,
    METADATA_KEY_MAX_LENGTH,
    METADATA_MAX_BYTES,
    METADATA_MAX_KEYS,
    NAME_MAX_LENGTH,
    PREFERENCE_STATUSES,
    TAG_MAX_LENGTH,
    TAGS_MAX_COUNT,
)

PHONE_MAX_LENGTH = 64
CONTACT_FIELDS = ("phone", "email", "first_name", "last_name", "country", "lifecycle_stage", "tags", "metadata")
READ_ONLY_FIELDS = ("id", "preferences", "created_at", "updated_at")
NON_FIELD = "non_field_errors"

# phonenumbers compiles its metadata patterns through ``re``'s cache of 512;
# numbers of many countries overflow it, and an import re-compiled patterns
# all the time. Keeping them is what the library offers for bulk use.
phonenumbers.enable_pattern_cache()

_LIFECYCLE_STAGE = re.compile(LIFECYCLE_STAGE_PATTERN)
# Compact JSON, as metadata is measured against METADATA_MAX_BYTES; made once:
# json.dumps with options builds an encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _compiled(lazy: re.Pattern) -> re.Pattern:
    return re.compile(lazy.pattern, lazy.flags)


class _EmailValidator(EmailValidator):
    """Django's email rules, faster: clean_email took 5.5 µs an address, now 1.3 (bench export).

    Django compiles its patterns lazily, and every use went through the lazy
    wrapper; these are the same patterns and flags, compiled at import. A
    domain's verdict depends on the domain alone, and an import repeats a few
    domains a million times: it is remembered.
    """

    user_regex = _compiled(EmailValidator.user_regex)
    domain_regex = _compiled(EmailValidator.domain_regex)
    literal_regex = _compiled(EmailValidator.literal_regex)

    def validate_domain_part(self, domain_part):
        return _valid_email_domain(domain_part)


@lru_cache(maxsize=1 << 12)
def _valid_email_domain(domain_part: str) -> bool:
    return EmailValidator.validate_domain_part(_email_validator, domain_part)


_email_validator = _EmailValidator()


class FieldInvalid(Exception):
    """One field's value breaks a rule."""

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


class ContactInvalid(Exception):
    """Input breaks one or more rules; ``errors`` maps an attr to ``[(code, message), …]``."""

    def __init__(self, errors: dict[str, list[tuple[str, str]]]):
        super().__init__(errors)
        self.errors = errors


def _string(value, *, max_length: int, allow_blank: bool = False) -> str:
    if not isinstance(value, str):
        raise FieldInvalid("Not a valid string.")
    value = value.strip()
    if not value and not allow_blank:
        raise FieldInvalid("This field may not be blank.", "blank")
    if len(value) > max_length:
        raise FieldInvalid(f"Ensure this field has no more than {max_length} characters.", "max_length")
    return value


def clean_phone(value, region: str | None) -> PhoneNumber | None:
    """E.164 or any written international form; a national form needs ``region``."""
    if value is None:
        return None
    text = _string(value, max_length=PHONE_MAX_LENGTH)
    number = _parse_e164(text) if _E164_TEXT.fullmatch(text) else None
    try:
        if number is None:
            number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE and not region:
            raise FieldInvalid(
                "Give the number in international form (+14155552671), or give `country` with a national number."
            ) from None
        raise FieldInvalid("Enter a valid phone number.") from None
    region = _region(number.country_code, number.national_number, number.number_of_leading_zeros)
    if region is None or not _is_valid_for_region(number, region):
        raise FieldInvalid("Enter a valid phone number.")
    if number.extension:
        # E.164 has no extensions and no message can be sent to one.
        raise FieldInvalid("Phone extensions are not supported.")
    phone = PhoneNumber(country_code=number.country_code, national_number=number.national_number)
    phone.italian_leading_zero = number.italian_leading_zero
    phone.number_of_leading_zeros = number.number_of_leading_zeros
    return phone


# "+" and 4 to 20 ASCII digits, the first not 0: E.164 as written, what exports
# hold and most files send.
_E164_TEXT = re.compile(r"\+[1-9][0-9]{3,19}")
_MIN_NSN_LENGTH, _MAX_NSN_LENGTH = 2, 17  # phonenumbers' bounds on a national number
_ALWAYS, _NEVER = re.compile(""), re.compile("(?!)")


def _parse_e164(text: str) -> phonenumbers.PhoneNumber | None:
    """``phonenumbers.parse(text, None)`` for text of ``_E164_TEXT``, or None when the answer needs parse.

    parse spends ~13 µs of its ~14 on what such text does not need: finding
    the number in free text, extensions, letters, other digit sets. What is
    left is its own steps for this input: the country code is the shortest
    1-3 digit prefix it knows, the rest is the national number (its leading
    zeros recorded as it records them). But parse may also strip a national
    prefix or carrier code even after a "+" (+44 020…, +7 8…, +54 9…): where
    the national digits could start with one, parse decides. A test compares
    the two over every region's example numbers and random digits.
    """
    digits = text[1:]
    for size in (1, 2, 3):
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not _MIN_NSN_LENGTH <= len(national) <= _MAX_NSN_LENGTH or _national_prefix(country_code).match(national):
        return None
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    if national[0] == "0":
        # As phonenumbers counts them: an all-zero number keeps its last 0.
        zeros = min(len(national) - len(national.lstrip("0")), len(national) - 1)
        number.italian_leading_zero = True
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


def _is_valid_for_region(number: phonenumbers.PhoneNumber, region: str) -> bool:
    """``phonenumbers.is_valid_number_for_region(number, region)``, asking the likely number types first.

    That function works out the number's type and compares it with UNKNOWN:
    it tries up to ten patterns in turn, the eight rare types (premium rate,
    toll free, shared cost, VoIP, personal, pager, UAN, voicemail) before
    fixed line and mobile, so a mobile number, the common case in a contact
    file, costs ten pattern matches. Validity only asks whether any type
    matches, and mobile (when its pattern is not the fixed line's, as
    phonenumbers checks it) goes first here, each type as ``_number_types``
    compiled it. A test compares the two over every region's example
    numbers, random digits and regions not the number's own.
    """
    country_code = number.country_code
    types = _number_types(country_code, region.upper())
    if types is None or (
        region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY
        and country_code != phonenumbers.country_code_for_valid_region(region)
    ):
        return False
    nsn = phonenumbers.national_significant_number(number)
    length = len(nsn)
    general, kinds = types
    return _matches(nsn, length, general) and any(_matches(nsn, length, kind) for kind in kinds)


_Kind = tuple[frozenset[int], re.Pattern]


def _matches(nsn: str, length: int, kind: _Kind | None) -> bool:
    """``_is_number_matching_desc``: a length the description allows (any, if it lists none), then its pattern."""
    if kind is None:
        return False
    lengths, pattern = kind
    return (not lengths or length in lengths) and pattern.fullmatch(nsn) is not None


@cache
def _number_types(country_code: int, region: str) -> tuple[_Kind | None, tuple[_Kind, ...]] | None:
    """The region's general description and its number types, each as (possible lengths, compiled pattern).

    The types in the order ``_is_valid_for_region`` asks them; a description
    without a pattern matches nothing (None, or left out of the types).
    phonenumbers looks each pattern up by its text in a cache and runs it
    twice (a match, then a full match); compiled once here, it runs once.
    None when phonenumbers has no metadata for the region.
    """
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    types = (
        None if metadata.same_mobile_and_fixed_line_pattern else metadata.mobile,
        metadata.fixed_line,
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
    )
    kinds = [_kind(desc) for desc in types]
    return _kind(metadata.general_desc), tuple(kind for kind in kinds if kind is not None)


def _kind(desc) -> _Kind | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


@cache
def _national_prefix(country_code: int) -> re.Pattern:
    """What parse tries to strip as a national prefix in a number of this country code (never-matching if none)."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return _ALWAYS  # parse would fail its own assertion: let it
    pattern = metadata.national_prefix_for_parsing
    return re.compile(pattern) if pattern else _NEVER


def _region(country_code: int, national_number: int, leading_zeros: int | None) -> str | None:
    """phonenumbers' region of a number (``region_code_for_number``'s answer).

    ``is_valid_number`` is exactly ``is_valid_number_for_region(n, region_code_for_number(n))``;
    splitting it lets validation and country derivation share one lookup.
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if regions is None or len(regions) > 1:
        return _region_among_several(country_code, national_number, leading_zeros)
    # One region for the code: region_code_for_number answers it without
    # looking at the number, so there is nothing to remember either.
    return regions[0]


@lru_cache(maxsize=1 << 16)
def _region_among_several(country_code: int, national_number: int, leading_zeros: int | None) -> str | None:
    """Remembered: for +1 numbers region_code_for_number tries ~25 regions in turn."""
    number = phonenumbers.PhoneNumber(
        country_code=country_code, national_number=national_number, number_of_leading_zeros=leading_zeros
    )
    if leading_zeros:
        number.italian_leading_zero = True
    return phonenumbers.region_code_for_number(number)


def e164(phone) -> str | None:
    """A phone as E.164 text.

    phonenumber_field's PhoneNumber re-validates itself (a region lookup that
    tries ~25 regions for +1 numbers) in ``str()``, ``==`` and even in a truth
    test (``len()`` formats it): test it against None and format it here.
    """
    if phone is None:
        return None
    if isinstance(phone, phonenumbers.PhoneNumber):
        return phonenumbers.format_number(phone, phonenumbers.PhoneNumberFormat.E164)
    return str(phone) or None


def country_from_phone(phone) -> str | None:
    """The phone's ISO country, or None for non-geographic numbers (+800, +882…)."""
    if phone is None:
        return None
    region = _region(phone.country_code, phone.national_number, phone.number_of_leading_zeros)
    return region if region in COUNTRIES else None


def clean_email(value) -> str | None:
    if value is None:
        return None
    text = _string(value, max_length=EMAIL_MAX_LENGTH)
    try:
        _email_validator(text)
    except DjangoValidationError:
        raise FieldInvalid("Enter a valid email address.") from None
    return text.lower()


def clean_name(value) -> str:
    return "" if value is None else _string(value, max_length=NAME_MAX_LENGTH, allow_blank=True)


def clean_country(value) -> str | None:
    if value is None:
        return None
    text = _string(value, max_length=2)
    if text.upper() not in COUNTRIES:
        raise FieldInvalid("Enter an ISO 3166-1 alpha-2 country code, such as US or TR.")
    return text.upper()


def clean_lifecycle_stage(value) -> str:
    if value is None:
        raise FieldInvalid("This field may not be null.", "null")
    text = _string(value, max_length=32)
    if not _LIFECYCLE_STAGE.match(text):
        raise FieldInvalid("Use 1 to 32 of a-z, 0-9, _ and -.")
    return text


def clean_tags(value, attr: str = "tags") -> list[str]:
    """1 to 64 characters each after trimming; duplicates dropped keeping the first; at most 100."""
    if value is None:
        raise FieldInvalid("This field may not be null.", "null")
    if not isinstance(value, list):
        raise FieldInvalid(f'Expected a list of items but got type "{type(value).__name__}".', "not_a_list")
    tags, errors = [], {}
    for index, item in enumerate(value):
        try:
            tags.append(_string(item, max_length=TAG_MAX_LENGTH))
        except FieldInvalid as error:
            errors[f"{attr}.{index}"] = [(error.code, error.message)]
    if errors:
        raise ContactInvalid(errors)
    tags = list(dict.fromkeys(tags))
    if len(tags) > TAGS_MAX_COUNT:
        raise FieldInvalid(f"At most {TAGS_MAX_COUNT} tags are allowed.", "max_length")
    return tags


def metadata_size(metadata: dict) -> int:
    """Bytes of the object as compact UTF-8 JSON.

    orjson's (a tenth of ``json``'s time); ``json``'s for what orjson cannot
    write (integers past 64 bits). The two differ only in how some floats are
    written (``0.00001`` against ``1e-05``), a byte or two against a limit of
    thousands.
    """
    try:
        return len(orjson.dumps(metadata))
    except orjson.JSONEncodeError:
        return len(_COMPACT_JSON.encode(metadata).encode())


def check_metadata_limits(metadata: dict) -> None:
    """The limits on a whole metadata object (after any merge)."""
    if len(metadata) > METADATA_MAX_KEYS:
        raise FieldInvalid(f"At most {METADATA_MAX_KEYS} keys are allowed.", "max_keys")
    if metadata_size(metadata) > METADATA_MAX_BYTES:
        raise FieldInvalid(f"Metadata must serialize to at most {METADATA_MAX_BYTES} bytes.", "too_large")


def clean_metadata(value) -> dict:
    """A JSON object patch: keys of 1 to 40 characters; the stored result (nulls removed) within the limits."""
    if value is None:
        raise FieldInvalid("This field may not be null.", "null")
    if not isinstance(value, dict):
        raise FieldInvalid("Must be a JSON object.")
    message = f"Metadata keys must be 1 to {METADATA_KEY_MAX_LENGTH} characters."
    if "" in value:
        raise FieldInvalid(message, "invalid_key")
    for key in value:
        if len(key) > METADATA_KEY_MAX_LENGTH:
            raise ContactInvalid({f"metadata.{key}": [("invalid_key", message)]})
    check_metadata_limits({key: item for key, item in value.items() if item is not None})
    return value


def clean_preferences(value) -> dict[str, str]:
    """A map of some channels to a status (importers; the API has its own endpoint)."""
    if not isinstance(value, dict):
        raise FieldInvalid("Must be a JSON object of channel statuses.")
    for channel, status in value.items():
        if channel not in CHANNELS:
            raise ContactInvalid({f"preferences.{channel}": [("invalid", "Unknown channel.")]})
        if status not in PREFERENCE_STATUSES:
            raise ContactInvalid(
                {f"preferences.{channel}": [("invalid_choice", f"Must be one of: {', '.join(PREFERENCE_STATUSES)}.")]}
            )
    return value


_CLEANERS = {
    "email": clean_email,
    "first_name": clean_name,
    "last_name": clean_name,
    "country": clean_country,
    "lifecycle_stage": clean_lifecycle_stage,
    "tags": clean_tags,
    "metadata": clean_metadata,
}


def clean_contact(data, *, stored_country: str | None = None, extra_fields: tuple[str, ...] = ()) -> dict:
    """Validate a contact body (a partial update of what is stored, or of nothing).

    Unknown fields are errors; read-only fields are dropped. A phone in
    national form is read in the body's ``country``, else ``stored_country``.
    Returns the cleaned fields present in ``data``; raises ``ContactInvalid``.
    """
    if not isinstance(data, dict):
        raise ContactInvalid(
            {NON_FIELD: [("invalid", f"Invalid data. Expected a dictionary, but got {type(data).__name__}.")]}
        )
    known = (*CONTACT_FIELDS, *READ_ONLY_FIELDS, *extra_fields)
    unknown = [key for key in data if key not in known]
    if unknown:
        raise ContactInvalid({key: [("unknown_field", "Unknown field.")] for key in unknown})
    cleaned, errors = {}, {}
    for field, cleaner in _CLEANERS.items():
        if field in data:
            try:
                cleaned[field] = cleaner(data[field])
            except FieldInvalid as error:
                errors[field] = [(error.code, error.message)]
            except ContactInvalid as error:
                errors.update(error.errors)
    if "phone" in data and "country" not in errors:
        region = cleaned.get("country", stored_country) if "country" in data else stored_country
        try:
            cleaned["phone"] = clean_phone(data["phone"], region)
        except FieldInvalid as error:
            errors["phone"] = [(error.code, error.message)]
    if errors:
        raise ContactInvalid(errors)
    return cleaned
