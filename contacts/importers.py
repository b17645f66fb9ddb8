"""Bulk import of contacts from CSV or JSONL (API.md §9).

The pipeline, built for millions of rows on a small machine:

1. The reading process cuts the file into batches of whole records, as text
   (``RecordFile``: a CSV record may span lines, so the csv module finds where
   records end). With ``--workers`` above 1 (the default is one per core),
   each batch goes to one of that many processes, which parses, validates and
   writes it on its own connection (contacts/import_writers.py keeps the
   file's order across them); with one worker the reading process does it all.
2. Each raw row goes through ``contacts.validation.clean_contact``, the very
   rules the API applies, so a row the API would refuse is refused here with
   the same reason; what the write needs of the row's own values (E.164
   phone, derived country, search columns, metadata as JSON text) is worked
   out once, here.
3. Each batch is one top-level transaction, committed on its own: a kill loses
   at most the batches in flight, and a re-run converges because every row is
   an upsert. A batch locks the account's contacts it names (by id, phone or
   email) with one ``SELECT … FOR UPDATE``, then matches each row in file
   order: by ``id``, else by phone, else by email, else it is a new contact.
   Matching in Python against the locked rows (rather than ``INSERT … ON
   CONFLICT``, which can honour only one unique constraint) keeps that order
   exact and lets a later row of the file update a contact an earlier row
   created.
4. Changed contacts are ``COPY``-ed into a temporary table and applied with
   one ``UPDATE … FROM`` (identifiers passed between stored contacts are
   released first: unique indexes are checked row by row); new contacts are
   written with ``COPY`` after them, so they may take an identifier a stored
   contact gave up; preference events go in with ``COPY`` too. The COPY is
   text made here, a batch at a time (``_copy_text``): tags, metadata,
   preferences and event data go as array literals and JSON text, which
   PostgreSQL parses, not through psycopg's Python-level dumpers. A unique
   violation from a concurrent writer rolls the batch back and the batch is
   matched again.

Where the time goes is in docs/PERFORMANCE-NOTES.md ("The import"): per
row, PostgreSQL's index upkeep costs more CPU than all the Python, so one
writing connection could never use both cores; each worker writing its own
batches does.

Semantics: an empty CSV cell (or a missing JSONL key) leaves the stored value
as it is; ``metadata`` merges into the stored object (a ``null`` value removes
the key); ``tags`` replaces the set; ``preferences`` sets the channels given.
New contacts whose phone or email is on the account's suppression list start
opted out on those channels, whatever the file says.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

import orjson
import psycopg
from django.db import IntegrityError, OperationalError, connection, transaction
from rest_framework.exceptions import ParseError, ValidationError

from contacts.constants import CHANNELS, DEFAULT_LIFECYCLE_STAGE, UNSET
from contacts.preferences import OPTED_OUT, statuses
from contacts.search import search_columns
from contacts.suppression import identifier_hashes
from contacts.validation import (
    CONTACT_FIELDS,
    NON_FIELD,
    ContactInvalid,
    FieldInvalid,
    check_metadata_limits,
    clean_contact,
    clean_preferences,
    country_from_phone,
    e164,
)
from contacts_project.api.parsers import check_json_document, is_plain_json_text, strict_json_loads
from contacts_project.ids import new_ids

COLUMNS = ("id", *CONTACT_FIELDS, "preferences", "created_at", "updated_at")
IGNORED_COLUMNS = ("created_at", "updated_at")
METADATA_PREFIX = "metadata."
MAX_JSON_DEPTH = 64
IMPORT_REASON = "import"
SUPPRESSION_REASON = "suppression_list"


class _Overtaken(Exception):
    """An earlier batch was rolled back after this one took its locks: this one must match again."""


def _is_deadlock(error: OperationalError) -> bool:
    return isinstance(error.__cause__, psycopg.errors.DeadlockDetected)


class ImportFileError(Exception):
    """The file as a whole cannot be read (unknown columns, not UTF-8): nothing more is imported."""


# --- Reading ---------------------------------------------------------------------


class RecordFile:
    """An import file cut into chunks of whole records, as text, for a process to parse on its own.

    A CSV record may span lines (a quoted cell with a newline): the csv module
    reads the file here only to find where records end, and each chunk is the
    exact text of its records, which ``records()`` parses again wherever the
    chunk is validated. Sending text costs the reading process a fraction of
    sending parsed records.
    """

    def __init__(self, stream, fmt: str):
        self.fmt = fmt
        self.fieldnames = None
        self._lines = _KeptLines(stream)
        if fmt == "csv":
            self._reader = csv.reader(self._lines)
            self.fieldnames = next(self._reader, [])
            unknown = [
                name
                for name in self.fieldnames
                if name not in COLUMNS and not (name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX))
            ]
            if unknown:
                raise ImportFileError(f"Unknown column(s): {', '.join(unknown)}. Columns are: {', '.join(COLUMNS)}.")
            self._lines.take()

    def chunks(self, size: int) -> Iterator[tuple[int, str]]:
        """``(number of the chunk's first record, text)`` for each ``size`` records; row 1 is the first data row."""
        number, count = 1, 0
        if self.fmt == "csv":
            for record in self._reader:
                count += bool(record)  # the csv module skips a blank line: it is no row
                if count == size:
                    yield number, self._lines.take()
                    number, count = number + count, 0
        else:
            for _ in self._lines:
                count += 1
                if count == size:
                    yield number, self._lines.take()
                    number, count = number + count, 0
        if count or self._lines.pending():
            yield number, self._lines.take()

    def records(self, number: int, text: str) -> Iterator[tuple[int, object]]:
        """A chunk's ``(row number, raw record)`` pairs: a dict of cells, or a JSONL line."""
        if self.fmt == "csv":
            # What csv.DictReader gives, without its Python-level step per row:
            # blank lines are no rows, cells past the header go under None; a
            # short row lacks the keys DictReader would map to None.
            names = self.fieldnames
            width = len(names)
            for row_number, cells in enumerate(filter(None, csv.reader(io.StringIO(text, newline=""))), number):
                record = dict(zip(names, cells, strict=False))
                if len(cells) > width:
                    record[None] = cells[width:]
                yield row_number, record
        else:
            # JSONL rows are numbered by line, blank lines included.
            for line_number, line in enumerate(text.splitlines(keepends=True), number):
                if line.strip():
                    yield line_number, line


class _KeptLines:
    """The stream's lines, kept until taken, so the text of the records read so far can be handed on."""

    def __init__(self, stream):
        self._stream = stream
        self._kept = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self._stream.readline()
        if not line:
            raise StopIteration
        self._kept.append(line)
        return line

    def take(self) -> str:
        text, self._kept = "".join(self._kept), []
        return text

    def pending(self) -> bool:
        return any(self._kept)


def read_records(stream, fmt: str, chunk_size: int = 1000) -> Iterator[tuple[int, object]]:
    """``(row number, raw record)`` for each data row; row 1 is the first row after a CSV header."""
    source = RecordFile(stream, fmt)
    for number, text in source.chunks(chunk_size):
        yield from source.records(number, text)


def _json_cell(text: str, column: str):
    try:
        return strict_json_loads(text)
    except (ValueError, RecursionError):
        raise ContactInvalid({column: [("invalid", "Not valid JSON.")]}) from None


def _fields_from_csv(record: dict) -> dict:
    """CSV cells to field values: empty cells are absent, JSON columns decoded, metadata.<key> folded in."""
    fields, extra_metadata = {}, {}
    for column, text in record.items():
        if column is None:
            raise ContactInvalid({NON_FIELD: [("invalid", "More cells than columns.")]})
        if text is None or text == "" or column in IGNORED_COLUMNS:
            continue
        if column == "tags":
            fields["tags"] = _json_cell(text, "tags") if text.lstrip().startswith("[") else text.split("|")
        elif column in ("metadata", "preferences"):
            fields[column] = _json_cell(text, column)
        elif column.startswith(METADATA_PREFIX):
            # A cell is read as JSON when it is JSON ("12" → 12, "true" → true), else as text.
            try:
                extra_metadata[column.removeprefix(METADATA_PREFIX)] = strict_json_loads(text)
            except ValueError:
                extra_metadata[column.removeprefix(METADATA_PREFIX)] = text
        else:
            fields[column] = text
    if extra_metadata:
        if "metadata" in fields and not isinstance(fields["metadata"], dict):
            raise ContactInvalid({"metadata": [("invalid", "Must be a JSON object.")]})
        fields["metadata"] = {**fields.get("metadata", {}), **extra_metadata}
    return fields


def _fields_from_jsonl(line: str) -> dict:
    try:
        record = strict_json_loads(line)
    except (ValueError, RecursionError):
        raise ContactInvalid({NON_FIELD: [("invalid", "Not a valid JSON line.")]}) from None
    if not isinstance(record, dict):
        raise ContactInvalid({NON_FIELD: [("invalid", "Each line must be a JSON object.")]})
    fields = {key: value for key, value in record.items() if key not in IGNORED_COLUMNS}
    extra = {
        key.removeprefix(METADATA_PREFIX): fields.pop(key) for key in list(fields) if key.startswith(METADATA_PREFIX)
    }
    if extra:
        fields["metadata"] = {**(fields.get("metadata") or {}), **extra}
    return fields


# --- Validating (in worker processes) ------------------------------------------------


class Row:
    """One data row, validated: ``fields`` are clean contact fields, or ``errors`` say why not.

    ``phone`` (E.164 text), ``derived_country`` and ``search`` (the search
    columns, as ``(search_vector, phone_digits, phone_national)``) are worked
    out for the row's own values; the writer reuses them whenever the contact
    ends up with exactly those. Metadata with no null (no key to remove) comes
    as ``metadata_text``, JSON, instead of in ``fields``: a new contact stores
    it as it is, and it is decoded only when it has to be merged.
    """

    __slots__ = (
        "derived_country",
        "errors",
        "fields",
        "given_id",
        "metadata_text",
        "number",
        "phone",
        "preferences",
        "search",
    )

    def __init__(self, number: int):
        self.number = number
        self.given_id = None
        self.fields = {}
        self.preferences = {}
        self.errors = []
        self.phone = None
        self.derived_country = None
        self.search = (None, None, None)
        self.metadata_text = None

    @property
    def basis(self) -> tuple:
        """The fields ``search`` was worked out from."""
        fields = self.fields
        return (self.phone, fields.get("email"), fields.get("first_name", ""), fields.get("last_name", ""))


def clean_row(number: int, raw, fmt: str, account_id: str) -> Row:
    row = Row(number)
    try:
        if fmt == "csv":
            fields = _fields_from_csv(raw)  # refuses a record with cells past the header: the rest are text
            text = "\n".join(raw.values())
        else:
            fields, text = _fields_from_jsonl(raw), raw
        if not is_plain_json_text(text, max_depth=MAX_JSON_DEPTH):
            _check_document(fields)
        given_id = fields.pop("id", None)
        if given_id is not None and not isinstance(given_id, str):
            raise ContactInvalid({"id": [("invalid", "Not a valid string.")]})
        preferences = fields.pop("preferences", None)
        row.fields = clean_contact(fields)
        if preferences is not None:
            try:
                row.preferences = clean_preferences(preferences)
            except FieldInvalid as error:
                raise ContactInvalid({"preferences": [(error.code, error.message)]}) from None
        row.given_id = given_id or None
        _precompute(row, account_id)
    except ContactInvalid as error:
        row.errors = [
            (None if attr == NON_FIELD else attr, message)
            for attr, problems in error.errors.items()
            for _, message in problems
        ]
        row.fields = {}
    return row


def _check_document(fields: dict) -> None:
    try:
        check_json_document(fields, max_depth=MAX_JSON_DEPTH)
    except ValidationError as error:
        attr, messages = next(iter(error.detail.items()))
        raise ContactInvalid({attr: [("invalid", str(messages[0]))]}) from None
    except ParseError as error:
        raise ContactInvalid({NON_FIELD: [("invalid", str(error.detail))]}) from None


def _precompute(row: Row, account_id: str) -> None:
    fields = row.fields
    phone = fields.get("phone")
    row.phone = e164(phone)
    row.derived_country = country_from_phone(phone)
    if "phone" in fields:
        # The writer needs only the text, not a PhoneNumber object.
        fields["phone"] = row.phone
    columns = search_columns(
        account_id=account_id,
        phone=phone,
        email=fields.get("email"),
        first_name=fields.get("first_name", ""),
        last_name=fields.get("last_name", ""),
    )
    row.search = (columns["search_vector"], columns["phone_digits"], columns["phone_national"])
    metadata = fields.get("metadata")
    if metadata is not None and None not in metadata.values():
        # What a contact without metadata stores, and cheaper to carry and
        # compare as text than as a nested object.
        row.metadata_text = _json_text(fields.pop("metadata"))


def _chunks(records: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def validated_rows(records: Iterable, fmt: str, *, account_id: str) -> Iterator[Row]:
    """Validated rows for the account, in file order."""
    for number, raw in records:
        yield clean_row(number, raw, fmt, account_id)


# --- Writing ---------------------------------------------------------------------


@dataclass
class Summary:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[tuple[int, str | None, str]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.skipped

    def skip(self, row: Row, errors) -> None:
        self.skipped += 1
        self.errors.extend((row.number, attr, message) for attr, message in errors)

    def add(self, other: "Summary") -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.errors.extend(other.errors)


@dataclass
class _Target:
    """A contact as the batch sees it: stored (``original``) or created by an earlier row."""

    id: str
    values: dict
    original: dict | None  # None when created in this batch
    events: list[tuple[str, str, str, str]] = field(default_factory=list)  # channel, old, new, reason
    row: Row | None = None  # the last row applied, whose precomputed columns may fit

    def identity(self) -> tuple:
        values = self.values
        return (values["phone"], values["email"], values["first_name"], values["last_name"])

    def search_columns(self, account_id: str) -> tuple:
        """``(search_vector, phone_digits, phone_national)`` of the contact as it now is."""
        if self.row is not None and self.row.basis == self.identity():
            return self.row.search
        values = self.values
        columns = search_columns(
            account_id=account_id,
            phone=values["phone"],
            email=values["email"],
            first_name=values["first_name"],
            last_name=values["last_name"],
        )
        return (columns["search_vector"], columns["phone_digits"], columns["phone_national"])

    def identifier_hashes(self) -> list[str]:
        # Worked out here, not in the worker: most accounts' suppression lists
        # are empty, and an HMAC per row cost ~15 µs of a worker's ~145.
        return identifier_hashes(phone=self.values["phone"], email=self.values["email"])


# The account is compared with ``(SELECT …)``, a value the planner does not
# look up in the column's statistics, rather than with a constant. An account
# the last ANALYZE did not see (a new one, which an import fills) is estimated
# at one row: the lookup was then planned as a walk of every contact of the
# account, filtered by the id, phone and email lists, and each batch walked
# all the batches before it until autovacuum's ANALYZE came, which in a big
# table may be never during the import (a batch walking 1M contacts: 839 ms,
# against 39 ms probing). Estimated as an average account, the lookup probes
# the unique indexes with the lists.
_THE_ACCOUNT = "(SELECT %(account)s::text)"
_SELECT_TARGETS = f"""
SELECT id, phone, email, first_name, last_name, country, lifecycle_stage, tags, metadata, preferences
  FROM contacts_contact
 WHERE account_id = {_THE_ACCOUNT}
   AND (id = ANY(%(ids)s::text[]) OR phone = ANY(%(phones)s::text[]) OR email = ANY(%(emails)s::text[]))
"""
_INSERT_COLUMNS = (
    "id, account_id, phone, email, first_name, last_name, country, lifecycle_stage, tags, metadata, preferences, "
    "search_vector, phone_digits, phone_national"
)
_UPDATE_TABLE = "import_contact_updates"
_CREATE_UPDATE_TABLE = f"""
CREATE TEMP TABLE IF NOT EXISTS {_UPDATE_TABLE} (
    id text PRIMARY KEY, phone text, email text, first_name text, last_name text, country text,
    lifecycle_stage text, tags text[], metadata jsonb, preferences jsonb,
    search_vector tsvector, phone_digits text, phone_national text
) ON COMMIT DELETE ROWS
"""
_APPLY_UPDATES = f"""
UPDATE contacts_contact AS c
   SET phone = u.phone, email = u.email, first_name = u.first_name, last_name = u.last_name,
       country = u.country, lifecycle_stage = u.lifecycle_stage, tags = u.tags, metadata = u.metadata,
       preferences = u.preferences, search_vector = u.search_vector, phone_digits = u.phone_digits,
       phone_national = u.phone_national, updated_at = statement_timestamp()
  FROM {_UPDATE_TABLE} AS u
 WHERE c.id = u.id AND c.account_id = {_THE_ACCOUNT}
"""


_RELEASE_IDENTIFIERS = f"""
UPDATE contacts_contact AS c
   SET phone = CASE WHEN c.phone IS DISTINCT FROM u.phone THEN NULL ELSE c.phone END,
       email = CASE WHEN c.email IS DISTINCT FROM u.email THEN NULL ELSE c.email END
  FROM {_UPDATE_TABLE} AS u
 WHERE c.id = u.id AND c.account_id = {_THE_ACCOUNT}
   AND (c.phone IS DISTINCT FROM u.phone OR c.email IS DISTINCT FROM u.email)
"""


# After an import that created this many contacts, the account's share of
# the table is no longer what the statistics say (a new account: one row).
# Autovacuum's ANALYZE comes only after 10% of the table has changed, and
# until then the API's queries of the account are planned for a handful of
# contacts: a search of an account that had just imported 200,000 walked
# them all (489 ms) instead of asking the search index (0.4 ms).
ANALYZE_AFTER_CREATED = 10_000


def refresh_account_statistics(summary: "Summary") -> None:
    """Re-read the statistics of ``account_id`` when the import created many contacts.

    Only that column: ANALYZE of the whole table samples 300,000 rows for the
    phone columns' statistics (migration 0007) and took 25 s on the
    benchmark's ~3M contacts; the account column took 1.7 to 4.7 s.
    """
    if summary.created < ANALYZE_AFTER_CREATED:
        return
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact (account_id)")


def _identity(values: dict) -> tuple:
    return values["phone"], values["email"]


class ContactImporter:
    """Upserts validated rows into one account, batch by batch (see the module docstring)."""

    MAX_BATCH_ATTEMPTS = 3

    def __init__(self, account, *, dry_run: bool = False, batch_size: int = 5000):
        self.account = account
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.summary = Summary()

    def run(self, rows: Iterable[Row], progress=None) -> Summary:
        self.prepare_connection()
        for batch in _chunks(rows, self.batch_size):
            self.summary.add(self.import_batch(batch))
            if progress is not None:
                progress(len(batch))
        return self.summary

    @staticmethod
    def prepare_connection() -> None:
        with connection.cursor() as cursor:
            # Bulk work may take longer than an API request is allowed to.
            cursor.execute("SET statement_timeout = 0")

    def import_batch(self, batch: list[Row], turn=None) -> Summary:
        """Match and write one batch in a transaction of its own; the batch's counts and errors.

        ``turn`` (``contacts.import_writers.Turn``) is given when other
        processes write the file's other batches at the same time: it says
        when this batch may lock and when it may commit.
        """
        done = Summary()
        valid = []
        for row in batch:
            if row.errors:
                done.skip(row, row.errors)
            else:
                valid.append(row)
        conflicts = 0
        while True:
            if turn is not None:
                turn.wait_to_lock()
            try:
                with transaction.atomic():
                    with connection.cursor() as cursor:
                        # A batch is re-done by re-running the import, so it need
                        # not wait for its WAL to reach the disk: a server crash
                        # (not a kill of this command) may lose the last ~0.6 s.
                        cursor.execute("SET LOCAL synchronous_commit = off")
                    outcome = self._match_and_write(valid, locked=None if turn is None else turn.locked)
                    if turn is not None and not turn.wait_to_commit():
                        raise _Overtaken
            except _Overtaken:
                continue  # an earlier batch was rolled back after this one locked: match again after it
            except (IntegrityError, OperationalError) as error:
                # A concurrent writer took a phone or email between our lock
                # and our COPY (or, with several writers, a lock cycle): match
                # the batch again against what is stored.
                if isinstance(error, OperationalError) and not _is_deadlock(error):
                    raise
                conflicts += 1
                if turn is not None:
                    turn.rolled_back()
                if conflicts == self.MAX_BATCH_ATTEMPTS:
                    raise
                continue
            if turn is not None:
                turn.committed()
            break
        for row, errors in outcome["skipped"]:
            done.skip(row, errors)
        done.created, done.updated, done.unchanged = outcome["created"], outcome["updated"], outcome["unchanged"]
        return done

    # Matching ------------------------------------------------------------------------

    def _load_targets(self, rows: list[Row]) -> list[_Target]:
        # Array literals made here: psycopg's list dumper costs ~3 µs a row (a regex per element).
        params = {
            "account": self.account.pk,
            "ids": _text_array([row.given_id for row in rows if row.given_id]),
            "phones": _text_array([row.phone for row in rows if row.phone]),
            "emails": _text_array([row.fields["email"] for row in rows if row.fields.get("email")]),
        }
        sql = _SELECT_TARGETS + ("" if self.dry_run else " ORDER BY id FOR UPDATE")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column.name for column in cursor.description]
            stored = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        for values in stored:
            # Django's psycopg setup hands JSONB over as text.
            values["metadata"] = strict_json_loads(values["metadata"])
            values["preferences"] = strict_json_loads(values["preferences"])
        return [_Target(id=values.pop("id"), values=values, original=dict(values)) for values in stored]

    def _match_and_write(self, rows: list[Row], locked=None) -> dict:
        targets = self._load_targets(rows)
        if locked is not None:
            locked()
        by_id = {target.id: target for target in targets}
        by_phone = {target.values["phone"]: target for target in targets if target.values["phone"]}
        by_email = {target.values["email"]: target for target in targets if target.values["email"]}
        skipped, touched = [], {}
        contact_ids = iter(new_ids("con", len(rows)))  # a row creates at most one contact
        # Counted per row: a later row of the batch that changes a contact an
        # earlier row created is an update, one that changes nothing unchanged.
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        for row in rows:
            phone, email = row.phone, row.fields.get("email")
            target = (
                by_id.get(row.given_id)
                or (by_phone.get(phone) if phone else None)
                or (by_email.get(email) if email else None)
            )
            if target is None:
                if not phone and not email:
                    reason = "No contact with this id in the account, and no phone or email to create one."
                    skipped.append((row, [("id" if row.given_id else "phone", reason)]))
                    continue
                target = _Target(id=next(contact_ids), values=_new_contact_values(), original=None)
            is_new = target.id not in by_id
            before = target.values
            errors = self._apply(row, target, phone, email, by_phone, by_email)
            if errors:
                skipped.append((row, errors))
                continue
            counts["created" if is_new else "updated" if target.values != before else "unchanged"] += 1
            by_id[target.id] = target
            touched[target.id] = target
        created = [target for target in touched.values() if target.original is None]
        changed = [
            target for target in touched.values() if target.original is not None and target.values != target.original
        ]
        self._apply_suppression(created, changed)
        if not self.dry_run:
            self._write(created, changed)
        return {**counts, "skipped": skipped}

    def _apply(self, row: Row, target: _Target, phone, email, by_phone, by_email) -> list:
        """Apply a row to its target; on a problem leave the target as it was and return errors."""
        fields = row.fields
        # Every field the row has replaces the stored one (its phone is the
        # E.164 text); metadata merges instead, below.
        values = {**target.values, **fields}
        stored = target.values["metadata"]
        if row.metadata_text is not None and not stored:
            # Merged onto nothing and removing nothing: the row's metadata is what is stored.
            values["metadata"] = _JsonText(row.metadata_text)
        elif row.metadata_text is not None or "metadata" in fields:
            patch = _JSON_DECODE(row.metadata_text) if row.metadata_text is not None else fields["metadata"]
            merged = {**(stored.value if isinstance(stored, _JsonText) else stored), **patch}
            values["metadata"] = {key: value for key, value in merged.items() if value is not None}
            if stored:  # the row's own metadata was checked when validated
                try:
                    check_metadata_limits(values["metadata"])
                except FieldInvalid as error:
                    return [("metadata", error.message)]
        if phone and "country" not in fields and not values["country"]:
            values["country"] = row.derived_country
        new_phone, new_email = values["phone"], values["email"]
        holder = by_phone.get(new_phone) if new_phone else None
        if holder is not None and holder is not target:
            return [("phone", f"Another contact has this phone: {holder.id}.")]
        holder = by_email.get(new_email) if new_email else None
        if holder is not None and holder is not target:
            return [("email", f"Another contact has this email: {holder.id}.")]
        if not new_phone and not new_email:
            return [("phone", "A contact needs a phone or an email.")]
        events = []
        if row.preferences and not values["preferences"]:
            # Nothing stored yet (every new contact): each status but "unset"
            # is stored and is a change from "unset".
            values["preferences"] = {channel: status for channel, status in row.preferences.items() if status != UNSET}
            events = [(channel, UNSET, status, IMPORT_REASON) for channel, status in values["preferences"].items()]
        elif row.preferences:
            stored = dict(values["preferences"])
            for channel, status in row.preferences.items():
                old = stored.get(channel, UNSET)
                if old != status:
                    events.append((channel, old, status, IMPORT_REASON))
                if status == UNSET:
                    stored.pop(channel, None)
                else:
                    stored[channel] = status
            values["preferences"] = stored
        for name, index in (("phone", by_phone), ("email", by_email)):
            old = target.values[name]
            if old and old != values[name] and index.get(old) is target:
                del index[old]
            if values[name]:
                index[values[name]] = target
        target.values = values
        target.events.extend(events)
        target.row = row
        return []

    def _apply_suppression(self, created: list[_Target], changed: list[_Target]) -> None:
        """Opt out contacts whose phone or email was suppressed: new ones, and ones that took a new identifier."""
        candidates = created + [
            target
            for target in changed
            if (target.values["phone"], target.values["email"]) != (target.original["phone"], target.original["email"])
        ]
        if not candidates:
            return
        with connection.cursor() as cursor:
            # Sending every row's hashes costs more than the lookup; most
            # accounts' lists are empty, so ask that first.
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM contacts_suppressionentry WHERE account_id = %s)", [self.account.pk]
            )
            if not cursor.fetchone()[0]:
                return
            hashes = {target.id: target.identifier_hashes() for target in candidates}
            cursor.execute(
                "SELECT identifier_hash, channel FROM contacts_suppressionentry "
                "WHERE account_id = %s AND identifier_hash = ANY(%s)",
                [self.account.pk, [value for values in hashes.values() for value in values]],
            )
            channels_by_hash = {}
            for identifier_hash, channel in cursor.fetchall():
                channels_by_hash.setdefault(identifier_hash, set()).add(channel)
        for target in candidates:
            channels = set().union(*(channels_by_hash.get(value, set()) for value in hashes[target.id]))
            if not channels:
                continue
            current = statuses(target.values["preferences"])
            for channel in sorted(channels & set(CHANNELS)):
                if current[channel] != OPTED_OUT:
                    target.values["preferences"] = {**target.values["preferences"], channel: OPTED_OUT}
                    target.events.append((channel, current[channel], OPTED_OUT, SUPPRESSION_REASON))

    # Writing -----------------------------------------------------------------------

    def _row(self, target: _Target) -> tuple:
        values = target.values
        search_vector, phone_digits, phone_national = target.search_columns(self.account.pk)
        metadata = values["metadata"]
        metadata = metadata.text if isinstance(metadata, _JsonText) else _json_object(metadata)
        return (
            target.id,
            values["phone"],
            values["email"],
            values["first_name"],
            values["last_name"],
            values["country"],
            values["lifecycle_stage"],
            _text_array(values["tags"]),
            metadata,
            _preferences_text(values["preferences"]),
            search_vector,
            phone_digits,
            phone_national,
        )

    def _write(self, created: list[_Target], changed: list[_Target]) -> None:
        account_id = self.account.pk
        # COPY goes through psycopg's own cursor: have its errors raised as
        # Django's, so that a unique violation is an IntegrityError to callers.
        with connection.wrap_database_errors, connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's cursor, for COPY
            # Updates first: a new contact may take the phone or email a
            # stored one gives up in the same batch.
            if changed:
                cursor.execute(_CREATE_UPDATE_TABLE)
                # Emptied on commit; emptied here too in case a caller holds an outer transaction.
                cursor.execute(f"TRUNCATE {_UPDATE_TABLE}")
                with raw.copy(f"COPY {_UPDATE_TABLE} FROM STDIN") as copy:
                    copy.write(_copy_text([self._row(target) for target in changed]))
                if any(_identity(target.values) != _identity(target.original) for target in changed):
                    # Unique indexes are checked row by row: when stored
                    # contacts pass identifiers along (a chain or a swap),
                    # release the moving ones before setting any.
                    cursor.execute(_RELEASE_IDENTIFIERS, {"account": account_id})
                cursor.execute(_APPLY_UPDATES, {"account": account_id})
            if created:
                with raw.copy(f"COPY contacts_contact ({_INSERT_COLUMNS}) FROM STDIN") as copy:
                    rows = [self._row(target) for target in created]
                    copy.write(_copy_text([(row[0], account_id, *row[1:]) for row in rows]))
            events = [(target, event) for target in created + changed for event in target.events]
            if events:
                with raw.copy(
                    "COPY contacts_activityevent (id, account_id, contact_id, type, channel, data) FROM STDIN"
                ) as copy:
                    copy.write(
                        _copy_text(
                            [
                                (event_id, account_id, target.id, "preference.updated", channel, _event_data(*change))
                                for event_id, (target, (channel, *change)) in zip(
                                    new_ids("act", len(events)), events, strict=True
                                )
                            ]
                        )
                    )


