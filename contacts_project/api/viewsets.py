"""The base of every API viewset: tenancy is enforced here and nowhere else.

``get_queryset()`` scopes the declared ``queryset`` to the authenticated
account, and subclasses may not override it (the class refuses to be
defined), so a new endpoint cannot forget the scope: list, detail, update and
delete all start from the account's rows, and an id of another account is a
plain 404, indistinguishable from one that never existed. Narrowing belongs in
``filterset_class`` or ``filter_queryset()``, which only ever see scoped rows.

Every POST also honours ``Idempotency-Key`` (``IdempotentPostMixin``), and
every request counts against its API key's rate limit (the default throttle).
"""

from django.shortcuts import get_object_or_404
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings

from contacts_project.api.idempotency import IdempotentPostMixin
from contacts_project.api.parsers import NUL_MESSAGE


class AccountScopedViewSet(IdempotentPostMixin, viewsets.GenericViewSet):
    lookup_value_regex = "[^/]+"
    # The keyset of KeysetPagination; an action may pass its own (e.g. a list's
    # members page orders by when they were added).
    keyset_ordering = ("-created_at", "-id")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} overrides get_queryset(); declare `queryset` and narrow it in "
                "filter_queryset() so the account scope cannot be bypassed."
            )

    @property
    def account(self):
        return self.request.user

    def get_queryset(self):
        return self.queryset.all().for_account(self.account)

    def get_object(self):
        """The object named in the URL, from the account's rows only (filters do not apply)."""
        obj = get_object_or_404(
            self.get_queryset(), **{self.lookup_field: self.kwargs[self.lookup_url_kwarg or self.lookup_field]}
        )
        self.check_object_permissions(self.request, obj)
        return obj

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # PostgreSQL cannot store or compare text with NUL characters; refuse
        # them in the query string and the path as the parser does in bodies.
        for name, values in request.query_params.lists():
            if any("\x00" in value for value in values) or "\x00" in name:
                attr = name.replace("\x00", "") or api_settings.NON_FIELD_ERRORS_KEY
                raise ValidationError({attr: [NUL_MESSAGE]}, code="null_characters")
        for name, value in kwargs.items():
            if "\x00" in str(value):
                raise ValidationError({name: [NUL_MESSAGE]}, code="null_characters")
        # Like unknown body fields (API.md §2): a typo such as ``?lifecyle_stage=``
        # must not silently answer the unfiltered collection. (A method the
        # route does not take has no parameters to judge: its answer is the 405.)
        if self.action is None:
            return
        allowed = self.query_parameter_names()
        unknown = [name for name in request.query_params if name not in allowed]
        if unknown:
            raise ValidationError({name: ["Unknown query parameter."] for name in unknown}, code="unknown_parameter")

    def query_parameter_names(self) -> set[str]:
        """The query parameters this request's operation takes (and documents); any other is a 400.

        A GET (or HEAD) of a page, which is every GET but ``retrieve``, takes
        the paginator's and its filterset's; no other operation takes any.
        """
        if self.request.method not in ("GET", "HEAD") or self.action == "retrieve":
            return set()
        names = {parameter["name"] for parameter in self.paginator.get_schema_operation_parameters(self)}
        if getattr(self, "filterset_class", None) is not None:
            names |= set(self.filterset_class.base_filters)
        return names
