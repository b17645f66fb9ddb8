from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.functions import Now, Reverse
from phonenumber_field.modelfields import PhoneNumberField

from contacts.constants import CHANNELS, DEFAULT_LIFECYCLE_STAGE, UNSET
from contacts_project.ids import IdFactory
from contacts_project.tenancy import AccountOwned, AccountScopedQuerySet


class ContactQuerySet(AccountScopedQuerySet):
    def search(self, text: str):
        """Contacts matching every term of ``text`` (API.md §4); see contacts/search.py."""
        from contacts.search import apply_search

        return apply_search(self, text)


class Contact(AccountOwned):
    """A person an account messages, with their channels, tags and custom data."""

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("con"), editable=False)
    phone = PhoneNumberField(null=True, blank=True)
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
            models.Index("account", "updated_at", name="contact_updated"),
            GinIndex("tags", name="contact_tags"),
            # Segment rules test metadata equality by containment (metadata @> {"k": v}).
            GinIndex(fields=["metadata"], opclasses=["jsonb_path_ops"], name="contact_metadata"),
            GinIndex("search_vector", name="contact_search"),
            models.Index("account", "phone_digits", name="contact_phone_digits"),
            models.Index("account", "phone_national", name="contact_phone_national"),
            models.Index(models.F("account"), Reverse("phone_digits"), name="contact_phone_reversed"),
        ]

    def __str__(self):
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or str(self.phone or self.id)

    @property
    def preference_map(self) -> dict[str, str]:
        return {channel: self.preferences.get(channel, UNSET) for channel in CHANNELS}
