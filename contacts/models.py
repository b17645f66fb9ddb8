from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Now, Reverse

from contacts.constants import DEFAULT_LIFECYCLE_STAGE
from contacts.fields import StoredE164Field
from contacts.preferences import optout_indexes, statuses
from contacts.validation import e164
from contacts_project.ids import IdFactory
from contacts_project.tenancy import AccountOwned, AccountScopedQuerySet


class ContactQuerySet(AccountScopedQuerySet):
    def search(self, text: str, *, accounts):
        """Contacts matching every term of ``text`` (API.md §4); see contacts/search.py.

        ``accounts`` (accounts or their ids) are those the queryset is already
        narrowed to: the search index is asked for their contacts' lexemes only.
        """
        from contacts.search import apply_search

        return apply_search(self, text, [getattr(account, "pk", account) for account in accounts])

    def for_output(self):
        """Without the search columns: only search reads them, in SQL; the tsvector is a row's widest value."""
        return self.defer("search_vector", "phone_digits", "phone_national")


class Contact(AccountOwned):
    """A person an account messages, with their channels, tags and custom data."""

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("con"), editable=False)
    phone = StoredE164Field(null=True, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    country = models.CharField(max_length=2, null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=32, default=DEFAULT_LIFECYCLE_STAGE)
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Only channels that were ever set are stored; the rest read as "unset".
    preferences = models.JSONField(default=dict, blank=True)

    # Search columns, written by contacts/search.py whenever phone, email or a
    # name changes. The phone digits use the "C" collation so that a prefix is
    # a plain btree range (the default collation's ordering ignores nothing in
    # digits, but "C" keeps the range comparison cheap and locale-proof).
    search_vector = SearchVectorField(null=True, editable=False)
    phone_digits = models.CharField(max_length=20, null=True, editable=False, db_collation="C")
    phone_national = models.CharField(max_length=20, null=True, editable=False, db_collation="C")

    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    objects = ContactQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "phone"], condition=models.Q(phone__isnull=False), name="contact_phone_unique"
            ),
            models.UniqueConstraint(
                fields=["account", "email"], condition=models.Q(email__isnull=False), name="contact_email_unique"
            ),
        ]
        indexes = [
            # The default listing (newest first) and its keyset seek.
            models.Index("account", models.F("created_at").desc(), models.F("id").desc(), name="contact_listing"),
            models.Index("account", "lifecycle_stage", "created_at", "id", name="contact_stage"),
            models.Index("account", "country", "created_at", "id", name="contact_country"),
            # Stage and country together is the commonest pair of filters (customers in the US);
            # alone, each index above walks the other's misses.
            models.Index("account", "lifecycle_stage", "country", "created_at", "id", name="contact_stage_country"),
            models.Index("account", "updated_at", name="contact_updated"),
            GinIndex("tags", name="contact_tags"),
            # Segment rules test metadata equality by containment (metadata @> {"k": v}).
            GinIndex(fields=["metadata"], opclasses=["jsonb_path_ops"], name="contact_metadata"),
            GinIndex("search_vector", name="contact_search"),
            models.Index("account", "phone_digits", name="contact_phone_digits"),
            models.Index("account", "phone_national", name="contact_phone_national"),
            models.Index(models.F("account"), Reverse("phone_digits"), name="contact_phone_reversed"),
            *optout_indexes(),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or str(self.phone or self.id)

    @property
    def phone_e164(self) -> str | None:
        """The phone as stored (E.164 text), without making a PhoneNumber of it when it was loaded as text."""
        value = self.__dict__.get("phone") if "phone" in self.__dict__ else self.phone
        return (value or None) if isinstance(value, str) or value is None else e164(value)

    @property
    def preference_map(self) -> dict[str, str]:
        return statuses(self.preferences)


class SearchWord(models.Model):
    """A word lexeme some contact's ``search_vector`` holds, its account tag first: the search's vocabulary.

    A prefix term with a few completions here is asked as those words,
    exactly (contacts/search.py). Triggers on ``contacts_contact`` (migration
    0010) add the words of every written vector in the writing transaction,
    so every word a visible contact holds is here. Writes never take words
    out: one no contact holds any more only costs a search an alternative
    that matches nothing, and ``manage.py purge_expired`` deletes it
    (``purge_unused_search_words()``). No uniqueness: a unique index would
    make two transactions adding the same new word wait for each other (two
    of the import's writers, which commit in file order, could wait for
    each other forever); a race adds the word twice, which the lookup's
    ``DISTINCT`` hides.
    """

    lexeme = models.TextField(db_collation="C")

    class Meta:
        indexes = [models.Index(fields=["lexeme"], name="search_word_lexeme")]

    def __str__(self):
        return self.lexeme


class SuppressionEntry(AccountOwned):
    """A channel opt-out kept after its contact was deleted: a keyed hash of a phone or email, never the value."""

    channel = models.CharField(max_length=16)
    # HMAC-SHA256 (server key) of "phone:<E.164>" or "email:<lower-cased>".
    identifier_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        verbose_name_plural = "suppression entries"
        constraints = [
            models.UniqueConstraint("account", "identifier_hash", "channel", name="suppression_unique"),
        ]

    def __str__(self):
        return f"{self.channel} {self.identifier_hash[:12]}…"


class ActivityEvent(AccountOwned):
    """One thing that happened to a contact: a message event, an agent interaction, a preference change."""

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("act"), editable=False)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=32)
    channel = models.CharField(max_length=16, null=True, blank=True)
    occurred_at = models.DateTimeField(db_default=Now())
    message_id = models.CharField(max_length=255, null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [
            # Delivery-receipt retries store one event (API.md §6).
            models.UniqueConstraint(
                "contact", "message_id", "type", condition=models.Q(message_id__isnull=False), name="activity_receipt"
            ),
        ]
        indexes = [
            # The timeline (newest first, keyset on occurred_at, id); since/until are ranges on it.
            models.Index("contact", models.F("occurred_at").desc(), models.F("id").desc(), name="activity_timeline"),
            models.Index(
                "contact", "type", models.F("occurred_at").desc(), models.F("id").desc(), name="activity_by_type"
            ),
            models.Index(
                "contact", "channel", models.F("occurred_at").desc(), models.F("id").desc(), name="activity_by_channel"
            ),
        ]

    def __str__(self):
        return f"{self.type} {self.id}"
