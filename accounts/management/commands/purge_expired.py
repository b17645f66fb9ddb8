from django.core.management.base import BaseCommand

from contacts.search import purge_unused_search_words
from contacts_project.api.idempotency import idempotency_purge_expired
from contacts_project.api.ratelimit import rate_limit_purge_stale


class Command(BaseCommand):
    help = (
        "Delete idempotency records older than 24 hours, rate-limit counters of ended windows and the "
        "search vocabulary's words no contact holds any more. None is needed for correctness (expired rows "
        "are ignored and reused, unused words match nothing); run it from cron, e.g. hourly, to keep the "
        "tables small and deleted contacts' names gone."
    )

    def handle(self, *args, **options):
        records = idempotency_purge_expired()
        counters = rate_limit_purge_stale()
        words = purge_unused_search_words()
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {records} idempotency record(s), {counters} rate-limit counter(s) "
                f"and {words} unused search word(s)."
            )
        )
