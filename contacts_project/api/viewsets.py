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

from django.db import connections
from django.http import Http404
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
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        lookup = DetailLookup.of(type(self))
        if lookup is None:
            obj = get_object_or_404(self.get_queryset(), **{self.lookup_field: value})
        else:
            obj = lookup.get(account_id=self.account.pk, value=value)
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


class DetailLookup:
    """A viewset's ``get_object()`` query, compiled to SQL once per process instead of once per request.

    The query is the same for every request but for two parameters, the
    account and the id, and building, compiling and loading it through the
    ORM cost more CPU than the rest of a primary-key read. It is compiled from
    the viewset's scoped queryset (``queryset.for_account(...)``, the filters
    of ``get_queryset()``), with NUL strings standing in for the two values:
    no real value can be one (``initial()`` refuses NUL in paths). Rows are
    loaded as the ORM's ``ModelIterable`` loads them (``Model.from_db`` with
    the fields' converters), from the column list worked out at compile time.
    Querysets of more than plain model rows (joins, annotations, prefetches)
    keep the ORM path.
    """

    _ACCOUNT = "\x00account"
    _VALUE = "\x00value"
    _compiled: dict[type, "DetailLookup | None"] = {}

    def __init__(self, queryset, lookup_field: str):
        self.model = queryset.model
        self.db = queryset.db
        query = queryset.all().for_account(self._ACCOUNT).filter(**{lookup_field: self._VALUE})[:2].query
        compiler = query.get_compiler(using=self.db)
        self.sql, params = compiler.as_sql()
        self.params = list(params)
        if self.params.count(self._ACCOUNT) != 1 or self.params.count(self._VALUE) != 1:
            raise ValueError(f"{self.model.__name__}: the account and the lookup are not plain parameters")
        columns = [selected[0] for selected in compiler.select]
        self.field_names = [column.target.attname for column in columns]
        self.converters = [
            (position, converters, expression)
            for position, (converters, expression) in compiler.get_converters(columns).items()
        ]

    @classmethod
    def of(cls, viewset: type) -> "DetailLookup | None":
        try:
            return cls._compiled[viewset]
        except KeyError:
            pass
        queryset = viewset.queryset
        query = queryset.query
        loadable = not (query.select_related or query.annotations or query.extra or queryset._prefetch_related_lookups)
        lookup = cls._compiled[viewset] = cls(queryset, viewset.lookup_field) if loadable else None
        return lookup

    def get(self, *, account_id, value):
        """The one row, or Http404."""
        params = [account_id if p == self._ACCOUNT else value if p == self._VALUE else p for p in self.params]
        connection = connections[self.db]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        if not rows:
            raise Http404
        if len(rows) > 1:
            raise self.model.MultipleObjectsReturned
        row = list(rows[0])
        for position, converters, expression in self.converters:
            for converter in converters:
                row[position] = converter(row[position], expression, connection)
        return self.model.from_db(self.db, self.field_names, row)
