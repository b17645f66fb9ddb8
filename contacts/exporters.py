"""Contact export (API.md §9): one ``COPY (SELECT …) TO STDOUT`` streamed to a writer.

Memory stays flat whatever the account's size: PostgreSQL formats every row
(CSV quoting, JSON escaping, timestamps) and sends it as one CopyData message,
which is handed to ``write`` and dropped; nothing is fetched into Python
objects and no result set is held. One statement also means one snapshot: a
contact edited during a long export appears as it was when the export began.

The columns are the ones ``contacts/importers.py`` reads, in this order, so an
export imported into an empty account reproduces every contact (ids aside):

* ``phone``, ``email``, ``country`` (and empty names) are empty cells when unset;
* ``tags`` is always a JSON array, so a tag holding ``|`` or ``,`` survives;
* ``metadata`` is the stored object as compact JSON;
* ``preferences`` maps all six channels to their status (``unset`` when the
  stored object lacks the channel);
* timestamps are RFC 3339 in UTC with microseconds (``2026-11-27T10:15:00.123456Z``).

JSONL carries the same keys, one object per line, with ``null`` for an unset
phone, email or country. Both formats list contacts newest first
(``created_at`` desc, ``id`` desc), like the API.
"""

from collections.abc import Callable, Iterator

from django.db import connection
from django.db.models import QuerySet

from accounts.models import Account
from contacts.constants import CHANNELS, CONTACT_REPRESENTATION, UNSET
from contacts.models import Contact
from lists.models import ContactList
from segments.models import Segment
from segments.services import segment_contacts

EXPORT_COLUMNS = CONTACT_REPRESENTATION
FORMATS = ("csv", "jsonl")
# Rows between two progress callbacks: a Python call per row would cost more
# than the row itself.
REPORT_EVERY = 1000

# jsonb's text form puts a space after every ":" and ",". This removes every
# run of spaces outside string literals: the first branch consumes a whole
# string (escapes included) and puts it back as it was; the second matches
# only the spaces between tokens, since the scan never stops inside a string.
COMPACT_JSON_PATTERN = r'("(?:[^"\\]|\\.)*")| +'


def _compact_json(expression: str) -> str:
    return f"regexp_replace({expression}, %s, '\\1', 'g')"


