from django.core.management.base import BaseCommand

from contacts_project.api.idempotency import idempotency_purge_expired
from contacts_project.api.ratelimit import rate_limit_purge_stale


class Command(BaseCommand):
    help = (
        "Delete idempotency records older than 24 hours and rate-limit counters of ended windows. "
        "Neither is needed for correctness (expired rows are ignored and reused); run it from cron, "
        "e.g. hourly, to keep the tables small."
    )

    def handle(self, *args, **options):
        records = idempotency_purge_expired()
        counters = rate_limit_purge_stale()
        self.stdout.write(
            self.style.SUCCESS(f"Deleted {records} idempotency record(s) and {counters} rate-limit counter(s).")
        )