# COPY here is text: a jsonb or text[] column parses the text it is given, so
# the values go as text made here rather than through psycopg's Python-level
# Jsonb and list dumpers (with json.dumps building an encoder per call): those
# cost ~25 µs per contact of the main process's ~70.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


# What the importer's own encoder wrote (finite numbers, no NUL) needs no strict decoding.
_JSON_DECODE = json.JSONDecoder().decode


class _JsonText:
    """A JSON object kept as the text the worker made; decoded only if something looks inside.

    It compares equal to the object it encodes, so a contact's values compare
    as they would with a dict there.
    """

    __slots__ = ("_value", "text")

    def __init__(self, text: str):
        self.text = text
        self._value = None

    @property
    def value(self) -> dict:
        if self._value is None:
            self._value = _JSON_DECODE(self.text)
        return self._value

    def __eq__(self, other):
        return self.value == (other.value if isinstance(other, _JsonText) else other)

    __hash__ = None

    def __bool__(self) -> bool:
        return self.text != "{}"


# COPY's text format: NULL is \N; a backslash, newline, carriage return or tab
# in a value is written as an escape (other control characters are read as
# themselves).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
# Stands for NULL while a batch's text is made: no value holds it (validation
# refuses NUL everywhere, and PostgreSQL text cannot hold it).
_NULL = "\x00"


