"""Opt-outs that outlive the contact (API.md §5).

When a contact that opted out of a channel is deleted, the account keeps, per
channel, a keyed hash (HMAC-SHA256 with ``settings.CONTACTS_HMAC_KEY``) of its
E.164 phone and of its lower-cased email, and nothing else. A contact created
later in that account with a matching phone or email, by any path that goes
through ``contact_create`` or the importers, starts ``opted_out`` on those
channels. This is what data-protection regulators expect of a sender: keep an
objector on a suppression list rather than forget the objection. The key must
stay the same for the life of the data: hashes made with another key match
nothing.
"""

import hashlib
import hmac

from django.conf import settings

from contacts.models import SuppressionEntry
from contacts.preferences import OPTED_OUT
from contacts.validation import e164


def identifier_hashes(*, phone, email: str | None) -> list[str]:
    """Keyed hashes of a contact's identifiers (phone in E.164, email lower-cased)."""
    key = settings.CONTACTS_HMAC_KEY.encode()
    values = []
    if phone:
        values.append(f"phone:{e164(phone)}")
    if email:
        values.append(f"email:{email.lower()}")
    return [hmac.new(key, value.encode(), hashlib.sha256).hexdigest() for value in values]


def suppress_deleted_contact(contact) -> int:
    """Record the opted-out channels of a contact about to be deleted; return the entries added."""
    channels = [channel for channel, status in contact.preferences.items() if status == OPTED_OUT]
    hashes = identifier_hashes(phone=contact.phone, email=contact.email)
    entries = [
        SuppressionEntry(account_id=contact.account_id, channel=channel, identifier_hash=identifier_hash)
        for channel in channels
        for identifier_hash in hashes
    ]
    return len(SuppressionEntry.objects.bulk_create(entries, ignore_conflicts=True)) if entries else 0


def suppressed_channels(*, account, phone, email: str | None) -> set[str]:
    """Channels on which a contact with these identifiers must start opted out."""
    hashes = identifier_hashes(phone=phone, email=email)
    if not hashes:
        return set()
    return set(
        SuppressionEntry.objects.for_account(account)
        .filter(identifier_hash__in=hashes)
        .values_list("channel", flat=True)
        .distinct()
    )
