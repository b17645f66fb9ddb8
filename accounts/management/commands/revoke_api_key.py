from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiKey
from accounts.services import api_key_revoke


class Command(BaseCommand):
    help = "Revoke an API key, named by its id (key_…), its 12-character prefix or the whole key."

    def add_arguments(self, parser):
        parser.add_argument("key", help="key id, prefix or the key itself")

    def handle(self, *args, key, **options):
        parts = ApiKey.split_key(key)
        lookup = {"prefix": parts[0]} if parts else ({"pk": key} if key.startswith("key_") else {"prefix": key})
        api_key = ApiKey.objects.select_related("account").filter(**lookup).first()
        if api_key is None:
            raise CommandError(f"No API key matches {key!r}.")
        was_active = api_key.is_active
        api_key_revoke(api_key=api_key)
        state = "Revoked" if was_active else "Already revoked:"
        self.stdout.write(self.style.SUCCESS(f"{state} {api_key.id} of account {api_key.account.name}."))
