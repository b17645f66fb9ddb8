from django.db import models
from django.db.models.functions import Lower, Now

from contacts_project.ids import IdFactory
from contacts_project.tenancy import AccountOwned


class Segment(AccountOwned):
    """A saved rule tree; its members are whichever contacts match it now."""

    id = models.CharField(primary_key=True, max_length=24, default=IdFactory("seg"), editable=False)
    name = models.CharField(max_length=100)
    rules = models.JSONField()
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [models.UniqueConstraint("account", Lower("name"), name="segment_name_unique")]
        indexes = [
            models.Index("account", models.F("created_at").desc(), models.F("id").desc(), name="segment_listing"),
        ]

    def __str__(self):
        return self.name