def _timestamp(column: str) -> str:
    return f"""to_char(c.{column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def _json_object(pairs: list[tuple[str, str]]) -> str:
    """SQL concatenating ``{"key":<json text>,…}`` from constant keys and JSON-text expressions."""
    members = " || ',' || ".join(f"""'"{key}":' || {expression}""" for key, expression in pairs)
    return f"'{{' || {members} || '}}'"


# Every channel, the stored status or "unset"; always the same key order.
_PREFERENCES = _json_object(
    [(channel, f"to_json(COALESCE(c.preferences ->> '{channel}', '{UNSET}'))::text") for channel in CHANNELS]
)
_METADATA = _compact_json("c.metadata::text")
_TAGS = "array_to_json(c.tags)::text"

# NULLIF: an empty string would be written as a quoted "" cell; both read back
# as empty, and a plain empty cell is what an unset value looks like.
_CSV_SELECT = ", ".join(
    [
        "c.id",
        "NULLIF(c.phone, '')",
        "NULLIF(c.email, '')",
        "NULLIF(c.first_name, '')",
        "NULLIF(c.last_name, '')",
        "NULLIF(c.country, '')",
        "c.lifecycle_stage",
        _TAGS,
        _METADATA,
        _PREFERENCES,
        _timestamp("created_at"),
        _timestamp("updated_at"),
    ]
)


def _nullable_string(column: str) -> str:
    return f"COALESCE(to_json(NULLIF(c.{column}, ''))::text, 'null')"


_JSONL_SELECT = _json_object(
    [
        ("id", "to_json(c.id)::text"),
        ("phone", _nullable_string("phone")),
        ("email", _nullable_string("email")),
        ("first_name", "to_json(c.first_name)::text"),
        ("last_name", "to_json(c.last_name)::text"),
        ("country", _nullable_string("country")),
        ("lifecycle_stage", "to_json(c.lifecycle_stage)::text"),
        ("tags", _TAGS),
        ("metadata", _METADATA),
        ("preferences", _PREFERENCES),
        ("created_at", f"""'"' || {_timestamp("created_at")} || '"'"""),
        ("updated_at", f"""'"' || {_timestamp("updated_at")} || '"'"""),
    ]
)

_SELECTS = {"csv": _CSV_SELECT, "jsonl": _JSONL_SELECT}
# JSONL is one text column written in CSV format with a quote and a delimiter
# that JSON text never contains (it escapes every control character), so
# PostgreSQL writes each line exactly as built: no quoting, no escaping. The
# text format would double every backslash of the JSON escapes.
_COPY_OPTIONS = {"csv": "FORMAT csv", "jsonl": "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"}


def contacts_for_export(
    *, account: Account, segment: Segment | None = None, contact_list: ContactList | None = None
) -> QuerySet:
    """The account's contacts, narrowed to a segment's current members and/or a list's members.

    The segment and list must already belong to ``account`` (the caller
    resolves ids within the account); the queryset is scoped again anyway.
    """
    if segment is not None:
        contacts = segment_contacts(account=account, rules=segment.rules)
    else:
        contacts = Contact.objects.for_account(account)
    if contact_list is not None:
        # One membership per (list, contact), so the join never repeats a contact.
        contacts = contacts.filter(memberships__contact_list=contact_list, memberships__account=account)
    return contacts


def export_statement(*, contacts: QuerySet, fmt: str) -> tuple[str, tuple]:
    """The COPY statement (and its parameters) writing ``contacts`` in ``fmt``."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}.")
    # The queryset only filters: it becomes a derived table of the raw
    # columns, and the outer SELECT formats them. The planner flattens the
    # subquery, so the listing index still serves the order.
    inner_sql, inner_params = contacts.order_by().values(*EXPORT_COLUMNS).query.sql_with_params()
    statement = (
        f"COPY (SELECT {_SELECTS[fmt]} FROM ({inner_sql}) AS c ORDER BY c.created_at DESC, c.id DESC) "
        f"TO STDOUT WITH ({_COPY_OPTIONS[fmt]})"
    )
    # The pattern's placeholder is in the select list, before the queryset's.
    return statement, (COMPACT_JSON_PATTERN, *inner_params)


def export_rows(*, contacts: QuerySet, fmt: str) -> Iterator[bytes]:
    """``contacts`` as UTF-8 CSV lines (a header first) or JSONL lines, one ``bytes`` per row, streamed."""
    statement, params = export_statement(contacts=contacts, fmt=fmt)
    if fmt == "csv":
        yield (",".join(EXPORT_COLUMNS) + "\n").encode()
    # The psycopg cursor itself (``cursor.cursor``): Django's debug wrapper of
    # copy() takes no parameters. A COPY's parameters are merged client-side.
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        # Copy-out sends exactly one message per row.
        yield from copy


def export_contacts(
    *, contacts: QuerySet, fmt: str, write: Callable[[bytes], object], on_rows: Callable[[int], None] | None = None
) -> int:
    """Stream ``contacts`` to ``write`` as UTF-8 CSV (with a header) or JSONL; return the row count.

    ``write`` receives each row's bytes as PostgreSQL sends them (one row per
    call); ``on_rows(n)`` is called every ``REPORT_EVERY`` rows and at the end.
    """
    lines = export_rows(contacts=contacts, fmt=fmt)
    if fmt == "csv":
        write(next(lines))  # the header is not a row
    rows = 0
    for line in lines:
        write(line)
        rows += 1
        if on_rows is not None and rows % REPORT_EVERY == 0:
            on_rows(REPORT_EVERY)
    if on_rows is not None and rows % REPORT_EVERY:
        on_rows(rows % REPORT_EVERY)
    return rows
