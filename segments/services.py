"""Reads and writes of segments. Membership is never stored: it is the compiled rules, run now."""

import functools
import json
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.db import OperationalError, connection, transaction

from accounts.models import Account
from contacts.models import Contact
from contacts_project.uniqueness import save_named, update_named
from segments.models import Segment
from segments.rules import compile_rules

NAME_CONSTRAINT = "segment_name_unique"


def segment_contacts(*, account: Account, rules: dict):
    """The account's contacts matching ``rules`` (already validated): one SQL query."""
    return Contact.objects.for_output().for_account(account).filter(compile_rules(rules))


def segment_count(*, account: Account, rules: dict) -> int:
    """How many of the account's contacts match ``rules`` now: exact, one COUNT."""
    sql, params = _count_sql(account.pk, json.dumps(rules, sort_keys=True))
    return connection.fetch_all(sql, params)[0][0]


@functools.lru_cache(maxsize=1024)
def _count_sql(account_id: str, rules_json: str) -> tuple[str, tuple]:
    """The COUNT of a rule tree, compiled once per process (it was most of a segment read's CPU).

    ``compile_rules`` is pure: the SQL depends on the account and the rules
    alone (relative times are the database's ``now()``), so it can be kept.
    """
    matching = Contact.objects.for_account(account_id).filter(compile_rules(json.loads(rules_json)))
    sql, params = matching.values("pk").query.sql_with_params()
    return f"SELECT COUNT(*) FROM ({sql}) AS matching", params


# Above this many estimated matches a preview does not try the exact count.
PREVIEW_EXACT_ESTIMATE_LIMIT = 50_000


@dataclass(frozen=True)
class PreviewCount:
    """How many contacts match: exactly ``count``, or at least ``count`` when not ``exact``."""

    count: int
    exact: bool


def segment_preview_count(contacts) -> PreviewCount:
    """Count a preview's matches with bounded work: exactly when that is cheap, else up to a cap.

    A preview is asked for while rules are being written, and an exact count
    of a broad rule over a million contacts reads every match (0.3-0.5 s, two
    cores' worth). So the exact count is tried only when the planner expects
    at most ``PREVIEW_EXACT_ESTIMATE_LIMIT`` matches, and then gets
    ``SEGMENT_PREVIEW_EXACT_MS``; otherwise the count stops at
    ``SEGMENT_PREVIEW_COUNT_CAP`` matches, reported as "at least" (``exact``
    false) unless fewer match. A saved segment's count
    (``GET /v1/contacts/segments/{id}``) is always exact.
    """
    budget = settings.SEGMENT_PREVIEW_EXACT_MS
    # SET LOCAL lasts to the end of the transaction: inside a caller's, it
    # would outlive the count, so there neither setting is made.
    own_transaction = not connection.in_atomic_block
    # An exact count of what the planner expects to be a broad match would
    # only spend the budget and time out: go straight to the capped count.
    if budget > 0 and own_transaction and _estimated_rows(contacts) <= PREVIEW_EXACT_ESTIMATE_LIMIT:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {int(budget)}")
                return PreviewCount(contacts.count(), exact=True)
        except OperationalError as exc:
            if not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
                raise
    cap = settings.SEGMENT_PREVIEW_COUNT_CAP
    with transaction.atomic(), connection.cursor() as cursor:
        if own_transaction:
            # With a LIMIT the planner assumes matches are spread evenly
            # through the table and may bet on a sequential scan that stops
            # early. In a table shared by accounts they are not: a scan
            # starting among other accounts' rows read up to the whole table
            # (1.2 s under load). Indexes bound the work whatever the layout.
            cursor.execute("SET LOCAL enable_seqscan = off")
        found = contacts.values("pk")[: cap + 1].count()
    return PreviewCount(min(found, cap), exact=found <= cap)


def _estimated_rows(contacts) -> float:
    """The planner's estimate of how many rows ``contacts`` matches (one EXPLAIN, no execution)."""
    plan = json.loads(contacts.values("pk").explain(format="json"))
    return plan[0]["Plan"]["Plan Rows"]


@transaction.atomic
def segment_create(*, account: Account, name: str, rules: dict) -> Segment:
    segment = Segment(account=account, name=name, rules=rules)
    save_named(segment, constraint=NAME_CONSTRAINT)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, data: dict) -> Segment:
    return update_named(segment, data, constraint=NAME_CONSTRAINT)