def _copy_text(rows: list[tuple]) -> str:
    """Rows of text values (or None) as COPY text, which PostgreSQL reads back as those values.

    One join per row, and a look at the whole batch: when its text holds no
    backslash or carriage return, and no tab or newline but the separators
    (every batch of the benchmark's file), no value needs escaping. Otherwise
    each value is escaped. ``write_row`` took ~3.6 µs of a worker's ~75 per
    row, looking up a dumper for every value.
    """
    if not rows:
        return ""
    width = len(rows[0])
    text = "\n".join(["\t".join([_NULL if value is None else value for value in row]) for row in rows]) + "\n"
    if "\\" in text or "\r" in text or text.count("\t") != len(rows) * (width - 1) or text.count("\n") != len(rows):
        text = "".join(
            "\t".join([_NULL if value is None else value.translate(_COPY_ESCAPES) for value in row]) + "\n"
            for row in rows
        )
    return text.replace(_NULL, "\\N")


def _json_object(value: dict) -> str:
    return _json_text(value) if value else "{}"


def _json_text(value) -> str:
    """JSON text of ``value`` for a jsonb column: orjson's (a tenth of json's time), json's past 64-bit integers.

    Only a float's notation can differ (``1e-05`` is ``0.00001``), which
    PostgreSQL reads as the same number: jsonb stores the value, not the text.
    """
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _JSON.encode(value)


