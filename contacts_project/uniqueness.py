"""Turning a unique-constraint violation into the API's 409 (API.md §2)."""

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower, Now

from contacts_project.api.errors import Conflict


def save_or_conflict(
    save: Callable[[], None], *, noun: str, constraints: dict[str, str], holder: Callable[[str], str | None]
) -> None:
    """Run ``save`` in a savepoint; a violation of one of ``constraints`` becomes a 409.

    ``constraints`` maps a unique constraint's name to the field it guards;
    ``holder(field)`` returns the id of the object already holding the value,
    which the 409 names. The savepoint is rolled back, so the transaction can
    still read, and the holder is committed (the violation waited for it).
    Uniqueness is left to the database so concurrent writers cannot both win.
    """
    try:
        with transaction.atomic():
            save()
    except IntegrityError as error:
        constraint = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)
        field = constraints.get(constraint)
        if field is None:
            raise
        existing = holder(field)
        raise Conflict(attr=field, detail=f"A {noun} with this {field} already exists: {existing}.") from None


def save_named(instance, *, constraint: str, update_fields: list[str] | None = None) -> None:
    """Insert (or update ``update_fields`` of) an account-owned object whose name is unique per account.

    ``constraint`` is the name of its ``UniqueConstraint("account", Lower("name"))``;
    a clash is a 409 naming the object that holds the name, whatever its case.
    """
    model = type(instance)

    def holder(field):
        return (
            model.objects.filter(account_id=instance.account_id)
            .annotate(lower_name=Lower("name"))
            .filter(lower_name=instance.name.lower())
            .exclude(pk=instance.pk)
            .values_list("id", flat=True)
            .first()
        )

    def save():
        if update_fields is None:
            instance.save(force_insert=True)
        else:
            instance.save(update_fields=update_fields)

    save_or_conflict(save, noun=model._meta.verbose_name, constraints={constraint: "name"}, holder=holder)


def update_named(instance, data: dict, *, constraint: str):
    """Apply a partial update; save and bump ``updated_at`` only if something changed."""
    changed = [field for field, value in data.items() if getattr(instance, field) != value]
    for field in changed:
        setattr(instance, field, data[field])
    if changed:
        instance.updated_at = Now()
        save_named(instance, constraint=constraint, update_fields=[*changed, "updated_at"])
        instance.refresh_from_db(fields=["updated_at"])
    return instance
