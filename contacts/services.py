"""Writes to contacts. Every function is keyword-only and atomic.

Concurrent writers never lose each other's changes: an update locks the row
(``SELECT … FOR UPDATE``) and applies the merge to what is stored at that
moment, so 50 parallel metadata merges keep all 50 keys. Uniqueness of phone
and email is left to the database's unique constraints, so two parallel
creates of one phone give one 201 and one 409, never two rows.
"""

import phonenumbers
from django.db import transaction
from django.db.models.functions import Now
from django.shortcuts import get_object_or_404
from django_countries.data import COUNTRIES
from rest_framework.exceptions import ValidationError

from accounts.models import Account
from contacts.api.serializers import check_metadata_limits
from contacts.constants import TAGS_MAX_COUNT
from contacts.models import Contact
from contacts.search import search_columns
from contacts_project.uniqueness import save_or_conflict

_UNIQUE_FIELDS = {"contact_phone_unique": "phone", "contact_email_unique": "email"}
_SEARCHED_FIELDS = {"phone", "email", "first_name", "last_name"}


def _derived_country(phone) -> str | None:
    """The phone's ISO country, or None for non-geographic numbers (+800, +882…)."""
    region = phonenumbers.region_code_for_number(phone) if phone is not None else None
    return region if region in COUNTRIES else None


def _refresh_search_columns(contact: Contact) -> None:
    columns = search_columns(
        phone=contact.phone, email=contact.email, first_name=contact.first_name, last_name=contact.last_name
    )
    for name, value in columns.items():
        setattr(contact, name, value)


def _merge_metadata(stored: dict, patch: dict) -> dict:
    """Shallow merge; a key patched to ``None`` is removed."""
    merged = dict(stored)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _require_identifier(contact: Contact) -> None:
    if not contact.phone and not contact.email:
        raise ValidationError({"phone": ["A contact needs a phone or an email."]}, code="required")


def _save(account: Account, contact: Contact, save) -> None:
    save_or_conflict(
        save,
        noun="contact",
        constraints=_UNIQUE_FIELDS,
        holder=lambda field: (
            Contact.objects.for_account(account)
            .filter(**{field: getattr(contact, field)})
            .exclude(pk=contact.pk)
            .values_list("id", flat=True)
            .first()
        ),
    )


@transaction.atomic
def contact_create(*, account: Account, data: dict) -> Contact:
    """Create a contact from validated fields (see ContactSerializer)."""
    data = dict(data)
    metadata = _merge_metadata({}, data.pop("metadata", {}))
    contact = Contact(account=account, metadata=metadata, **data)
    if not contact.country:
        contact.country = _derived_country(contact.phone)
    _require_identifier(contact)
    _refresh_search_columns(contact)
    _save(account, contact, lambda: contact.save(force_insert=True))
    return contact


def _locked(account: Account, contact_id: str) -> Contact:
    """The account's contact, locked for this transaction, with the database clock."""
    return get_object_or_404(
        Contact.objects.for_account(account).select_for_update().annotate(db_now=Now()), pk=contact_id
    )


def _save_changes(account: Account, contact: Contact, fields: set[str]) -> None:
    if fields & _SEARCHED_FIELDS:
        _refresh_search_columns(contact)
        fields |= {"search_vector", "phone_digits", "phone_national"}
    contact.updated_at = contact.db_now
    _save(account, contact, lambda: contact.save(update_fields=[*fields, "updated_at"]))


@transaction.atomic
def contact_update(*, account: Account, contact_id: str, data: dict) -> Contact:
    """Partial update: omitted fields stay, ``metadata`` merges shallowly, ``tags`` replaces."""
    contact = _locked(account, contact_id)
    data = dict(data)
    if "metadata" in data:
        data["metadata"] = _merge_metadata(contact.metadata, data["metadata"])
        try:
            check_metadata_limits(data["metadata"])
        except ValidationError as exc:
            raise ValidationError({"metadata": [str(exc.detail["metadata"][0])]}, code="invalid") from None
    if data.get("phone") and "country" not in data and not contact.country:
        data["country"] = _derived_country(data["phone"])
    changed = {field for field, value in data.items() if getattr(contact, field) != value}
    for field in changed:
        setattr(contact, field, data[field])
    _require_identifier(contact)
    if changed:
        _save_changes(account, contact, changed)
    return contact


@transaction.atomic
def contact_add_tags(*, account: Account, contact_id: str, tags: list[str]) -> Contact:
    """Append tags not yet present, keeping the stored order then the given order."""
    contact = _locked(account, contact_id)
    new_tags = [tag for tag in tags if tag not in contact.tags]
    if len(contact.tags) + len(new_tags) > TAGS_MAX_COUNT:
        raise ValidationError({"tags": [f"A contact can have at most {TAGS_MAX_COUNT} tags."]}, code="max_length")
    if new_tags:
        contact.tags = contact.tags + new_tags
        _save_changes(account, contact, {"tags"})
    return contact


@transaction.atomic
def contact_remove_tag(*, account: Account, contact_id: str, tag: str) -> Contact:
    """Remove one tag; removing an absent tag changes nothing (not even ``updated_at``)."""
    contact = _locked(account, contact_id)
    if tag in contact.tags:
        contact.tags = [existing for existing in contact.tags if existing != tag]
        _save_changes(account, contact, {"tags"})
    return contact


@transaction.atomic
def contact_delete(*, account: Account, contact_id: str) -> None:
    """Delete a contact and everything attached to it (cascades).

    The contact row is locked first: writers that touch a contact and then a
    list (adding members takes the contacts, then the list's counter) and
    this delete (whose cascade takes the lists' counters) then lock in one
    order, contact before list, and cannot deadlock.
    """
    contact = get_object_or_404(Contact.objects.for_account(account).select_for_update(), pk=contact_id)
    contact.delete()
