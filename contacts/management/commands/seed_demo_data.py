import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.models import Account
from contacts.seeding import BATCH_SIZE, DEFAULT_LISTS, DEFAULT_SEGMENTS, seed_demo_data
from contacts_project.progress import Progress


class Command(BaseCommand):
    help = (
        "Fill an account (created when missing) with realistic demo data: N contacts, lists with members "
        f"(default {DEFAULT_LISTS}), segments (default {DEFAULT_SEGMENTS}) and activity events. The same --seed "
        "(and --lists) gives the same data (ids and timestamps aside). "
        "Progress goes to stderr, the summary to stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="account name")
        parser.add_argument("--contacts", type=int, required=True, help="number of contacts to add")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument(
            "--batch-size", type=int, default=BATCH_SIZE, help=f"contacts per COPY and commit (default {BATCH_SIZE})"
        )
        parser.add_argument(
            "--lists", type=int, default=DEFAULT_LISTS, help=f"lists to create and fill (default {DEFAULT_LISTS})"
        )
        parser.add_argument(
            "--segments", type=int, default=DEFAULT_SEGMENTS, help=f"segments to create (default {DEFAULT_SEGMENTS})"
        )

    def handle(self, *args, account, contacts, seed, batch_size, lists, segments, **options):
        account_name = account.strip()
        if not account_name or len(account_name) > 200:
            raise CommandError("--account must be 1 to 200 characters.")
        if contacts < 0:
            raise CommandError("--contacts must be 0 or more.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if lists < 0 or segments < 0:
            raise CommandError("--lists and --segments must be 0 or more.")
        account, created = Account.objects.get_or_create(name=account_name)
        with connection.cursor() as cursor:
            # Bulk loading is not a web request: the per-statement timeout does not apply.
            cursor.execute("SET statement_timeout = 0")
            # Each batch commits without waiting for its WAL flush: a crash may
            # lose the last batches of demo data (never consistency), and the
            # load no longer stalls on a disk flush every 10,000 contacts.
            cursor.execute("SET synchronous_commit = off")
        started = time.monotonic()
        with Progress(total=contacts, unit="contacts", stream=self.stderr._out) as progress:
            summary = seed_demo_data(
                account=account,
                contacts=contacts,
                seed=seed,
                batch_size=batch_size,
                lists=lists,
                segments=segments,
                on_contacts=progress.advance,
            )
        elapsed = time.monotonic() - started
        rate = summary.contacts / elapsed if elapsed else 0.0
        verb = "Created account" if created else "Account"
        self.stdout.write(
            f"{verb} {account.name} ({account.id}), seed {seed}: {summary.contacts:,} contacts, "
            f"{summary.lists} lists with {summary.memberships:,} memberships, {summary.segments} segments, "
            f"{summary.events:,} activity events in {elapsed:.1f}s ({rate:,.0f} contacts/s).",
            style_func=self.style.SUCCESS,
        )
