"""Reads and writes of segments. Membership is never stored: it is the compiled rules, run now."""

from django.db import transaction

from accounts.models import Account
from contacts.models import Contact
from contacts_project.uniqueness import save_named, update_named
from segments.models import Segment
from segments.rules import compile_rules

NAME_CONSTRAINT = "segment_name_unique"


def segment_contacts(*, account: Account, rules: dict):
    """The account's contacts matching ``rules`` (already validated): one SQL query."""
    return Contact.objects.for_output().for_account(account).filter(compile_rules(rules))


@transaction.atomic
def segment_create(*, account: Account, name: str, rules: dict) -> Segment:
    segment = Segment(account=account, name=name, rules=rules)
    save_named(segment, constraint=NAME_CONSTRAINT)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, data: dict) -> Segment:
    return update_named(segment, data, constraint=NAME_CONSTRAINT)
