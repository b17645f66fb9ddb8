from django.core.management.base import BaseCommand, CommandError

from accounts.services import account_get_or_create_with_key


class Command(BaseCommand):
    help = (
        "Create an API key for an account (the account is created when it does not exist). "
        "The key is printed once, alone on the last line of stdout; only its hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="account name")
        parser.add_argument("--name", default="", help="a label for the key, e.g. 'production'")

    def handle(self, *args, account, name, **options):
        account_name = account.strip()
        if not account_name or len(account_name) > 200:
            raise CommandError("--account must be 1 to 200 characters.")
        account, created, api_key, raw_key = account_get_or_create_with_key(name=account_name, key_name=name[:100])
        verb = "Created account" if created else "Account"
        self.stderr.write(f"{verb} {account.name} ({account.id}); new key {api_key.id}:")
        self.stdout.write(raw_key)
