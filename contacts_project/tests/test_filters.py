"""The project's FilterSet base: per-request filter copies without django-filter's deep copies."""

import django_filters
from django.http import QueryDict
from django.test import RequestFactory

import contacts.api.filters
from contacts.api.filters import ActivityFilter, ContactFilter, OptoutFilter
from contacts_project.api.filters import FilterSet


def _project_filtersets():
    found, pending = [], [django_filters.filterset.BaseFilterSet]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.split(".")[0] in {"accounts", "contacts", "lists", "segments"}:
                found.append(subclass)
    return found


def _filterset(cls, query="", account=None):
    request = RequestFactory().get("/v1/contacts?" + query)
    request.user = account
    return cls(QueryDict(query), cls._meta.model.objects.all(), request=request)


def test_every_filterset_derives_from_the_projects_base():
    filtersets = _project_filtersets()

    assert {ContactFilter, OptoutFilter, ActivityFilter} <= set(filtersets)
    assert [cls for cls in filtersets if not issubclass(cls, FilterSet)] == []
    assert contacts.api.filters.FilterSet is FilterSet


def test_each_filterset_gets_its_own_filters_and_method_filters_resolve_on_it():
    first, second = _filterset(ContactFilter, "search=ada"), _filterset(ContactFilter, "search=bob")

    for name, declared in ContactFilter.base_filters.items():
        assert first.filters[name] is not declared
        assert first.filters[name] is not second.filters[name]
        assert first.filters[name].parent is first
        assert not hasattr(declared, "parent")
    # filter_search is looked up on the filterset the filter was copied for.
    assert first.filters["search"].filter.method.__self__ is first
    assert second.filters["search"].filter.method.__self__ is second
    # A filter declared by one class and reused by another (OptoutFilter.search) binds to the other.
    optouts = _filterset(OptoutFilter, "search=ada")
    assert optouts.filters["search"].filter.method.__self__ is optouts


def test_the_form_class_is_built_once_per_class_and_each_form_has_its_own_fields():
    first, second = _filterset(ContactFilter, "country=tr"), _filterset(ContactFilter, "country=nowhere")

    assert type(first.form) is type(second.form)
    assert type(_filterset(OptoutFilter).form) is not type(first.form)
    assert first.form.fields["country"] is not second.form.fields["country"]
    assert first.is_valid()
    assert first.form.cleaned_data["country"] == "TR"
    assert not second.is_valid()
    assert list(second.errors) == ["country"]
