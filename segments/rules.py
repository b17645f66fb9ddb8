"""The segment rule language (API.md §8): validation, and compilation to one ``Q``.

A pure module: it knows nothing of requests or accounts. ``validate_rules``
checks a rule tree against the grammar and raises ``RuleError`` with a path
into it (``conditions.1.value``); ``compile_rules`` turns a valid tree into a
``Q`` on ``Contact`` that the caller scopes to an account, so a segment is
always one SQL query and never evaluated contact by contact in Python.
``list_references`` names the list ids a tree uses, for the caller to check
against the account (a list id is data the module cannot judge alone).

Semantics worth stating:

* ``neq`` and every ``not_*`` operator are the exact negation of their positive
  form, so they match contacts whose field is absent or null too.
* Name and email comparisons ignore case; ``country`` values are upper-cased;
  ``phone`` compares the stored E.164 text.
* ``exists`` means present, not null and (for text) not empty.
* ``metadata.<key>`` comparisons are type-aware: a number never equals its
  string form; ``gt``…``lte`` compare numbers with numbers and strings with
  strings, and a stored value of another type does not match. The key is
  passed to PostgreSQL as a parameter, never spliced into SQL. Scalar
  equality uses JSONB containment (``metadata @> {"k": v}``).
* ``within_last`` is relative to the database clock (``statement_timestamp()``).
"""

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from operator import and_ as operator_and
from operator import or_ as operator_or

from django.db.models import Exists, F, Func, JSONField, OuterRef, Q, TextField, Value
from django.db.models.functions import Cast, Lower, Now
from django.db.models.lookups import Contains, Exact, GreaterThan, GreaterThanOrEqual, In, LessThan, LessThanOrEqual

from contacts.constants import CHANNELS, METADATA_KEY_MAX_LENGTH, PREFERENCE_STATUSES, TAG_MAX_LENGTH
from contacts.preferences import status_q
from contacts_project.rfc3339 import parse_rfc3339

MAX_ITEMS_PER_GROUP = 50
MAX_DEPTH = 5
MAX_CONDITIONS = 200
MAX_LIST_VALUES = 1000
MAX_STRING_LENGTH = 1000

TEXT_FIELDS = ("first_name", "last_name", "email", "phone", "country", "lifecycle_stage")
CASE_INSENSITIVE_FIELDS = {"first_name", "last_name", "email"}
TEXT_OPERATORS = ("eq", "neq", "in", "not_in", "starts_with", "ends_with", "contains", "exists", "not_exists")
TAG_OPERATORS = ("contains", "not_contains", "contains_any", "contains_all", "exists", "not_exists")
LIST_OPERATORS = ("contains", "not_contains")
DATE_FIELDS = ("created_at", "updated_at")
DATE_OPERATORS = ("gt", "gte", "lt", "lte", "within_last", "not_within_last")
METADATA_OPERATORS = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists")
PREFERENCE_OPERATORS = ("eq", "neq")
NO_VALUE_OPERATORS = {"exists", "not_exists"}

_DURATION = re.compile(r"([1-9][0-9]{0,5})([dhm])")
_DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


@dataclass
class RuleError(Exception):
    """A rule tree is invalid at ``path`` (a tuple of keys and indexes)."""

    path: tuple
    message: str

    @property
    def attr(self) -> str:
        return ".".join(str(part) for part in self.path)


# --- Validation ---------------------------------------------------------------


def operators_for(field: str) -> tuple[str, ...] | None:
    if field in TEXT_FIELDS:
        return TEXT_OPERATORS
    if field == "tags":
        return TAG_OPERATORS
    if field == "lists":
        return LIST_OPERATORS
    if field in DATE_FIELDS:
        return DATE_OPERATORS
    if field.startswith("metadata."):
        return METADATA_OPERATORS
    if field.startswith("preferences."):
        return PREFERENCE_OPERATORS
    return None


def validate_rules(tree) -> None:
    """Raise ``RuleError`` unless ``tree`` is a valid group (API.md §8)."""
    counter = [0]
    _validate_group(tree, (), 1, counter)


def _validate_group(group, path, depth, counter):
    if not isinstance(group, dict):
        raise RuleError(path, "Must be a group: an object with `match` and `conditions`.")
    _reject_unknown_keys(group, {"match", "conditions"}, path)
    if group.get("match") not in ("all", "any"):
        raise RuleError((*path, "match"), 'Must be "all" or "any".')
    conditions = group.get("conditions")
    if not isinstance(conditions, list) or not 1 <= len(conditions) <= MAX_ITEMS_PER_GROUP:
        raise RuleError((*path, "conditions"), f"Must be a list of 1 to {MAX_ITEMS_PER_GROUP} conditions or groups.")
    for index, item in enumerate(conditions):
        item_path = (*path, "conditions", index)
        if isinstance(item, dict) and "match" in item:
            if depth >= MAX_DEPTH:
                raise RuleError(item_path, f"Groups nest at most {MAX_DEPTH} deep.")
            _validate_group(item, item_path, depth + 1, counter)
        else:
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise RuleError(item_path, f"A rule set has at most {MAX_CONDITIONS} conditions.")
            _validate_condition(item, item_path)


