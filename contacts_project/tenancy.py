"""Account scoping for every tenant-owned table.

Every model that holds customer data subclasses ``AccountOwned``: it carries
an ``account`` foreign key and a queryset with ``for_account()``. The API's
base viewset (``contacts_project.api.viewsets``) is the one place that calls
it for requests, so no endpoint can list, count or fetch another account's rows.
"""

from django.db import models


class AccountScopedQuerySet(models.QuerySet):
    def for_account(self, account):
        return self.filter(account=account)


class AccountOwned(models.Model):
    """Abstract base: a row that belongs to exactly one account."""

    # No index of its own: each model's indexes lead with the account instead
    # (a lone account_id index would only duplicate their prefix).
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+", db_index=False)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        abstract = True
