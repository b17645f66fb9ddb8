"""Building blocks of the operators' admin, shared by every app's ``admin.py``.

Two rules shape them:

* Writes go through the same validation and services as the API. A form's
  validation *is* the service call (``ServiceModelForm``): the database's
  unique constraints decide duplicates, so the only race-free way to turn a
  duplicate into a form error is to attempt the write while validating.
* Pages stay fast on tables of millions of rows: no unbounded ``COUNT(*)``
  (``EstimatedCountPaginator``), no ``SELECT DISTINCT`` to build a filter's
  choices (``AccountFilter`` lists the account table, ``InputFilter`` takes
  free text, ``SelectedObjectFilter`` shows only the object in the URL), no
  facet counts, and no walk over a cascade to confirm a delete
  (``summarized_deletion``).
"""

import json
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR
from django.core.paginator import EmptyPage, Paginator
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.settings import api_settings

from accounts.models import Account
from contacts_project.api.errors import Conflict
from contacts_project.api.parsers import check_json_document, strict_json_loads

NON_FIELD_ERRORS = api_settings.NON_FIELD_ERRORS_KEY


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a whole table.

    ``count`` is exact up to ``exact_up_to`` rows, from one bounded query
    (``SELECT COUNT(*) FROM (SELECT id … LIMIT exact_up_to + 1)``), so small
    results (a search, a filtered account) get exact page links and "Show
    all". Past that it is PostgreSQL's planner estimate of the filtered query
    (``EXPLAIN``: statistics, no rows read), never less than the bound (nor
    than one page plus one, which ChangeList would show unsliced), and
    ``is_estimate`` is set so the page says "about". Pages are slices
    (``LIMIT``/``OFFSET``) never clipped at the count, so they work whatever
    the estimate says; past the last row a page is empty.
    """

    exact_up_to = 10_000
    is_estimate = False

    @cached_property
    def count(self):
        queryset = self.object_list.order_by()
        bounded = queryset.values("pk")[: self.exact_up_to + 1].count()
        if bounded <= self.exact_up_to:
            return bounded
        self.is_estimate = True
        # Never below the rows already seen, nor a single page: the admin shows a one-page result unsliced.
        return max(self.exact_up_to + 1, self.per_page + 1, planner_row_estimate(queryset))

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            # Past an estimate is not past the data: the page's slice tells.
            if self.is_estimate and int(number) > 1:
                return int(number)
            raise

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        # Not clipped at ``count``, which may be an estimate: the slice's LIMIT ends the page.
        return self._get_page(self.object_list[bottom : bottom + self.per_page], number, self)


def planner_row_estimate(queryset) -> int:
    """The planner's estimate of the number of rows ``queryset`` returns (no rows are read)."""
    plan = json.loads(queryset.explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class AccountFilter(admin.SimpleListFilter):
    """By account, with choices from the account table (not a DISTINCT over the filtered rows)."""

    title = "account"
    parameter_name = "account"

    def lookups(self, request, model_admin):
        return list(Account.objects.order_by("name").values_list("id", "name"))

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value is None else queryset.filter(account_id=value)


class InputFilter(admin.SimpleListFilter):
    """A free-text filter (exact match) for a column whose distinct values would cost a table scan to list.

    Subclasses define ``filter_value(queryset, value)``.
    """

    template = "admin/input_filter.html"
    placeholder = ""

    def lookups(self, request, model_admin):
        return []

    def has_output(self):
        return True

    def choices(self, changelist):
        # The other parameters of the page ride along as hidden inputs; a new
        # value starts again from the first page.
        self.hidden_params = [
            (name, value) for name, value in changelist.params.items() if name not in (self.parameter_name, PAGE_VAR)
        ]
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
        }

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        return queryset if not value else self.filter_value(queryset, value)


