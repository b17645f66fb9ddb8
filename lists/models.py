from django.db import models
from django.db.models.functions import Lower, Now

from contacts_project.ids import IdFactory
from contacts_project.tenancy import AccountOwned


class ContactList(AccountOwned):
    """A named, static set of contacts that an account fills and empties by hand or by API."""

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("lst"), editable=False)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=1000, blank=True, default="")
    # Exact number of memberships, kept by database triggers on the membership
    # table (migration 0002) in the same transaction as every insert and
    # delete, whatever path made it: API, cascade from a deleted contact,
    # admin, import. Reading a list never runs a COUNT.
    member_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        verbose_name = "list"
        constraints = [models.UniqueConstraint("account", Lower("name"), name="list_name_unique")]
        indexes = [
            models.Index("account", models.F("created_at").desc(), models.F("id").desc(), name="list_listing"),
        ]

    def __str__(self):
        return self.name


class ListMembership(AccountOwned):
    """A contact's membership of a list, with when it was added."""

    # Indexed by membership_unique (list first) and membership_contact.
    contact_list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="memberships", db_index=False
    )
    added_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [models.UniqueConstraint("contact_list", "contact", name="membership_unique")]
        indexes = [
            # The members page: most recently added first, keyset on (added_at, contact).
            models.Index(
                "contact_list", models.F("added_at").desc(), models.F("contact").desc(), name="membership_page"
            ),
            models.Index("contact", name="membership_contact"),
        ]

    def __str__(self):
        return f"{self.contact_id} in {self.contact_list_id}"
