"""Writes to contacts. Every function is keyword-only and atomic.

Concurrent writers never lose each other's changes: an update locks the row
(``SELECT … FOR UPDATE``) and applies the merge to what is stored at that
moment, so 50 parallel metadata merges keep all 50 keys. Uniqueness of phone
and email is left to the database's unique constraints, so two parallel
creates of one phone give one 201 and one 409, never two rows.
"""

from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import ValidationError

from accounts.models import Account
from contacts.constants import TAGS_MAX_COUNT, UNSET
from contacts.models import ActivityEvent, Contact
from contacts.preferences import OPTED_OUT
from contacts.search import search_columns
from contacts.suppression import suppress_deleted_contact, suppressed_channels
from contacts.validation import FieldInvalid, check_metadata_limits, country_from_phone
from contacts_project.uniqueness import save_or_conflict

_UNIQUE_FIELDS = {"contact_phone_unique": "phone", "contact_email_unique": "email"}
_SEARCHED_FIELDS = {"phone", "email", "first_name", "last_name"}
PREFERENCE_UPDATED = "preference.updated"
API_REASON = "api"
SUPPRESSION_REASON = "suppression_list"


def _refresh_search_columns(contact: Contact) -> None:
    columns = search_columns(
        account_id=contact.account_id,
        phone=contact.phone,
        email=contact.email,
        first_name=contact.first_name,
        last_name=contact.last_name,
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
        contact.country = country_from_phone(contact.phone)
    _require_identifier(contact)
    _refresh_search_columns(contact)
    suppressed = _apply_suppression(contact)
    _save(account, contact, lambda: contact.save(force_insert=True))
    _record_preference_events(contact, suppressed, reason=SUPPRESSION_REASON)
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

    def save():
        contact.save(update_fields=[*fields, "updated_at"])

    if fields.isdisjoint(_UNIQUE_FIELDS.values()):
        # No unique value changes, so no violation to answer with a 409: no
        # savepoint around the UPDATE (two round trips of every tag, name or
        # metadata change).
        save()
    else:
        _save(account, contact, save)


@transaction.atomic
def contact_update(*, account: Account, contact_id: str, data: dict) -> Contact:
    """Partial update: omitted fields stay, ``metadata`` merges shallowly, ``tags`` replaces."""
    contact = _locked(account, contact_id)
    data = dict(data)
    if "metadata" in data:
        data["metadata"] = _merge_metadata(contact.metadata, data["metadata"])
        try:
            check_metadata_limits(data["metadata"])
        except FieldInvalid as error:
            raise ValidationError({"metadata": [error.message]}, code=error.code) from None
    if data.get("phone") and "country" not in data and not contact.country:
        data["country"] = country_from_phone(data["phone"])
    changed = {field for field, value in data.items() if getattr(contact, field) != value}
    for field in changed:
        setattr(contact, field, data[field])
    _require_identifier(contact)
    suppressed = _apply_suppression(contact) if changed & {"phone", "email"} else []
    if suppressed:
        changed.add("preferences")
    if changed:
        _save_changes(account, contact, changed)
    _record_preference_events(contact, suppressed, reason=SUPPRESSION_REASON)
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
    suppress_deleted_contact(contact)
    contact.delete()


def _apply_suppression(contact: Contact) -> list[tuple[str, str, str]]:
    """Opt the contact out of every channel its identifiers were suppressed on; return the changes."""
    channels = suppressed_channels(account=contact.account, phone=contact.phone, email=contact.email)
    changes = []
    for channel in sorted(channels):
        old = contact.preference_map[channel]
        if old != OPTED_OUT:
            contact.preferences = {**contact.preferences, channel: OPTED_OUT}
            changes.append((channel, old, OPTED_OUT))
    return changes


def _record_preference_events(
    contact: Contact, changes: list[tuple[str, str, str]], *, api_key_id: str | None = None, reason: str
) -> None:
    """One ``preference.updated`` event per changed channel (API.md §5)."""
    ActivityEvent.objects.bulk_create(
        ActivityEvent(
            account_id=contact.account_id,
            contact=contact,
            type=PREFERENCE_UPDATED,
            channel=channel,
            data={"old_status": old, "new_status": new, "api_key_id": api_key_id, "reason": reason},
        )
        for channel, old, new in changes
    )


@transaction.atomic
def contact_set_preferences(
    *, account: Account, contact_id: str, statuses: dict[str, str], api_key_id: str | None
) -> Contact:
    """Set some channels' statuses; record one event per channel that actually changed."""
    contact = _locked(account, contact_id)
    current = contact.preference_map
    changes = [
        (channel, current[channel], status) for channel, status in statuses.items() if current[channel] != status
    ]
    if not changes:
        return contact
    stored = dict(contact.preferences)
    for channel, _, status in changes:
        if status == UNSET:
            stored.pop(channel, None)
        else:
            stored[channel] = status
    contact.preferences = stored
    _save_changes(account, contact, {"preferences"})
    _record_preference_events(contact, changes, api_key_id=api_key_id, reason=API_REASON)
    return contact


@transaction.atomic
def activity_record(*, account: Account, contact_id: str, data: dict) -> tuple[ActivityEvent, bool]:
    """Record an event; a repeat of (``message_id``, ``type``) for the contact returns the stored one.

    Returns ``(event, created)``. The unique constraint decides, so concurrent
    retries of one delivery receipt store exactly one event.
    """
    contact = get_object_or_404(Contact.objects.for_account(account), pk=contact_id)
    event = ActivityEvent(account=account, contact=contact, **data)
    try:
        with transaction.atomic():
            event.save(force_insert=True)
    except IntegrityError as error:
        if getattr(getattr(error.__cause__, "diag", None), "constraint_name", None) != "activity_receipt":
            raise
        stored = ActivityEvent.objects.get(contact=contact, message_id=event.message_id, type=event.type)
        return stored, False
    event.refresh_from_db(fields=["occurred_at", "created_at"])
    return event, True
