"""The data set: one big account and its neighbours, built once; scratch accounts per run.

Every account is filled by ``seed_demo_data`` (deterministic per seed: names in
many scripts, valid mobiles of 27 countries, tags, metadata, preferences,
lists, segments, activity) into the one shared contacts table, so every query
runs among other tenants' rows. Building is idempotent: an account that
already holds exactly the requested contacts, lists and segments is kept; one
that does not (another size, or a build that was interrupted) is purged and
built again.

Writes never touch the read data set: ``create`` and ``update`` go to a
scratch account recreated by every run, and the import goes to another one
(the big account's "neighbour"), purged when the run ends.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.db import DatabaseError, connection, transaction

from accounts.models import Account, ApiKey
from accounts.services import api_key_create
from contacts.models import ActivityEvent, Contact
from contacts.seeding import seed_demo_data
from lists.models import ContactList, ListMembership
from segments.models import Segment

BIG = "bench-big"
NEIGHBOUR = "bench-neighbour-{number}"
WRITES = "bench-writes"
IMPORT = "bench-import"
KEY_NAME = "bench"
WRITES_CONTACTS = 2000


@dataclass(frozen=True)
class DataSetSpec:
    """The size of the data set (defaults: issue #6's 1,000,000 + 9 accounts of 100,000 contacts)."""

    contacts: int = 1_000_000
    neighbours: int = 9
    neighbour_contacts: int = 100_000
    lists: int = 50
    segments: int = 20
    seed: int = 2026

    def accounts(self) -> list[tuple[str, int, int]]:
        """``(name, contacts, seed)`` of every read account, the big one first."""
        neighbours = [
            (NEIGHBOUR.format(number=number), self.neighbour_contacts, self.seed + number)
            for number in range(1, self.neighbours + 1)
        ]
        return [(BIG, self.contacts, self.seed), *neighbours]


@dataclass
class DataSet:
    spec: DataSetSpec
    big: Account
    built: list[str] = field(default_factory=list)  # accounts (re)built by this run

    def totals(self) -> dict[str, int]:
        """Rows in the whole shared tables (every tenant), for the report."""
        return {
            "contacts": _estimate(Contact),
            "activity events": _estimate(ActivityEvent),
            "list memberships": _estimate(ListMembership),
        }


def _estimate(model) -> int:
    """The planner's row count (exact after the build's ANALYZE), instead of a COUNT of millions."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        return max(cursor.fetchone()[0], 0)


def _complete(account: Account, contacts: int, spec: DataSetSpec) -> bool:
    return (
        Contact.objects.for_account(account).count() == contacts
        and ContactList.objects.for_account(account).count() == spec.lists
        and Segment.objects.for_account(account).count() == spec.segments
    )


def build(spec: DataSetSpec, *, log: Callable[[str], None]) -> DataSet:
    """Make sure every read account holds its data; build what is missing."""
    built = []
    for name, contacts, seed in spec.accounts():
        account = Account.objects.filter(name=name).first()
        if account is not None and _complete(account, contacts, spec):
            continue
        if account is not None:
            log(f"{name}: not the requested size; purging it")
            purge(account)
        log(f"{name}: seeding {contacts:,} contacts, {spec.lists} lists, {spec.segments} segments (seed {seed})")
        account = Account.objects.create(name=name)
        summary = seed_demo_data(
            account=account,
            contacts=contacts,
            seed=seed,
            lists=spec.lists,
            segments=spec.segments,
            on_contacts=_progress(name, contacts, log),
        )
        log(f"{name}: {summary.contacts:,} contacts, {summary.memberships:,} memberships, {summary.events:,} events")
        built.append(name)
    expected = {name for name, _, _ in spec.accounts()} | {WRITES, IMPORT}
    for other in Account.objects.exclude(name__in=expected).order_by("name"):
        # Not ours to delete (another tool may be using it), but its rows share the tables measured.
        contacts = Contact.objects.for_account(other).count()
        log(f"warning: account {other.name!r} ({contacts:,} contacts) is not part of the data set")
    # Leftovers of an interrupted run would sit in the shared tables the reads measure.
    for leftover in Account.objects.filter(name__in=[WRITES, IMPORT]):
        log(f"{leftover.name}: purging a previous run's scratch account")
        purge(leftover)
        built.append(leftover.name)
    return DataSet(spec=spec, big=Account.objects.get(name=BIG), built=built)


def _progress(name: str, total: int, log: Callable[[str], None]) -> Callable[[int], None]:
    """A seeding callback logging every 10% (seeding a million contacts takes minutes)."""
    done = 0
    step = max(total // 10, 1)

    def advance(count: int) -> None:
        nonlocal done
        before, done = done, done + count
        if done // step > before // step and done < total:
            log(f"{name}: {done:,} of {total:,} contacts")

    return advance


def settle() -> None:
    """Bring the database to a steady state before measuring.

    VACUUM (ANALYZE) does what autovacuum would have done by now (visibility
    map for index-only scans, planner statistics); CHECKPOINT writes out the
    gigabytes a build or a purge dirtied, which would otherwise be flushed
    during the first operations measured and slow them down.
    """
    tables = [model._meta.db_table for model in (Contact, ActivityEvent, ListMembership, ContactList, Segment)]
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {', '.join(connection.ops.quote_name(table) for table in tables)}")
        try:
            with transaction.atomic():
                cursor.execute("CHECKPOINT")
        except DatabaseError:  # needs superuser or pg_checkpoint: a managed server may refuse it
            pass


def api_key(account: Account, *, name: str = KEY_NAME) -> str:
    """A new key named ``name`` for ``account`` (a previous run's key of that name is deleted)."""
    ApiKey.objects.filter(account=account, name=name).delete()
    _, raw_key = api_key_create(account=account, name=name)
    return raw_key


def scratch_account(name: str, *, contacts: int = 0, seed: int = 0) -> Account:
    """A fresh account ``name`` (purged first when it exists), seeded with ``contacts``."""
    existing = Account.objects.filter(name=name).first()
    if existing is not None:
        purge(existing)
    account = Account.objects.create(name=name)
    if contacts:
        seed_demo_data(account=account, contacts=contacts, seed=seed, lists=5, segments=0)
    return account


def remove(*names: str) -> None:
    for account in Account.objects.filter(name__in=names):
        purge(account)


def purge(account: Account) -> None:
    """Delete an account and all its rows, table by table in SQL.

    The ORM's delete would fetch every contact's id to cascade in Python: far
    too slow for a million contacts. Tables holding an ``account`` foreign key
    are emptied of the account's rows children first (a table referencing
    another such table goes before it); whatever else references the account
    is left to the ORM's delete of the account row itself.
    """
    owned = [
        model
        for model in apps.get_models()
        if any(item.name == "account" and item.related_model is Account for item in model._meta.concrete_fields)
    ]

    def referencing(model) -> list:
        return [
            other
            for other in owned
            if other is not model
            and any(item.many_to_one and item.related_model is model for item in other._meta.concrete_fields)
        ]

    ordered: list = []

    def visit(model, path=()):
        if model in ordered or model in path:
            return
        for other in referencing(model):
            visit(other, (*path, model))
        ordered.append(model)

    for model in owned:
        visit(model)
    with connection.cursor() as cursor:
        for model in ordered:
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"DELETE FROM {table} WHERE account_id = %s", [account.pk])
    account.delete()
