from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import Account, ApiKey
from accounts.services import api_key_create
from contacts_project.embedded_db import data_dir

DEMO_ACCOUNT = "Demo"


class Command(BaseCommand):
    help = (
        "Ensure the local demo account and print its API key with a ready-to-paste curl line. "
        "The key is kept in the git-ignored data folder so every run prints the same one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url, **options):
        account, _ = Account.objects.get_or_create(name=DEMO_ACCOUNT)
        key_file = data_dir() / "demo_api_key"
        raw_key = key_file.read_text().strip() if key_file.exists() else ""
        parts = ApiKey.split_key(raw_key)
        stored = ApiKey.objects.active().filter(account=account, prefix=parts[0]).first() if parts else None
        if stored is None or not stored.matches(raw_key):
            _, raw_key = api_key_create(account=account, name="demo")
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(raw_key + "\n")
            key_file.chmod(0o600)
        line = "=" * 72
        self.stdout.write(line)
        self.stdout.write(f"Contacts API for account '{account.name}' ({account.id})")
        self.stdout.write(f"API key: {raw_key}")
        self.stdout.write("Try it:")
        self.stdout.write(
            f"  curl -s -X POST {base_url}/v1/contacts -H 'Authorization: Bearer {raw_key}' "
            '-H \'Content-Type: application/json\' -d \'{"phone": "+14155552671", "first_name": "Ada"}\''
        )
        self.stdout.write(f"  curl -s {base_url}/v1/contacts -H 'Authorization: Bearer {raw_key}'")
        self.stdout.write(f"Docs: {base_url}/v1/docs   Admin: {base_url}/admin/")
        if settings.DEBUG:
            self.stdout.write("(debug settings: local development only)")
        self.stdout.write(line)
