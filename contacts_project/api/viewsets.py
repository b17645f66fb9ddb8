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

import functools

from django.db import connections
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from rest_framework import serializers, viewsets
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.authentication import ApiKeyAuthentication
from contacts_project.api.idempotency import IdempotentPostMixin
from contacts_project.api.negotiation import PLAIN_ACCEPTS, ContentNegotiation
from contacts_project.api.parsers import NUL_MESSAGE
from contacts_project.api.ratelimit import ApiKeyRateThrottle, count_api_request
from contacts_project.api.renderers import JSONRenderer


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

    def dispatch(self, request, *args, **kwargs):
        # ``self.action`` is set later, by DRF's initialize_request().
        if self.action_map.get(request.method.lower()) == "retrieve":
            plain = PlainRead.of(type(self))
            if plain is not None:
                response = plain.respond(self, request, kwargs[self.lookup_url_kwarg or self.lookup_field])
                if response is not None:
                    return response
        return super().dispatch(request, *args, **kwargs)

    def get_queryset(self):
        return self.queryset.for_account(self.account)  # filter() returns a new queryset

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
        # Prepared once per connection: see contacts_project/postgresql/base.py.
        rows = connection.fetch_prepared(self.sql, params)
        if not rows:
            raise Http404
        if len(rows) > 1:
            raise self.model.MultipleObjectsReturned
        row = list(rows[0])
        for position, converters, expression in self.converters:
            for converter in converters:
                row[position] = converter(row[position], expression, connection)
        return self.model.from_db(self.db, self.field_names, row)


class RetrieveMixin:
    """``GET /<resources>/{id}``: one of the account's objects, as ``detail_data()`` represents it.

    The answer is the same whether DRF's dispatch gives it or ``PlainRead``.
    """

    def retrieve(self, request, *args, **kwargs):
        return Response(self.detail_data(self.get_object()))

    def detail_data(self, obj) -> dict:
        """The representation of ``obj``; it may not depend on the request beyond ``self.account``."""
        return representer(self.get_serializer_class()).to_representation(obj)


@functools.cache
def representer(serializer_class: type) -> serializers.BaseSerializer:
    """The one instance of ``serializer_class`` that represents objects for reads (no context, no data).

    ``Serializer(obj).data`` builds the serializer, binds its fields and wraps
    the result, for each object: 5% of a primary-key read's CPU. A
    representation needs none of it but ``to_representation()``, which keeps
    nothing between calls.
    """
    return serializer_class()


class PlainRead:
    """The plain ``GET`` of one object, answered without DRF's per-request machinery.

    Reading a contact by id is what every send does first, and on this stack
    DRF's dispatch (a Request wrapper, authenticators, permissions, throttles,
    negotiation, a template response) cost as much CPU as the read itself. For
    the request nearly every client sends (GET, no query string, an ``Accept``
    of JSON or anything) this answers the same thing with the same parts:
    the viewset's authentication, its tenancy-scoped ``DetailLookup``, the
    rate limit's ``count_api_request``, its ``detail_data()`` and the API's JSON
    renderer, with the header DRF's ``finalize_response`` adds.

    It answers only success. Whatever else may happen (no key or a bad one,
    another account's id or an unknown one, the rate limit passed, HEAD, a
    query parameter, another media type) returns None and the request goes
    through DRF as before, which answers it; the request is counted once,
    since ``count_api_request`` keeps its usage on the request. A database
    error is answered 503 by DatabaseUnavailableMiddleware, as DRF would.
    Viewsets with other authentication, permissions, throttles, renderers or
    a queryset ``DetailLookup`` cannot compile keep DRF's path.
    """

    _eligible: dict[type, "PlainRead | None"] = {}

    def __init__(self, lookup: "DetailLookup"):
        self.lookup = lookup
        self.authenticator = ApiKeyAuthentication()
        self.renderer = JSONRenderer()

    @classmethod
    def of(cls, viewset: type) -> "PlainRead | None":
        try:
            return cls._eligible[viewset]
        except KeyError:
            pass
        plain = None
        if (
            hasattr(viewset, "detail_data")
            and list(viewset.authentication_classes) == [ApiKeyAuthentication]
            and list(viewset.permission_classes) == [IsAuthenticated]
            and list(viewset.throttle_classes) == [ApiKeyRateThrottle]
            and list(viewset.renderer_classes) == [JSONRenderer]
            and viewset.content_negotiation_class is ContentNegotiation
            and viewset.versioning_class is None
        ):
            lookup = DetailLookup.of(viewset)
            plain = cls(lookup) if lookup is not None else None
        cls._eligible[viewset] = plain
        return plain

    def respond(self, view, request, value: str) -> HttpResponse | None:
        meta = request.META
        if (
            request.method != "GET"
            or meta.get("QUERY_STRING")
            or meta.get("HTTP_ACCEPT", "") not in PLAIN_ACCEPTS
            or "\x00" in value
        ):
            return None
        try:
            authenticated = self.authenticator.authenticate(request)
        except AuthenticationFailed:
            return None
        if authenticated is None:
            return None
        # As DRF's Request sets them on the request it wraps.
        request.user, request.auth = authenticated
        try:
            obj = self.lookup.get(account_id=request.user.pk, value=value)
        except Http404:
            return None
        usage = count_api_request(request, request.auth)
        if usage is not None and usage.count > usage.limit:
            return None
        response = HttpResponse(self.renderer.render(view.detail_data(obj)), content_type="application/json")
        # What DRF's finalize_response() adds: Allow (a Vary only comes with several renderers).
        for name, header in view.default_response_headers.items():
            response[name] = header
        return response
