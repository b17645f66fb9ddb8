"""Writes to lists and their memberships; ``member_count`` follows by trigger."""

from django.db import connection, transaction
from rest_framework.exceptions import ValidationError

from accounts.models import Account
from contacts_project.uniqueness import save_named, update_named
from lists.models import ContactList, ListMembership

MAX_IDS_PER_ADD = 1000


NAME_CONSTRAINT = "list_name_unique"


@transaction.atomic
def list_create(*, account: Account, name: str, description: str = "") -> ContactList:
    contact_list = ContactList(account=account, name=name, description=description)
    save_named(contact_list, constraint=NAME_CONSTRAINT)
    return contact_list


@transaction.atomic
def list_update(*, contact_list: ContactList, data: dict) -> ContactList:
    return update_named(contact_list, data, constraint=NAME_CONSTRAINT)


def list_delete(*, contact_list: ContactList) -> None:
    """Delete the list and its memberships; the contacts stay."""
    contact_list.delete()


_KNOWN_CONTACTS = """
SELECT id FROM contacts_contact WHERE account_id = %(account)s AND id = ANY(%(ids)s) ORDER BY id FOR KEY SHARE
"""
_ADD_MEMBERS = """
INSERT INTO lists_listmembership (account_id, contact_list_id, contact_id, added_at)
SELECT %(account)s, %(list)s, contact.id, statement_timestamp()
  FROM contacts_contact contact
 WHERE contact.account_id = %(account)s AND contact.id = ANY(%(ids)s)
 ORDER BY contact.id  -- one insertion order, so overlapping adds wait instead of deadlocking
ON CONFLICT (contact_list_id, contact_id) DO NOTHING
RETURNING contact_id
"""


@transaction.atomic
def list_add_members(*, account: Account, contact_list: ContactList, contact_ids: list[str]) -> dict:
    """Add the account's contacts to the list in one statement; all or nothing on unknown ids.

    The contacts are locked ``FOR KEY SHARE`` while checking, so none can be
    deleted between the check and the insert. Ids of another account are
    unknown, exactly like ids that never existed.
    """
    ids = list(dict.fromkeys(contact_ids))
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN_CONTACTS, {"account": account.pk, "ids": ids})
        known = {row[0] for row in cursor.fetchall()}
        unknown = [contact_id for contact_id in ids if contact_id not in known]
        if unknown:
            raise ValidationError(
                {"contact_ids": [f"Unknown contact ids: {', '.join(unknown)}."]}, code="unknown_contacts"
            )
        cursor.execute(_ADD_MEMBERS, {"account": account.pk, "list": contact_list.pk, "ids": ids})
        added = cursor.rowcount
    return {"added": added, "already_members": len(ids) - added}


def list_remove_member(*, contact_list: ContactList, contact_id: str) -> None:
    """Remove a contact from the list; idempotent (absent or unknown: nothing happens)."""
    ListMembership.objects.filter(contact_list=contact_list, contact_id=contact_id).delete()
