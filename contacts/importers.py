"""Bulk import of contacts from CSV or JSONL (API.md §9).

The pipeline, built for millions of rows on a small machine:

1. Reading and validating run in worker processes (``--workers``, default one
   per core): each raw row goes through ``contacts.validation.clean_contact``,
   the very rules the API applies, so a row the API would refuse is refused
   here with the same reason. Workers get chunks through a bounded window, so
   memory stays flat however long the file.
2. The main process takes the cleaned rows in batches. Each batch is one
   top-level transaction, committed on its own: a kill loses only the
   batches not yet committed (the one being written and the one queued), and
   a re-run converges because every row is an upsert.
3. Each row of a batch is matched in file order: by ``id``, else by phone,
   else by email, else it is a new contact. Matching in Python against the
   rows the batch names (rather than ``INSERT … ON CONFLICT``, which can
   honour only one unique constraint) keeps that order exact and lets a later
   row of the file update a contact an earlier row created.
4. Matching and writing overlap, so that the main process's Python and
   PostgreSQL work at the same time. The main thread matches batch N+1 while
   a writer thread (a connection of its own) writes batch N: it reads the
   contacts the batch names without locking them, lays over them the values
   the batches still in flight will write (a contact one of them creates
   already exists; a later batch's values win), matches, and hands the writer
   a plan: the contacts to create and change, the events, the counts. The
   writer locks the rows the batch names (``SELECT … ORDER BY id FOR
   UPDATE``) and writes the plan only if they are exactly those it was
   matched against; otherwise (a concurrent writer, such as the API, changed
   one) it matches the batch again under the lock, and the next plan too,
   which assumed this one. A plan that writes nothing needs no lock when the
   plans it assumed were written as planned. ``--dry-run`` (which writes
   nothing) and a run inside a caller's transaction match batch by batch in
   one thread.
5. Changed contacts are ``COPY``-ed into a temporary table and applied with
   one ``UPDATE … FROM`` (identifiers passed between stored contacts are
   released first: unique indexes are checked row by row); new contacts
   are written with ``COPY`` after them, so they may take an identifier a
   stored contact gave up; preference events go in with ``COPY`` too. A
   unique violation from a concurrent writer rolls the batch back and the
   batch is matched again under the lock.

Semantics: an empty CSV cell (or a missing JSONL key) leaves the stored value
as it is; ``metadata`` merges into the stored object (a ``null`` value removes
the key); ``tags`` replaces the set; ``preferences`` sets the channels given.
New contacts whose phone or email is on the account's suppression list start
opted out on those channels, whatever the file says.
"""

import collections
import contextlib
import csv
import io
import itertools
import multiprocessing
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db import IntegrityError, connection, connections, transaction
from psycopg.types.json import Jsonb
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
from contacts_project.ids import new_id

COLUMNS = ("id", *CONTACT_FIELDS, "preferences", "created_at", "updated_at")
IGNORED_COLUMNS = ("created_at", "updated_at")
METADATA_PREFIX = "metadata."
MAX_JSON_DEPTH = 64
IMPORT_REASON = "import"
SUPPRESSION_REASON = "suppression_list"


class ImportFileError(Exception):
    """The file as a whole cannot be read (unknown columns, not UTF-8): nothing more is imported."""


# --- Reading ---------------------------------------------------------------------


def read_records(stream, fmt: str) -> Iterator[tuple[int, object]]:
    """``(row number, raw record)`` for each data row; row 1 is the first row after a CSV header."""
    if fmt == "csv":
        reader = csv.DictReader(stream)
        unknown = [
            name
            for name in reader.fieldnames or []
            if name not in COLUMNS and not (name.startswith(METADATA_PREFIX) and len(name) > len(METADATA_PREFIX))
        ]
        if unknown:
            raise ImportFileError(f"Unknown column(s): {', '.join(unknown)}. Columns are: {', '.join(COLUMNS)}.")
        yield from enumerate(reader, start=1)
    else:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line


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