def _preferences_text(preferences: dict) -> str:
    return _preferences_json(tuple(preferences.items())) if preferences else "{}"


@lru_cache(maxsize=1024)
def _preferences_json(items: tuple) -> str:
    return _JSON.encode(dict(items))


@lru_cache(maxsize=256)
def _event_data(old: str, new: str, reason: str) -> str:
    return _JSON.encode({"old_status": old, "new_status": new, "api_key_id": None, "reason": reason})


def _text_array(items: list[str]) -> str:
    """A PostgreSQL array literal of ``items``, every element quoted (so none reads as NULL) and escaped."""
    if not items:
        return "{}"
    joined = "".join(items)
    if "\\" in joined or '"' in joined:
        items = [item.replace("\\", "\\\\").replace('"', '\\"') for item in items]
    return '{"' + '","'.join(items) + '"}'


def _new_contact_values() -> dict:
    return {
        "phone": None,
        "email": None,
        "first_name": "",
        "last_name": "",
        "country": None,
        "lifecycle_stage": DEFAULT_LIFECYCLE_STAGE,
        "tags": [],
        "metadata": {},
        "preferences": {},
    }


def open_text(path: str, stdin) -> io.TextIOBase:
    """The input as UTF-8 text (a BOM is skipped); ``-`` is standard input."""
    if path == "-":
        return io.TextIOWrapper(stdin.buffer if hasattr(stdin, "buffer") else stdin, encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def count_data_rows(path: str, fmt: str) -> int | None:
    """About how many rows a file holds (its lines), for the progress bar's ETA; None for stdin."""
    if path == "-":
        return None
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - (1 if fmt == "csv" else 0), 0)
