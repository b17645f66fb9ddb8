"""What the suite measures: each operation's requests, prepared from the data set.

An operation with many distinct targets (get by id over 2,000 ids, searches
for 200 different names, cursors 5,000 pages deep, filter combinations from
the data) has them all in its targets file; the load generator cycles through
them, so no answer is served from a single hot row. Read targets all come
from the big account (1,000,000 contacts); writes go to the run's scratch
account (see ``bench.dataset``).
"""

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import quote, urlencode

from django.db import connection
from django.utils import timezone

from accounts.models import Account
from contacts.models import ActivityEvent, Contact
from contacts.search import fold
from contacts.seeding import CAMPAIGNS, DemoData
from contacts_project.api.pagination import DEFAULT_LIMIT, KeysetPagination
from lists.models import ContactList
from segments.models import Segment

Line = tuple[str, str, str | None]  # method, path (with query), JSON body

SAMPLE_CONTACTS = 2000
SAMPLE_TERMS = 200
DEEP_PAGE = 5000
DEEP_TARGETS = 200
FILTER_COMBINATIONS = 40
LISTS_MEASURED = 10
# Three segments of different shapes, by their seeded names (contacts/seeding.py).
SEGMENTS = (
    ("US customers", "two equalities (btree)"),
    ("VIP or enterprise", "tag OR metadata (GIN)"),
    ("Newsletter readers still active", "list membership AND NOT IN"),
)
WRITE_SEED = 6006
CONTACTS = connection.ops.quote_name(Contact._meta.db_table)