@dataclass
class Row:
    """One data row, validated: ``fields`` are clean contact fields, or ``errors`` say why not."""

    number: int
    given_id: str | None = None
    fields: dict = field(default_factory=dict)
    preferences: dict = field(default_factory=dict)
    errors: list[tuple[str, str]] = field(default_factory=list)
    # Worked out here, in the worker, for the row's own identifiers and names;
    # the writer reuses them whenever the contact ends up with exactly those.
    phone: str | None = None
    derived_country: str | None = None
    basis: tuple = ()
    search: dict = field(default_factory=dict)
    hashes: list[str] = field(default_factory=list)


def clean_row(number: int, raw, fmt: str) -> Row:
    row = Row(number)
    try:
        if fmt == "csv":
            fields = _fields_from_csv(raw)
            text = "\n".join(cell for cell in raw.values() if isinstance(cell, str))
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
        _precompute(row)
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


def _precompute(row: Row) -> None:
    fields = row.fields
    phone = fields.get("phone")
    row.phone = e164(phone)
    row.derived_country = country_from_phone(phone)
    if "phone" in fields:
        # The writer needs only the text: send it back to the main process, not a PhoneNumber object.
        fields["phone"] = row.phone
    email, first_name, last_name = fields.get("email"), fields.get("first_name", ""), fields.get("last_name", "")
    row.basis = (row.phone, email, first_name, last_name)
    row.search = search_columns(phone=phone, email=email, first_name=first_name, last_name=last_name)
    row.hashes = identifier_hashes(phone=row.phone, email=email)


def _clean_chunk(chunk: list, fmt: str) -> list[Row]:
    return [clean_row(number, raw, fmt) for number, raw in chunk]