def _reject_unknown_keys(item: dict, allowed: set, path):
    for key in item:
        if key not in allowed:
            raise RuleError((*path, key), "Unknown key.")


def _validate_condition(condition, path):
    if not isinstance(condition, dict):
        raise RuleError(path, "Must be a condition (`field`, `operator`, `value`) or a group (`match`, `conditions`).")
    _reject_unknown_keys(condition, {"field", "operator", "value"}, path)
    field = condition.get("field")
    if not isinstance(field, str):
        raise RuleError((*path, "field"), "Must be a field name.")
    operators = operators_for(field)
    if operators is None:
        raise RuleError((*path, "field"), f"Unknown field {field!r}.")
    _validate_field_name(field, (*path, "field"))
    operator = condition.get("operator")
    if operator not in operators:
        raise RuleError((*path, "operator"), f"Must be one of: {', '.join(operators)}.")
    value_path = (*path, "value")
    if operator in NO_VALUE_OPERATORS:
        if condition.get("value") is not None:
            raise RuleError(value_path, f"`{operator}` takes no value.")
        return
    if "value" not in condition:
        raise RuleError(value_path, "This operator needs a value.")
    _validate_value(field, operator, condition["value"], value_path)


def _validate_field_name(field: str, path):
    if field.startswith("metadata."):
        key = field.removeprefix("metadata.")
        if not 1 <= len(key) <= METADATA_KEY_MAX_LENGTH:
            raise RuleError(path, f"A metadata key has 1 to {METADATA_KEY_MAX_LENGTH} characters.")
    elif field.startswith("preferences.") and field.removeprefix("preferences.") not in CHANNELS:
        raise RuleError(path, f"Unknown channel; use one of: {', '.join(CHANNELS)}.")


def _string(value, path, *, max_length=MAX_STRING_LENGTH):
    if not isinstance(value, str):
        raise RuleError(path, "Must be a string.")
    if len(value) > max_length:
        raise RuleError(path, f"Must be at most {max_length} characters.")


def _string_list(value, path, *, max_length=MAX_STRING_LENGTH):
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
        raise RuleError(path, f"Must be a list of 1 to {MAX_LIST_VALUES} strings.")
    for index, item in enumerate(value):
        _string(item, (*path, index), max_length=max_length)


def _validate_value(field, operator, value, path):
    if field in TEXT_FIELDS:
        if operator in ("in", "not_in"):
            _string_list(value, path)
        else:
            _string(value, path)
    elif field == "tags":
        if operator in ("contains_any", "contains_all"):
            _string_list(value, path, max_length=TAG_MAX_LENGTH)
        else:
            _string(value, path, max_length=TAG_MAX_LENGTH)
    elif field == "lists":
        _string(value, path, max_length=64)
    elif field in DATE_FIELDS:
        if operator in ("within_last", "not_within_last"):
            if parse_duration(value) is None:
                raise RuleError(path, "Must be a duration such as 30d, 12h or 45m.")
        elif parse_rfc3339(value) is None:
            raise RuleError(path, "Must be an RFC 3339 timestamp such as 2026-11-27T10:15:00Z.")
    elif field.startswith("metadata."):
        if operator in ("in", "not_in"):
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST_VALUES:
                raise RuleError(path, f"Must be a list of 1 to {MAX_LIST_VALUES} JSON values.")
        elif operator in ("gt", "gte", "lt", "lte"):
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise RuleError(path, "Must be a number or a string.")
        elif operator == "contains" and (value is None or isinstance(value, (dict, list))):
            raise RuleError(path, "Must be a string, number or boolean.")
    elif field.startswith("preferences.") and value not in PREFERENCE_STATUSES:
        raise RuleError(path, f"Must be one of: {', '.join(PREFERENCE_STATUSES)}.")


def parse_duration(value) -> timedelta | None:
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def list_references(tree) -> list[tuple[tuple, str]]:
    """``(path to value, list id)`` of every ``lists`` condition of a valid tree."""
    found = []

    def walk(group, path):
        for index, item in enumerate(group["conditions"]):
            item_path = (*path, "conditions", index)
            if "match" in item:
                walk(item, item_path)
            elif item["field"] == "lists":
                found.append(((*item_path, "value"), item["value"]))

    walk(tree, ())
    return found


# --- Compilation ----------------------------------------------------------------


def compile_rules(tree) -> Q:
    """A ``Q`` on Contact matching the tree; the tree must have passed ``validate_rules``."""
    parts = [_compile_item(item) for item in tree["conditions"]]
    return reduce(operator_and if tree["match"] == "all" else operator_or, parts)