class SelectedObjectFilter(admin.SimpleListFilter):
    """A filter on one object named by id in the URL, shown only while in use.

    Other admin pages link here (``?list=lst_…``); listing every list,
    segment or contact as a choice would read a large table on every page.
    An unknown id matches nothing. Subclasses set ``related_model`` and define
    ``filter_by(queryset, selected)``.
    """

    related_model = None

    def lookups(self, request, model_admin):
        value = self.value()
        if value is None:
            return []
        self.selected = self.related_model.objects.select_related("account").filter(pk=value).first()
        label = f"{self.selected} ({self.selected.account})" if self.selected else f"{value} (not found)"
        return [(value, label)]

    def has_output(self):
        return self.value() is not None

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.selected is None:
            return queryset.none()
        return self.filter_by(queryset, self.selected)


class ChoicesFilter(admin.SimpleListFilter):
    """A filter on a column with a fixed vocabulary (``choices``); an unknown value is a lookup error."""

    choices_list: tuple[str, ...] = ()
    field = None

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.choices_list]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value not in self.choices_list:
            raise IncorrectLookupParameters(f"Unknown {self.title}: {value}")
        return queryset.filter(**{self.field: value})


class OperatorAdmin(admin.ModelAdmin):
    """The base of every operator admin: query parameters PostgreSQL cannot hold are a lookup error, not a 500.

    PostgreSQL text cannot contain NUL; a NUL in a filter or search
    parameter would otherwise fail in the driver. The changelist answers it
    as Django answers any invalid lookup (back to the list with ``?e=1``),
    searches (the changelist's, the autocomplete's) drop it, and an object
    URL holding it is an object that does not exist.
    """

    def changelist_view(self, request, extra_context=None):
        if any("\x00" in value for values in request.GET.lists() for value in values[1]):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, search_term.replace("\x00", ""))

    def get_object(self, request, object_id, from_field=None):
        # No row has such an id: the change, delete and history pages say it does not exist.
        return None if "\x00" in object_id else super().get_object(request, object_id, from_field)


class LargeTableAdmin(OperatorAdmin):
    """Defaults for a table that may hold millions of rows: no counts beyond a bound, no facet counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_select_related = ["account"]


class ReadOnlyModelAdmin(LargeTableAdmin):
    """A record operators read but never write by hand (activity history, suppression hashes)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PrettyJSONField(forms.JSONField):
    """A JSON textarea that shows its value indented, keys in their stored order.

    It parses as strictly as the API's parser: NaN, Infinity, numbers out of
    range, NUL characters, lone surrogates and deep nesting are form errors,
    not a 500 from PostgreSQL or Python's recursion limit.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 10, "cols": 80, "class": "vLargeTextField"}))
        super().__init__(**kwargs)

    def to_python(self, value):
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        try:
            return _strict_json(value)
        except (ValueError, RecursionError, ParseError, ValidationError) as error:
            raise forms.ValidationError(f"Enter valid JSON: {_json_error_text(error)}", code="invalid") from None

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return _strict_json(data)
        except (ValueError, RecursionError, ParseError, ValidationError):
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)


def _strict_json(text: str):
    value = strict_json_loads(text)
    check_json_document(value, max_depth=settings.API_MAX_JSON_DEPTH)
    return value


def _json_error_text(error) -> str:
    if isinstance(error, RecursionError):
        return f"JSON is nested deeper than {settings.API_MAX_JSON_DEPTH} levels."
    if isinstance(error, ValidationError):
        return " ".join(
            f"{attr}: {message}" if attr and attr != NON_FIELD_ERRORS else message
            for attr, message in api_error_messages(error.detail)
        )
    if isinstance(error, ParseError):
        return str(error.detail)
    return str(error)


def pretty_json(value):
    """Read-only display of a JSON value, indented."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


def display_datetime(value) -> str:
    """A timestamp as the admin shows them (the current time zone, the locale's format)."""
    return formats.localize(timezone.template_localtime(value))