def _chunks(records: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def validated_rows(records: Iterable, fmt: str, *, workers: int, chunk_size: int = 1000) -> Iterator[Row]:
    """Validated rows in file order, validation spread over ``workers`` processes."""
    if workers <= 1:
        for chunk in _chunks(records, chunk_size):
            yield from _clean_chunk(chunk, fmt)
        return
    # The pool's feeder thread would read the whole file ahead; a semaphore
    # keeps at most a few chunks per worker in flight.
    window = threading.BoundedSemaphore(workers * 4)

    def bounded():
        for chunk in _chunks(records, chunk_size):
            window.acquire()
            yield chunk

    # Forked workers never touch the database (and leave through os._exit, so
    # no finalizer closes a shared socket); closing first is still cleaner,
    # unless a caller's transaction is open on the connection.
    if not connection.in_atomic_block:
        connections.close_all()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for rows in pool.imap(_validate_chunk, ((chunk, fmt) for chunk in bounded())):
            window.release()
            yield from rows


def _validate_chunk(task) -> list[Row]:
    chunk, fmt = task
    return _clean_chunk(chunk, fmt)


# --- Writing (main process) ------------------------------------------------------


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

    def search_columns(self) -> dict:
        if self.row is not None and self.row.basis == self.identity():
            return self.row.search
        values = self.values
        return search_columns(
            phone=values["phone"], email=values["email"], first_name=values["first_name"], last_name=values["last_name"]
        )

    def identifier_hashes(self) -> list[str]:
        if self.row is not None and self.row.basis[:2] == self.identity()[:2]:
            return self.row.hashes
        return identifier_hashes(phone=self.values["phone"], email=self.values["email"])


_SELECT_TARGETS = """
SELECT id, phone, email, first_name, last_name, country, lifecycle_stage, tags, metadata, preferences
  FROM contacts_contact
 WHERE account_id = %(account)s
   AND (id = ANY(%(ids)s) OR phone = ANY(%(phones)s) OR email = ANY(%(emails)s))
"""
_STORED_COLUMNS = (
    "phone",
    "email",
    "first_name",
    "last_name",
    "country",
    "lifecycle_stage",
    "tags",
    "metadata",
    "preferences",
)


def _stored_values(raw: tuple) -> dict:
    """A row of ``_SELECT_TARGETS`` (without its id) as a contact's values."""
    values = dict(zip(_STORED_COLUMNS, raw, strict=True))
    # Django's psycopg setup hands JSONB over as text.
    values["metadata"] = strict_json_loads(values["metadata"])
    values["preferences"] = strict_json_loads(values["preferences"])
    return values


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
 WHERE c.id = u.id AND c.account_id = %s
"""


@dataclass
class _Plan:
    """A batch matched by the main thread, for the writer thread to check and write (see the module docstring)."""

    size: int  # rows of the file, valid or not, for the progress bar
    rows: list[Row]  # the valid rows, matched again should the plan turn out stale
    invalid: list[Row]
    params: dict  # the ids, phones and emails the batch names
    basis: dict[str, dict]  # id -> values: what the locked SELECT must return for the plan to hold
    stored: dict[str, tuple]  # id -> the row as read, for the basis values read (not laid over)
    created: list[_Target]
    changed: list[_Target]
    outcome: dict


class _InFlight:
    """The values that planned but uncommitted batches give their contacts (main thread only).

    The main thread matches a batch while earlier ones are still being
    written, so it reads the stored rows and lays these values over them:
    a contact a batch in flight creates already exists, a phone it moves
    away is free, a later batch's values win over an earlier one's.
    """

    def __init__(self):
        self.values: dict[str, dict] = {}
        self.batch: dict[str, int] = {}  # id -> the last batch in flight that writes it
        self.by_phone: dict[str, str] = {}
        self.by_email: dict[str, str] = {}

    def add(self, number: int, targets: list[_Target]) -> None:
        for target in targets:
            for name, index in (("phone", self.by_phone), ("email", self.by_email)):
                old = target.original[name] if target.original is not None else None
                if old and old != target.values[name] and index.get(old) == target.id:
                    del index[old]
            for name, index in (("phone", self.by_phone), ("email", self.by_email)):
                if target.values[name]:
                    index[target.values[name]] = target.id
            self.values[target.id] = dict(target.values)
            self.batch[target.id] = number

    def remove(self, number: int, targets: list[_Target]) -> None:
        """Forget a committed batch's values (unless a later batch in flight changes the contact again)."""
        for target in targets:
            if self.batch.get(target.id) != number:
                continue
            del self.batch[target.id]
            values = self.values.pop(target.id)
            for name, index in (("phone", self.by_phone), ("email", self.by_email)):
                if values[name] and index.get(values[name]) == target.id:
                    del index[values[name]]

    def named_by(self, params: dict) -> set[str]:
        found = {value for value in params["ids"] if value in self.values}
        found.update(self.by_phone[phone] for phone in params["phones"] if phone in self.by_phone)
        found.update(self.by_email[email] for email in params["emails"] if email in self.by_email)
        return found


class _StalePlan(Exception):
    """The rows a plan was matched against changed before the writer locked them."""


_RELEASE_IDENTIFIERS = f"""
UPDATE contacts_contact AS c
   SET phone = CASE WHEN c.phone IS DISTINCT FROM u.phone THEN NULL ELSE c.phone END,
       email = CASE WHEN c.email IS DISTINCT FROM u.email THEN NULL ELSE c.email END
  FROM {_UPDATE_TABLE} AS u
 WHERE c.id = u.id AND c.account_id = %s AND (c.phone IS DISTINCT FROM u.phone OR c.email IS DISTINCT FROM u.email)
"""


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
        batches = _chunks(rows, self.batch_size)
        # The first batch starts the validating processes, which closes the
        # connection: only then set it up and start the writer thread (a
        # fork copies no thread).
        first = next(batches, None)
        if first is None:
            return self.summary
        _no_statement_timeout()
        batches = itertools.chain([first], batches)
        if self.dry_run or connection.in_atomic_block:
            # Nothing to overlap with (a dry run writes nothing), or a caller's
            # transaction that a second connection could not see into.
            for batch in batches:
                self._import_batch(batch)
                if progress is not None:
                    progress(len(batch))
            return self.summary
        return self._run_pipelined(batches, progress)

    def _run_pipelined(self, batches: Iterable[list[Row]], progress) -> Summary:
        """Match batch N+1 in this thread while the writer thread writes and commits batch N."""
        in_flight = _InFlight()
        writer = _BatchWriter(self)
        writer.start()
        try:
            for number, batch in enumerate(batches):
                # Forget committed batches before reading what is stored: a
                # batch committed after this point is still laid over the
                # rows read, with the very values it wrote.
                self._collect(writer, in_flight, progress)
                plan = self._plan(batch, in_flight)
                in_flight.add(number, plan.created + plan.changed)
                writer.submit(plan)
            writer.finish()
        except Exception:
            # The input failed (a byte that is not UTF-8...), or the matching:
            # the batches already matched are written, as one by one they
            # would have been, unless it was the writer that failed.
            writer.finish(raise_error=False)
            raise
        except BaseException:  # Ctrl-C: stop after the batch being written
            writer.stop()
            raise
        self._collect(writer, in_flight, progress)
        return self.summary

    def _collect(self, writer: "_BatchWriter", in_flight: _InFlight, progress) -> None:
        """Count what the writer committed, in file order."""
        for number, plan, outcome in writer.committed():
            in_flight.remove(number, plan.created + plan.changed)
            self._record(plan.invalid, outcome)
            if progress is not None:
                progress(plan.size)

    def _import_batch(self, batch: list[Row]) -> None:
        valid = [row for row in batch if not row.errors]
        invalid = [row for row in batch if row.errors]
        self._record(invalid, self._match_and_commit(valid))

    def _match_and_commit(self, rows: list[Row]) -> dict:
        """Lock, match and write one batch in a transaction of its own; the outcome counts."""
        for attempt in range(1, self.MAX_BATCH_ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    _batch_settings()
                    return self._match_and_write(rows)
            except IntegrityError:
                # A concurrent writer took a phone or email between our lock
                # and our COPY; match the batch again against what is stored.
                if attempt == self.MAX_BATCH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _record(self, invalid: list[Row], outcome: dict) -> None:
        for row in invalid:
            self._skip(row, row.errors)
        for row, errors in outcome["skipped"]:
            self._skip(row, errors)
        self.summary.created += outcome["created"]
        self.summary.updated += outcome["updated"]
        self.summary.unchanged += outcome["unchanged"]

    def _skip(self, row: Row, errors) -> None:
        self.summary.skipped += 1
        self.summary.errors.extend((row.number, attr, message) for attr, message in errors)

    # Planning (main thread) and writing a plan (writer thread) ----------------------

    def _plan(self, batch: list[Row], in_flight: _InFlight) -> _Plan:
        """Match a batch against a plain read of the stored rows with the batches in flight laid over it."""
        rows = [row for row in batch if not row.errors]
        params = self._target_params(rows)
        read = self._select_stored(params, lock=False)
        stored = {key: raw for key, raw in read.items() if key not in in_flight.values}
        basis = {key: _stored_values(raw) for key, raw in stored.items()}
        ids, phones, emails = set(params["ids"]), set(params["phones"]), set(params["emails"])
        for key in in_flight.named_by(params) | (read.keys() & in_flight.values.keys()):
            values = in_flight.values[key]
            # As the locked SELECT will see it once the batches in flight are
            # committed: a contact whose phone and email moved off the batch's
            # is no longer named by it.
            if key in ids or values["phone"] in phones or values["email"] in emails:
                basis[key] = values
        targets = [_Target(id=key, values=dict(values), original=dict(values)) for key, values in basis.items()]
        created, changed, outcome = self._match(rows, targets)
        self._apply_suppression(created, changed)
        return _Plan(
            size=len(batch),
            rows=rows,
            invalid=[row for row in batch if row.errors],
            params=params,
            basis=basis,
            stored=stored,
            created=created,
            changed=changed,
            outcome=outcome,
        )

    def _write_plan(self, plan: _Plan, *, check: bool = True) -> dict | None:
        """Write a plan if the rows it was matched against are still as it saw them; its outcome, or None if not.

        ``check=False`` trusts a plan that writes nothing: its read, laid
        over batches written as planned, serializes right after them.
        """
        if not plan.created and not plan.changed and (not check or not plan.rows):
            return plan.outcome
        try:
            with transaction.atomic():
                _batch_settings()
                if not self._holds(plan):
                    raise _StalePlan
                self._write(plan.created, plan.changed)
            return plan.outcome
        except (_StalePlan, IntegrityError):
            # A concurrent writer (the API) changed a row the plan read, or
            # took a phone or email it creates: rolled back.
            return None

    def _holds(self, plan: _Plan) -> bool:
        """Lock the rows the plan's batch names; are they exactly those it was matched against?"""
        locked = self._select_stored(plan.params, lock=True)
        if locked.keys() != plan.basis.keys():
            return False
        for key, raw in locked.items():
            # A row read as it is now compares as text; one laid over (written since) by value.
            if key in plan.stored:
                if raw != plan.stored[key]:
                    return False
            elif _stored_values(raw) != plan.basis[key]:
                return False
        return True

    def _rematch(self, plan: _Plan) -> dict:
        """Match a stale plan's rows again, under the lock, and write them."""
        return self._match_and_commit(plan.rows)

    # Matching ------------------------------------------------------------------------

    @staticmethod
    def _target_params(rows: list[Row]) -> dict:
        return {
            "ids": [row.given_id for row in rows if row.given_id],
            "phones": [row.phone for row in rows if row.phone],
            "emails": [row.fields["email"] for row in rows if row.fields.get("email")],
        }

    def _select_stored(self, params: dict, *, lock: bool) -> dict[str, tuple]:
        """The account's contacts a batch names, as rows by id; ``lock`` takes their row locks."""
        sql = _SELECT_TARGETS + (" ORDER BY id FOR UPDATE" if lock else "")
        with connection.cursor() as cursor:
            cursor.execute(sql, {"account": self.account.pk, **params})
            return {row[0]: row[1:] for row in cursor.fetchall()}

    def _match_and_write(self, rows: list[Row]) -> dict:
        stored = self._select_stored(self._target_params(rows), lock=not self.dry_run)
        targets = [
            _Target(id=key, values=values, original=dict(values))
            for key, values in ((key, _stored_values(raw)) for key, raw in stored.items())
        ]
        created, changed, outcome = self._match(rows, targets)
        self._apply_suppression(created, changed)
        if not self.dry_run:
            self._write(created, changed)
        return outcome

    def _match(self, rows: list[Row], targets: list[_Target]) -> tuple[list[_Target], list[_Target], dict]:
        """Apply each row in file order to its target; the contacts to create, those to change, the counts."""
        by_id = {target.id: target for target in targets}
        by_phone = {target.values["phone"]: target for target in targets if target.values["phone"]}
        by_email = {target.values["email"]: target for target in targets if target.values["email"]}
        skipped, touched = [], {}
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
                target = _Target(id=new_id("con"), values=_new_contact_values(), original=None)
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
        return created, changed, {**counts, "skipped": skipped}

    def _apply(self, row: Row, target: _Target, phone, email, by_phone, by_email) -> list:
        """Apply a row to its target; on a problem leave the target as it was and return errors."""
        values = dict(target.values)
        fields = row.fields
        for name in ("first_name", "last_name", "country", "lifecycle_stage", "tags", "email"):
            if name in fields:
                values[name] = fields[name]
        if "phone" in fields:
            values["phone"] = phone
        if "metadata" in fields:
            merged = {**values["metadata"], **fields["metadata"]}
            values["metadata"] = {key: value for key, value in merged.items() if value is not None}
            if target.values["metadata"]:  # the row's own metadata was checked when validated
                try:
                    check_metadata_limits(values["metadata"])
                except FieldInvalid as error:
                    return [("metadata", error.message)]
        if phone and "country" not in fields and not values["country"]:
            values["country"] = row.derived_country
        for name, index in (("phone", by_phone), ("email", by_email)):
            holder = index.get(values[name]) if values[name] else None
            if holder is not None and holder is not target:
                return [(name, f"Another contact has this {name}: {holder.id}.")]
        if not values["phone"] and not values["email"]:
            return [("phone", "A contact needs a phone or an email.")]
        events = []
        if row.preferences:
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
        columns = target.search_columns()
        return (
            target.id,
            values["phone"],
            values["email"],
            values["first_name"],
            values["last_name"],
            values["country"],
            values["lifecycle_stage"],
            values["tags"],
            Jsonb(values["metadata"]),
            Jsonb(values["preferences"]),
            columns["search_vector"],
            columns["phone_digits"],
            columns["phone_national"],
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
                    for target in changed:
                        copy.write_row(self._row(target))
                if any(_identity(target.values) != _identity(target.original) for target in changed):
                    # Unique indexes are checked row by row: when stored
                    # contacts pass identifiers along (a chain or a swap),
                    # release the moving ones before setting any.
                    cursor.execute(_RELEASE_IDENTIFIERS, [account_id])
                cursor.execute(_APPLY_UPDATES, [account_id])
            if created:
                with raw.copy(f"COPY contacts_contact ({_INSERT_COLUMNS}) FROM STDIN") as copy:
                    for target in created:
                        row = self._row(target)
                        copy.write_row((row[0], account_id, *row[1:]))
            events = [(target, event) for target in created + changed for event in target.events]
            if events:
                with raw.copy(
                    "COPY contacts_activityevent (id, account_id, contact_id, type, channel, data) FROM STDIN"
                ) as copy:
                    for target, (channel, old, new, reason) in events:
                        data = {"old_status": old, "new_status": new, "api_key_id": None, "reason": reason}
                        copy.write_row(
                            (new_id("act"), account_id, target.id, "preference.updated", channel, Jsonb(data))
                        )


def _no_statement_timeout() -> None:
    with connection.cursor() as cursor:
        # Bulk work may take longer than an API request is allowed to.
        cursor.execute("SET statement_timeout = 0")


def _batch_settings() -> None:
    with connection.cursor() as cursor:
        # A batch is re-done by re-running the import, so it need not wait
        # for its WAL to reach the disk: a server crash (not a kill of this
        # command) may lose the last ~0.6 s.
        cursor.execute("SET LOCAL synchronous_commit = off")


class _BatchWriter(threading.Thread):
    """Checks and writes the main thread's plans in order, each in a transaction of its own.

    It has a connection of its own (Django's are per thread), closed when it
    ends. The queue holds one plan: the main thread matches at most two
    batches ahead of the one committed last. A plan found stale is matched
    again under the lock, and so is the plan after it, which was matched
    assuming the first.
    """

    def __init__(self, importer: ContactImporter):
        super().__init__(name="import-writer", daemon=True)
        self.importer = importer
        self.plans: queue.Queue = queue.Queue(maxsize=1)
        self.done: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            _no_statement_timeout()
            # How each of the last two plans went: "planned" (written as
            # matched), "stale" (matched again), "after_stale" (matched
            # again because the one before it was stale).
            recent = collections.deque(["planned", "planned"], maxlen=2)
            number = 0
            while (plan := self.plans.get()) is not None and not self.stopping.is_set():
                outcome = None
                if recent[-1] != "stale":
                    outcome = self.importer._write_plan(plan, check=set(recent) != {"planned"})
                if outcome is not None:
                    recent.append("planned")
                else:
                    recent.append("after_stale" if recent[-1] == "stale" else "stale")
                    outcome = self.importer._rematch(plan)
                self.done.put((number, plan, outcome))
                number += 1
        except BaseException as error:
            self.error = error  # raised again in the main thread
        finally:
            connections.close_all()

    def submit(self, plan: _Plan) -> None:
        """Queue a plan, waiting while the writer is busy; its error is raised here."""
        while True:
            self._raise_error()
            try:
                self.plans.put(plan, timeout=0.5)
                return
            except queue.Full:
                continue

    def committed(self) -> Iterator[tuple[int, _Plan, dict]]:
        """The plans committed since the last call, in order, with the outcome written."""
        while True:
            try:
                yield self.done.get_nowait()
            except queue.Empty:
                self._raise_error()
                return

    def finish(self, *, raise_error: bool = True) -> None:
        """Write the plans queued, then end; the writer's error is raised here, if asked."""
        while self.error is None:
            try:
                self.plans.put(None, timeout=0.5)
                break
            except queue.Full:
                continue
        self.join()
        if raise_error:
            self._raise_error()

    def stop(self) -> None:
        """End the writer after the batch it is writing, dropping the plan queued (on an error or Ctrl-C)."""
        self.stopping.set()
        with contextlib.suppress(queue.Empty):
            self.plans.get_nowait()
        # Only this thread puts, and it just emptied the queue.
        self.plans.put_nowait(None)
        self.join()

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error


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