def _compile_item(item) -> Q:
    if "match" in item:
        return compile_rules(item)
    return _compile_condition(item["field"], item["operator"], item.get("value"))


_NEGATIONS = {"neq": "eq", "not_in": "in", "not_contains": "contains", "not_exists": "exists"}


def _compile_condition(field, operator, value) -> Q:
    if operator in _NEGATIONS:
        # The exact complement, so contacts lacking the field match too. Each
        # positive form below is false (never NULL) for a missing field.
        return ~_compile_condition(field, _NEGATIONS[operator], value)
    if field in TEXT_FIELDS:
        return _text(field, operator, value)
    if field == "tags":
        return _tags(operator, value)
    if field == "lists":
        from lists.models import ListMembership

        return Q(Exists(ListMembership.objects.filter(contact=OuterRef("pk"), contact_list_id=value)))
    if field in DATE_FIELDS:
        return _date(field, operator, value)
    if field.startswith("metadata."):
        return _metadata(field.removeprefix("metadata."), operator, value)
    return _preference(field.removeprefix("preferences."), value)


def _text(field, operator, value) -> Q:
    if field == "country":
        value = [item.upper() for item in value] if isinstance(value, list) else (value or "").upper()
    insensitive = "i" if field in CASE_INSENSITIVE_FIELDS else ""
    present = Q(**{f"{field}__isnull": False}) & ~Q(**{field: ""})
    if operator == "exists":
        return present
    if operator == "in":
        if insensitive:
            lowered = [item.lower() for item in value]
            return present & Q(In(Lower(field), lowered))
        return present & Q(**{f"{field}__in": value})
    lookup = {"eq": "exact", "starts_with": "startswith", "ends_with": "endswith", "contains": "contains"}[operator]
    return present & Q(**{f"{field}__{insensitive}{lookup}": value})


def _tags(operator, value) -> Q:
    if operator == "contains":
        return Q(tags__contains=[value])
    if operator == "contains_all":
        return Q(tags__contains=value)
    if operator == "contains_any":
        return Q(tags__overlap=value)
    return ~Q(tags=[])  # exists: has any tag


def _date(field, operator, value) -> Q:
    if operator == "within_last":
        return Q(**{f"{field}__gte": Now() - Value(parse_duration(value))})
    if operator == "not_within_last":
        return Q(**{f"{field}__lt": Now() - Value(parse_duration(value))})
    return Q(**{f"{field}__{operator}": parse_rfc3339(value)})


class JsonbTypeof(Func):
    function = "jsonb_typeof"
    output_field = TextField()


class MetadataValue(Func):
    """``metadata -> 'key'`` (or ``->>`` with ``as_text``), the key always a text parameter.

    Django's KeyTransform reads a key such as ``"7"`` as an array index; a
    metadata key is an object key whatever it looks like.
    """

    template = "(%(expressions)s)"

    def __init__(self, key: str, *, as_text: bool = False):
        self.arg_joiner = " ->> " if as_text else " -> "
        super().__init__(
            F("metadata"), Cast(Value(key), TextField()), output_field=TextField() if as_text else JSONField()
        )


def _metadata(key, operator, value) -> Q:
    stored = MetadataValue(key)
    stored_type = JsonbTypeof(stored)
    # Every form but containment is guarded by ``metadata ? key``: with the key
    # missing it is false, never NULL, so its negation stays exact.
    has_key = Q(metadata__has_key=key)
    if operator == "exists":
        return has_key & ~Q(Exact(stored_type, "null"))
    if operator == "eq":
        if isinstance(value, (dict, list)):
            # Containment is not equality for containers ({"a": [1, 2]} @> {"a": [1]}).
            return has_key & Q(Exact(stored, Value(value, output_field=JSONField())))
        # For a scalar, containment is type-aware equality (1 ≠ "1", 1 = 1.0)
        # and the GIN index on metadata answers it.
        return Q(metadata__contains={key: value})
    if operator == "in":
        return reduce(operator_or, (_metadata(key, "eq", item) for item in value))
    if operator == "contains":
        in_array = Q(Exact(stored_type, "array")) & Q(metadata__contains={key: [value]})
        if not isinstance(value, str):
            return has_key & in_array
        in_string = Q(Exact(stored_type, "string")) & Q(Contains(MetadataValue(key, as_text=True), value))
        return has_key & (in_array | in_string)
    # gt, gte, lt, lte: only a stored value of the same JSON type compares.
    comparison = {"gt": GreaterThan, "gte": GreaterThanOrEqual, "lt": LessThan, "lte": LessThanOrEqual}[operator]
    json_type = "string" if isinstance(value, str) else "number"
    return has_key & Q(Exact(stored_type, json_type)) & Q(comparison(stored, Value(value, output_field=JSONField())))


def _preference(channel, value) -> Q:
    # The same expression as the opt-out listing and its partial indexes.
    return status_q(channel, value)