def admin_link(obj, text=None):
    """A link to ``obj``'s admin change page."""
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])
    return format_html('<a href="{}">{}</a>', url, obj if text is None else text)


def changelist_url(model, **params) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def summarized_deletion(objs, *, cascade_note: str):
    """What ``get_deleted_objects`` returns, without walking the cascade.

    The default confirmation page lists every related row (every membership
    of a list, every event of a contact) and asks for delete permission on
    each kind; the services delete those rows as part of the object, so the
    page names the objects and says what goes with them.
    """
    objs = list(objs)
    if not objs:
        return [], {}, set(), []
    opts = objs[0]._meta
    deleted = []
    for obj in objs:
        deleted += [format_html("{}: {}", capfirst(opts.verbose_name), admin_link(obj)), [cascade_note]]
    return deleted, {opts.verbose_name_plural: len(objs)}, set(), []


def api_error_messages(detail, attr=""):
    """``(attr, message)`` pairs of a DRF error detail, nested keys joined with dots as the API's ``attr``."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            yield from api_error_messages(value, f"{attr}.{key}" if attr else str(key))
    elif isinstance(detail, list):
        for item in detail:
            yield from api_error_messages(item, attr)
    else:
        yield attr, str(detail)


class ServiceModelForm(forms.ModelForm):
    """A ModelForm whose model validation and save are the API's serializer and service.

    ``write(cleaned_data)`` validates with the API's serializer and calls the
    service, raising DRF's ``ValidationError`` or a ``Conflict`` (a unique
    value already held); either becomes form errors on the fields they name
    (``tags.3`` goes to ``tags``). It runs in a savepoint during validation,
    in place of Django's model validation, so nothing is written unless the
    whole form is valid and a duplicate is a form error even when two
    operators race. The admin's ``save_model`` then has nothing left to do.
    """

    def _post_clean(self):
        if self._errors:
            return
        try:
            with transaction.atomic():
                self.instance = self.write(self.cleaned_data)
        except (ValidationError, Conflict) as error:
            self.add_api_errors(error.detail)

    @property
    def adding(self) -> bool:
        return self.instance._state.adding

    def add_api_errors(self, detail):
        for attr, message in api_error_messages(detail):
            field = attr.split(".")[0]
            if field in self.fields:
                self.add_error(field, message if attr == field else f"{attr}: {message}")
            else:
                self.add_error(None, f"{attr}: {message}" if attr and attr != NON_FIELD_ERRORS else message)


class ServiceModelAdmin(OperatorAdmin):
    """A ModelAdmin whose form (a ``ServiceModelForm``) has already written through the services."""

    def save_model(self, request, obj, form, change):
        """Nothing to do: ``form.write()`` saved during validation."""


class NamedObjectAdmin(ServiceModelAdmin):
    """Lists and segments: an account's named object, written through its service form.

    ``editable_fields`` are what the form edits; ``members`` is a method of
    the subclass linking to the contacts it holds.
    """

    editable_fields: list[str] = []
    list_select_related = ["account"]
    list_filter = [AccountFilter]
    search_fields = ["name", "id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    ordering = ["-created_at", "-id"]
    autocomplete_fields = ["account"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["account", *self.editable_fields]
        return ["id", "account", *self.editable_fields, "members", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["id", "account", "members", "created_at", "updated_at"]


def action_form_page(modeladmin, request, queryset, *, form, title, action, submit_label):
    """The intermediate page of an action that needs input (a tag, a list, a channel).

    It posts back to the changelist (same URL, so the same filters and
    search) with the action, the selection and ``apply``; the action then
    validates the form and runs, or shows this page again with its errors.
    """
    selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
    select_across = request.POST.get("select_across", "0")
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": modeladmin.model._meta,
        "form": form,
        "action": action,
        "submit_label": submit_label,
        "selected": selected,
        "select_across": select_across,
        "selected_count": None if select_across == "1" else len(selected),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, "admin/action_form.html", context)