@dataclass
class Operation:
    """One row of the table: a request shape, its targets, and the floor it is held to."""

    key: str
    label: str
    floor: str | None  # a family of bench.floors.FLOORS
    targets: list[Line] = field(default_factory=list)
    # Writes: a fresh request each call (a create never repeats a phone), instead of ``targets``.
    fresh: Callable[[int], list[Line]] | None = None
    account: str = "big"  # whose key sends it: "big", "writes" or "none"

    @property
    def writes(self) -> bool:
        return self.fresh is not None

    def lines(self, count: int) -> list[Line]:
        """Targets for a load run of about ``count`` requests (reads: all of them, cycled)."""
        return self.fresh(count) if self.fresh else self.targets

    def sample(self, count: int) -> list[Line]:
        """``count`` requests spread over the targets, for the SQL capture."""
        if self.fresh:
            return self.fresh(count)
        step = max(1, len(self.targets) // count)
        return self.targets[::step][:count]


def _get(path: str, **query) -> Line:
    return ("GET", f"{path}?{urlencode(query, quote_via=quote)}" if query else path, None)


def read_operations(big: Account) -> list[Operation]:
    contacts = Contact.objects.for_account(big)
    sample = list(
        contacts.order_by("id").values("id", "first_name", "last_name", "email", "phone_digits", "phone_national")[
            :SAMPLE_CONTACTS
        ]
    )  # ids are random: the first 2,000 by id are spread over the whole account
    people = sample[:SAMPLE_TERMS]
    operations = [
        Operation("livez", "no-database view (GET /livez)", None, [("GET", "/livez", None)], account="none"),
        Operation("get", "get by id", "get", [_get(f"/v1/contacts/{row['id']}") for row in sample]),
        Operation("list_first", "list, first page", "list", [_get("/v1/contacts")]),
        Operation("list_deep", f"list, page {DEEP_PAGE:,} (cursor)", "deep", _deep_pages(big)),
        Operation("list_filtered", "list, stage + country + tag", "list", _filter_combinations(big)),
        Operation("search_prefix", "search: name prefix", "search", _searches(people, _name_prefix)),
        Operation("search_name", "search: full name", "search", _searches(people, _full_name)),
        Operation("search_domain", "search: email domain", "search", _searches(people, _email_domain)),
        Operation("search_last4", "search: phone last 4 digits", "search", _searches(people, _last_four)),
        Operation("search_national", "search: phone national prefix", "search", _searches(people, _national)),
    ]
    for number, (segment, shape) in enumerate(_segments(big), start=1):
        path = f"/v1/contacts/segments/{segment.pk}"
        operations.append(Operation(f"segment_count_{number}", f"segment count: {shape}", "count", [_get(path)]))
        operations.append(
            Operation(f"segment_members_{number}", f"segment members: {shape}", "members", [_get(f"{path}/members")])
        )
    largest = ContactList.objects.for_account(big).order_by("-member_count", "id")[:LISTS_MEASURED]
    operations += [
        Operation(
            "list_members",
            f"list members page ({LISTS_MEASURED} largest lists)",
            "list",
            [_get(f"/v1/contacts/lists/{item.pk}/members") for item in largest],
        ),
        Operation(
            "optouts",
            "opt-outs page (any channel and each)",
            "list",
            [_get("/v1/contacts/optouts")]
            + [_get("/v1/contacts/optouts", channel=channel) for channel in ("sms", "whatsapp", "email", "rcs")],
        ),
        Operation("activity", "activity timeline page", "list", _timelines(big, [row["id"] for row in sample])),
    ]
    return operations


def write_operations(writes: Account) -> list[Operation]:
    return [
        Operation("create", "create", None, fresh=_creations(writes), account="writes"),
        Operation("update", "update with metadata merge", None, fresh=_updates(writes), account="writes"),
    ]


def _deep_pages(big: Account) -> list[Line]:
    """Cursors of pages 5,000 to 5,199 (or as deep as a small account goes)."""
    total = Contact.objects.for_account(big).count()
    depth = max(0, min(DEEP_PAGE, total // DEFAULT_LIMIT - 1))
    with connection.cursor() as cursor:
        # The row ending page `depth` is the cursor of page `depth + 1`.
        cursor.execute(
            f"SELECT created_at, id FROM {CONTACTS} WHERE account_id = %s "
            "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT %s",
            [big.pk, max(depth * DEFAULT_LIMIT - 1, 0), DEEP_TARGETS * DEFAULT_LIMIT],
        )
        rows = cursor.fetchall()[::DEFAULT_LIMIT] or []
    pagination = KeysetPagination()
    ordering = pagination.ordering
    cursors = [
        pagination.encode_cursor(ordering, SimpleNamespace(created_at=created_at, id=pk)) for created_at, pk in rows
    ]
    return [_get("/v1/contacts", cursor=value) for value in cursors] or [_get("/v1/contacts")]


def _filter_combinations(big: Account) -> list[Line]:
    """(stage, country, tag) triples that occur, from the most to the least common, evenly picked."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT lifecycle_stage, country, tag, count(*) FROM {CONTACTS}, unnest(tags) AS tag "
            "WHERE account_id = %s AND country IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3",
            [big.pk],
        )
        rows = cursor.fetchall()
    step = max(1, len(rows) // FILTER_COMBINATIONS)
    return [
        _get("/v1/contacts", lifecycle_stage=stage, country=country, tag=tag)
        for stage, country, tag, _ in rows[::step][:FILTER_COMBINATIONS]
    ] or [_get("/v1/contacts", lifecycle_stage="customer")]


def _first_word(text: str) -> str:
    return next(iter(fold(text).replace("-", " ").split()), "")


def _name_prefix(row: dict, index: int) -> str | None:
    word = _first_word(row["first_name"] if index % 2 else row["last_name"])
    return word[:3] or None


def _full_name(row: dict, index: int) -> str | None:
    return f"{row['first_name']} {row['last_name']}".strip() or None


def _email_domain(row: dict, index: int) -> str | None:
    return row["email"].partition("@")[2] if row["email"] else None


def _last_four(row: dict, index: int) -> str | None:
    return row["phone_digits"][-4:] if row["phone_digits"] else None


def _national(row: dict, index: int) -> str | None:
    return row["phone_national"][:6] if row["phone_national"] else None


def _searches(people: list[dict], term: Callable[[dict, int], str | None]) -> list[Line]:
    terms = [value for index, row in enumerate(people) if (value := term(row, index))]
    return [_get("/v1/contacts", search=value) for value in terms]


def _segments(big: Account) -> list[tuple[Segment, str]]:
    """The three named segments; in a data set without them, the account's first three."""
    by_name = {segment.name: segment for segment in Segment.objects.for_account(big)}
    chosen = [(by_name[name], shape) for name, shape in SEGMENTS if name in by_name]
    if len(chosen) < len(SEGMENTS):
        others = [segment for segment in by_name.values() if segment not in {item for item, _ in chosen}]
        chosen += [(segment, segment.name) for segment in sorted(others, key=lambda s: s.name)]
    return chosen[: len(SEGMENTS)]


def _timelines(big: Account, contact_ids: list[str]) -> list[Line]:
    with_events = sorted(
        set(
            ActivityEvent.objects.for_account(big)
            .filter(contact_id__in=contact_ids)
            .values_list("contact_id", flat=True)
        )
    )
    return [_get(f"/v1/contacts/{contact_id}/activity") for contact_id in with_events] or [
        _get(f"/v1/contacts/{contact_ids[0]}/activity")
    ]


def _creations(writes: Account) -> Callable[[int], list[Line]]:
    """Realistic new contacts (seeded generator), none sharing a phone or email with another or the account."""
    contacts = Contact.objects.for_account(writes)
    taken_phones = {str(phone) for phone in contacts.exclude(phone=None).values_list("phone", flat=True)}
    taken_emails = set(contacts.exclude(email=None).values_list("email", flat=True))
    people = DemoData(
        seed=WRITE_SEED,
        count=10**7,
        anchor=timezone.now(),
        taken_phones=taken_phones,
        taken_emails=taken_emails,
    ).contacts()

    def body(person) -> str:
        fields = {
            "phone": person.phone_e164,
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "lifecycle_stage": person.lifecycle_stage,
            "tags": person.tags,
            "metadata": person.metadata,
        }
        return json.dumps({key: value for key, value in fields.items() if value is not None}, ensure_ascii=False)

    def fresh(count: int) -> list[Line]:
        return [("POST", "/v1/contacts", body(person)) for person in itertools.islice(people, count)]

    return fresh


def _updates(writes: Account) -> Callable[[int], list[Line]]:
    """PATCHes merging two metadata keys into the scratch account's contacts, round robin."""
    ids = list(Contact.objects.for_account(writes).order_by("id").values_list("id", flat=True))
    sequence: Iterator[int] = itertools.count(1)

    def fresh(count: int) -> list[Line]:
        lines = []
        for number in itertools.islice(sequence, count):
            body = {"metadata": {"last_campaign": CAMPAIGNS[number % len(CAMPAIGNS)], "touches": number}}
            lines.append(("PATCH", f"/v1/contacts/{ids[number % len(ids)]}", json.dumps(body)))
        return lines

    return fresh
