"""The operators' admin for contacts, activity and suppression: same validation and services as the API, fast pages."""

import csv
import io
import json
import re

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse

from contacts.exporters import EXPORT_COLUMNS as CSV_COLUMNS
from contacts.models import ActivityEvent, Contact, SuppressionEntry
from contacts.services import activity_record, contact_set_preferences
from contacts.suppression import identifier_hashes
from contacts_project.admin import EstimatedCountPaginator, planner_row_estimate
from lists.models import ListMembership
from lists.services import list_add_members, list_create
from segments.services import segment_create

CHANGELIST = reverse("admin:contacts_contact_changelist")
ADD = reverse("admin:contacts_contact_add")
UNSET_ALL = {"sms": "unset", "whatsapp": "unset", "email": "unset", "rcs": "unset", "viber": "unset", "voice": "unset"}


def change_url(contact) -> str:
    return reverse("admin:contacts_contact_change", args=[quote(contact.pk)])


def listed(response) -> list[str]:
    """Ids of the contacts on a changelist page, in page order."""
    assert response.status_code == 200, response.content
    return [contact.pk for contact in response.context["cl"].result_list]


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return {field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def form_data(contact=None, **changes) -> dict:
    """The POST of the contact form: the stored values (or blanks), then ``changes``."""
    data = {
        "phone": str(contact.phone) if contact and contact.phone else "",
        "email": contact.email or "" if contact else "",
        "first_name": contact.first_name if contact else "",
        "last_name": contact.last_name if contact else "",
        "country": contact.country or "" if contact else "",
        "lifecycle_stage": contact.lifecycle_stage if contact else "lead",
        "tags": "\n".join(contact.tags) if contact else "",
        "metadata": json.dumps(contact.metadata) if contact else "{}",
    }
    data.update(changes)
    return data


def run_action(client, action, contacts, **fields):
    """Post an action with its intermediate form already filled in (``apply``), following the redirect."""
    data = {"action": action, "_selected_action": [contact.pk for contact in contacts], "apply": "1", **fields}
    return client.post(CHANGELIST, data, follow=True)


@pytest.fixture
def ada(make_contact):
    return make_contact(
        phone="+14155552671",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        lifecycle_stage="customer",
        tags=["vip", "beta"],
        metadata={"plan": "pro", "seats": 12},
    )


# --- the changelist ---------------------------------------------------------------------


def test_changelist_shows_the_columns_an_operator_scans(admin_client, ada):
    response = admin_client.get(CHANGELIST)

    assert listed(response) == [ada.pk]
    headers = [header["text"] for header in response.context["result_headers"]][1:]
    assert headers == ["name", "phone", "email", "country", "stage", "tags", "account", "created at"]
    content = response.content.decode()
    for text in ["Ada Lovelace", "+14155552671", "ada@example.com", "US", "customer", "vip, beta", "Acme"]:
        assert text in content, text


def test_search_is_the_api_search_accent_insensitive(admin_client, make_contact):
    jose = make_contact(email="jg@example.com", first_name="José", last_name="García")
    make_contact(email="maria@example.com", first_name="María", last_name="Lopez")

    assert listed(admin_client.get(CHANGELIST, {"q": "jose"})) == [jose.pk]
    assert listed(admin_client.get(CHANGELIST, {"q": "garc jos"})) == [jose.pk]


def test_search_matches_word_prefixes_and_phone_digits_not_substrings(admin_client, ada):
    assert listed(admin_client.get(CHANGELIST, {"q": "2671"})) == [ada.pk]
    assert listed(admin_client.get(CHANGELIST, {"q": "+1 415"})) == [ada.pk]
    # An icontains scan would find "ove" inside "Lovelace"; the API's search matches word prefixes.
    assert listed(admin_client.get(CHANGELIST, {"q": "ove"})) == []
    assert listed(admin_client.get(CHANGELIST, {"q": "!!!"})) == []


def test_search_runs_the_search_query_of_the_api(admin_client, ada, django_assert_num_queries):
    # One query more than a page without search: the accounts, whose tags the search index is asked for.
    with django_assert_num_queries(6) as captured:
        admin_client.get(CHANGELIST, {"q": "lovelace"})

    page_query = captured.captured_queries[-1]["sql"]
    assert "::tsquery" in page_query
    assert "LIKE" not in page_query.upper()


def test_search_spans_every_account_or_the_one_filtered(admin_client, account, other_account, make_contact):
    mine = make_contact(email="ada@example.com", first_name="Ada")
    theirs = make_contact(account=other_account, email="ada@example.org", first_name="Ada")

    assert set(listed(admin_client.get(CHANGELIST, {"q": "ada"}))) == {mine.pk, theirs.pk}
    assert listed(admin_client.get(CHANGELIST, {"q": "ada", "account": other_account.pk})) == [theirs.pk]
    assert listed(admin_client.get(CHANGELIST, {"q": "example.org"})) == [theirs.pk]


def test_filters_by_account_stage_country_and_opted_out_channel(admin_client, account, other_account, make_contact):
    lead = make_contact(phone="+14155550101", lifecycle_stage="lead")
    turk = make_contact(phone="+905321234567", lifecycle_stage="customer")
    other = make_contact(account=other_account, phone="+14155550102", lifecycle_stage="customer")
    contact_set_preferences(account=account, contact_id=turk.pk, statuses={"sms": "opted_out"}, api_key_id=None)
    contact_set_preferences(account=account, contact_id=lead.pk, statuses={"email": "opted_out"}, api_key_id=None)

    assert set(listed(admin_client.get(CHANGELIST, {"account": account.pk}))) == {lead.pk, turk.pk}
    assert listed(admin_client.get(CHANGELIST, {"account": other_account.pk})) == [other.pk]
    assert set(listed(admin_client.get(CHANGELIST, {"lifecycle_stage": "customer"}))) == {turk.pk, other.pk}
    assert listed(admin_client.get(CHANGELIST, {"lifecycle_stage": "customer", "account": account.pk})) == [turk.pk]
    assert listed(admin_client.get(CHANGELIST, {"country": "tr"})) == [turk.pk]
    assert listed(admin_client.get(CHANGELIST, {"opted_out": "sms"})) == [turk.pk]
    assert listed(admin_client.get(CHANGELIST, {"opted_out": "email"})) == [lead.pk]
    assert set(listed(admin_client.get(CHANGELIST, {"opted_out": "any"}))) == {lead.pk, turk.pk}
    assert listed(admin_client.get(CHANGELIST, {"opted_out": "voice"})) == []


def test_unknown_opt_out_channel_is_an_invalid_lookup_not_a_500(admin_client, ada):
    response = admin_client.get(CHANGELIST, {"opted_out": "fax"})

    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?e=1"


def test_list_and_segment_filters_show_their_members(admin_client, account, make_contact):
    member = make_contact(phone="+14155550101", country="US", tags=["vip"])
    make_contact(phone="+14155550102", country="US")
    contact_list = list_create(account=account, name="Newsletter")
    list_add_members(account=account, contact_list=contact_list, contact_ids=[member.pk])
    segment = segment_create(
        account=account,
        name="VIP",
        rules={"match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]},
    )

    assert listed(admin_client.get(CHANGELIST, {"list": contact_list.pk})) == [member.pk]
    assert listed(admin_client.get(CHANGELIST, {"segment": segment.pk})) == [member.pk]
    assert listed(admin_client.get(CHANGELIST, {"segment": segment.pk, "q": "415"})) == [member.pk]
    assert listed(admin_client.get(CHANGELIST, {"list": "lst_unknown"})) == []


def _crowd(account, other_account, make_contact, count):
    contact_list = list_create(account=account, name="Crowd")
    contacts = [
        make_contact(
            account=account if number % 2 else other_account,
            phone=f"+1415555{number:04d}",
            first_name=f"Person{number}",
            tags=["a", "b"],
        )
        for number in range(count)
    ]
    ids = [contact.pk for contact in contacts if contact.account_id == account.pk]
    list_add_members(account=account, contact_list=contact_list, contact_ids=ids)
    return contacts


def test_changelist_runs_a_constant_number_of_queries_whatever_the_page_size(
    admin_client, account, other_account, make_contact, django_assert_num_queries, monkeypatch
):
    _crowd(account, other_account, make_contact, 25)
    contact_admin = admin.site.get_model_admin(Contact)

    for page_size in (5, 20):
        monkeypatch.setattr(contact_admin, "list_per_page", page_size)
        # Session, user, the account filter's choices, the bounded count, the page.
        with django_assert_num_queries(5):
            response = admin_client.get(CHANGELIST)
        assert len(listed(response)) == page_size
        assert response.context["cl"].result_count == 25


def test_changelist_past_the_exact_bound_shows_an_estimate_in_constant_queries(
    admin_client, account, other_account, make_contact, django_assert_num_queries, monkeypatch
):
    contacts = _crowd(account, other_account, make_contact, 25)
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 10)
    contact_admin = admin.site.get_model_admin(Contact)
    newest_first = sorted(contacts, key=lambda contact: (contact.created_at, contact.pk), reverse=True)

    for page_size in (5, 20):
        monkeypatch.setattr(contact_admin, "list_per_page", page_size)
        # Session, user, the account filter's choices, the bounded count, the planner's estimate, the page.
        with django_assert_num_queries(6) as captured:
            response = admin_client.get(CHANGELIST, {"p": "2"})
        assert listed(response) == [contact.pk for contact in newest_first[page_size : 2 * page_size]]
        assert response.context["cl"].paginator.is_estimate is True
        assert b"about " in response.content
        counts = [query["sql"] for query in captured.captured_queries if "COUNT(" in query["sql"].upper()]
        assert len(counts) == 1
        assert "LIMIT 11" in counts[0]


def test_changelist_runs_no_unbounded_count_and_no_distinct(
    admin_client, account, other_account, make_contact, django_assert_num_queries
):
    _crowd(account, other_account, make_contact, 4)

    with django_assert_num_queries(5) as captured:
        response = admin_client.get(CHANGELIST, {"account": account.pk, "lifecycle_stage": "lead", "q": "person"})

    assert len(listed(response)) == 2
    for query in captured.captured_queries:
        sql = query["sql"].upper()
        assert "DISTINCT" not in sql, sql
        if "COUNT(" in sql:
            assert "LIMIT 10001" in sql, sql


def test_estimated_count_paginator_is_exact_up_to_its_bound_then_the_planner_estimate(
    account, make_contact, monkeypatch
):
    for number in range(5):
        make_contact(phone=f"+1415555{number:04d}")
    queryset = Contact.objects.order_by("phone")

    exact = EstimatedCountPaginator(queryset, 2)
    assert exact.count == 5
    assert exact.is_estimate is False

    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 3)
    estimated = EstimatedCountPaginator(queryset, 2)
    assert estimated.count == max(4, planner_row_estimate(queryset))
    assert estimated.is_estimate is True
    assert [str(contact.phone) for contact in estimated.page(2).object_list] == ["+14155550002", "+14155550003"]


def test_estimated_pages_work_past_an_underestimate(account, make_contact, monkeypatch):
    for number in range(5):
        make_contact(phone=f"+1415555{number:04d}")
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 3)
    # Stale statistics: the planner believes the table is empty.
    monkeypatch.setattr("contacts_project.admin.planner_row_estimate", lambda queryset: 0)

    paginator = EstimatedCountPaginator(Contact.objects.order_by("phone"), 2)

    assert paginator.count == 4
    assert paginator.num_pages == 2
    assert [str(contact.phone) for contact in paginator.page(2).object_list] == ["+14155550002", "+14155550003"]
    assert [str(contact.phone) for contact in paginator.page(3).object_list] == ["+14155550004"]
    assert list(paginator.page(4).object_list) == []


# --- the change form: ContactSerializer validates, the services write ----------------------


def test_adding_a_contact_validates_like_the_api_and_creates_through_the_service(admin_client, account):
    response = admin_client.post(
        ADD,
        form_data(account=account.pk, phone="(415) 555-2671", country="us", email="Ada@Example.COM", first_name="Ada"),
        follow=True,
    )

    assert response.status_code == 200
    contact = Contact.objects.get(account=account)
    assert str(contact.phone) == "+14155552671"
    assert contact.email == "ada@example.com"
    assert contact.country == "US"
    assert contact.lifecycle_stage == "lead"
    # The service filled the search columns: the API's search finds it.
    assert list(Contact.objects.search("ada", accounts=[account]).values_list("pk", flat=True)) == [contact.pk]


def test_bad_phone_is_a_form_error_and_nothing_is_saved(admin_client, account, ada):
    response = admin_client.post(ADD, form_data(account=account.pk, phone="+1 555", email="new@example.com"))

    assert form_errors(response) == {"phone": ["Enter a valid phone number."]}
    assert list(Contact.objects.values_list("pk", flat=True)) == [ada.pk]

    response = admin_client.post(change_url(ada), form_data(ada, phone="12345", first_name="Changed"))

    assert form_errors(response) == {"phone": ["Enter a valid phone number."]}
    ada.refresh_from_db()
    assert (str(ada.phone), ada.first_name) == ("+14155552671", "Ada")


def test_a_national_phone_without_country_is_a_form_error(admin_client, account):
    response = admin_client.post(ADD, form_data(account=account.pk, phone="(415) 555-2671"))

    assert form_errors(response) == {
        "phone": ["Give the number in international form (+14155552671), or give `country` with a national number."]
    }
    assert Contact.objects.count() == 0


def test_contact_without_phone_or_email_is_a_form_error(admin_client, account, ada):
    assert form_errors(admin_client.post(ADD, form_data(account=account.pk, first_name="Nobody"))) == {
        "phone": ["A contact needs a phone or an email."]
    }
    assert form_errors(admin_client.post(change_url(ada), form_data(ada, phone="", email=""))) == {
        "phone": ["A contact needs a phone or an email."]
    }
    ada.refresh_from_db()
    assert (str(ada.phone), ada.email) == ("+14155552671", "ada@example.com")


def test_duplicate_phone_or_email_is_a_form_error_naming_the_existing_contact(admin_client, account, make_contact, ada):
    response = admin_client.post(ADD, form_data(account=account.pk, phone="+1 415 555 2671"))

    assert form_errors(response) == {"phone": [f"A contact with this phone already exists: {ada.pk}."]}
    assert Contact.objects.count() == 1

    grace = make_contact(email="grace@example.com")
    response = admin_client.post(change_url(grace), form_data(grace, email="ADA@example.com"))

    assert form_errors(response) == {"email": [f"A contact with this email already exists: {ada.pk}."]}
    grace.refresh_from_db()
    assert grace.email == "grace@example.com"


def test_same_phone_in_another_account_is_fine(admin_client, other_account, ada):
    admin_client.post(ADD, form_data(account=other_account.pk, phone="+14155552671"))

    assert Contact.objects.filter(account=other_account, phone="+14155552671").count() == 1


def test_field_errors_of_the_serializer_land_on_their_fields(admin_client, account):
    response = admin_client.post(
        ADD,
        form_data(
            account=account.pk,
            email="not-an-email",
            country="XX",
            lifecycle_stage="Not A Slug",
            tags="ok\n" + "x" * 65,
            metadata="[1, 2]",
        ),
    )

    assert form_errors(response) == {
        "email": ["Enter a valid email address."],
        "country": ["Enter an ISO 3166-1 alpha-2 country code, such as US or TR."],
        "lifecycle_stage": ["Use 1 to 32 of a-z, 0-9, _ and -."],
        "tags": ["tags.1: Ensure this field has no more than 64 characters."],
        "metadata": ["Must be a JSON object."],
    }
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"score": NaN}', "Enter valid JSON: NaN is not valid JSON"),
        ('{"score": 1e400}', "Enter valid JSON: number 1e400 is out of range"),
        ('{"note": "a\\u0000b"}', "Enter valid JSON: note: NUL characters (\\u0000) are not allowed."),
        (
            '{"note": "\\ud800"}',
            "Enter valid JSON: note: Unpaired surrogates (\\ud800-\\udfff) are not valid Unicode text.",
        ),
        ("[" * 100 + "]" * 100, "Enter valid JSON: JSON is nested deeper than 64 levels."),
        ("[" * 5000 + "]" * 5000, "Enter valid JSON: JSON is nested deeper than 64 levels."),
    ],
)
def test_json_that_postgresql_cannot_store_is_a_form_error_not_a_500(admin_client, account, ada, metadata, message):
    added = admin_client.post(ADD, form_data(account=account.pk, email="new@example.com", metadata=metadata))
    changed = admin_client.post(change_url(ada), form_data(ada, metadata=metadata))

    assert form_errors(added) == {"metadata": [message]}
    assert form_errors(changed) == {"metadata": [message]}
    assert list(Contact.objects.values_list("pk", flat=True)) == [ada.pk]
    ada.refresh_from_db()
    assert ada.metadata == {"plan": "pro", "seats": 12}


def test_changing_a_contact_sends_only_what_changed_and_replaces_metadata(admin_client, ada):
    stored_updated_at = ada.updated_at

    admin_client.post(change_url(ada), form_data(ada))
    ada.refresh_from_db()
    assert ada.updated_at == stored_updated_at

    response = admin_client.post(
        change_url(ada),
        form_data(ada, first_name="Augusta", tags="vip\nnew\nvip", metadata='{"plan": "team", "region": "eu"}'),
        follow=True,
    )

    assert response.status_code == 200
    ada.refresh_from_db()
    assert ada.first_name == "Augusta"
    assert ada.tags == ["vip", "new"]
    assert ada.metadata == {"plan": "team", "region": "eu"}
    assert ada.updated_at > stored_updated_at
    assert list(Contact.objects.search("augusta", accounts=[ada.account_id]).values_list("pk", flat=True)) == [ada.pk]


def test_detail_page_shows_tags_metadata_statuses_lists_and_latest_activity(admin_client, account, ada):
    contact_list = list_create(account=account, name="Newsletter")
    list_add_members(account=account, contact_list=contact_list, contact_ids=[ada.pk])
    contact_set_preferences(account=account, contact_id=ada.pk, statuses={"sms": "opted_out"}, api_key_id=None)
    for number in range(25):
        activity_record(
            account=account,
            contact_id=ada.pk,
            data={"type": "message.sent", "channel": "email", "message_id": f"msg_{number:02d}"},
        )

    response = admin_client.get(change_url(ada))

    assert response.status_code == 200
    content = response.content.decode()
    assert "vip\nbeta</textarea>" in content
    assert "{\n  &quot;plan&quot;: &quot;pro&quot;,\n  &quot;seats&quot;: 12\n}</textarea>" in content
    assert "<tr><th>sms</th><td>opted_out</td></tr><tr><th>whatsapp</th><td>unset</td></tr>" in content
    assert (
        f'href="{reverse("admin:lists_contactlist_change", args=[quote(contact_list.pk)])}">Newsletter</a>' in content
    )
    assert content.count("msg_") == 20
    assert "msg_24" in content
    assert "msg_04" not in content
    assert f"{reverse('admin:contacts_activityevent_changelist')}?contact={ada.pk}" in content


def test_deleting_in_the_admin_goes_through_the_service_and_keeps_the_opt_out(admin_client, account, ada, api):
    contact_set_preferences(account=account, contact_id=ada.pk, statuses={"sms": "opted_out"}, api_key_id=None)

    response = admin_client.post(reverse("admin:contacts_contact_delete", args=[quote(ada.pk)]), {"post": "yes"})

    assert response.status_code == 302
    assert not Contact.objects.filter(pk=ada.pk).exists()
    assert set(SuppressionEntry.objects.values_list("channel", "identifier_hash")) == {
        ("sms", identifier_hash) for identifier_hash in identifier_hashes(phone="+14155552671", email="ada@example.com")
    }
    recreated = api.post("/v1/contacts", {"phone": "+14155552671"}, format="json").json()
    assert recreated["preferences"]["sms"] == "opted_out"


def test_delete_selected_uses_the_service_and_its_page_does_not_walk_the_cascade(admin_client, account, make_contact):
    first = make_contact(phone="+14155550101")
    second = make_contact(phone="+14155550102")
    contact_set_preferences(account=account, contact_id=first.pk, statuses={"voice": "opted_out"}, api_key_id=None)
    selected = {"action": "delete_selected", "_selected_action": [first.pk, second.pk]}

    confirmation = admin_client.post(CHANGELIST, selected)
    assert confirmation.status_code == 200
    assert dict(confirmation.context["model_count"]) == {"contacts": 2}
    assert confirmation.context["perms_lacking"] == set()

    admin_client.post(CHANGELIST, {**selected, "post": "yes"})

    assert Contact.objects.count() == 0
    assert ActivityEvent.objects.count() == 0
    assert sorted(SuppressionEntry.objects.values_list("channel", flat=True)) == ["voice"]


# --- actions --------------------------------------------------------------------------


def test_an_action_that_needs_input_shows_its_form_first(admin_client, ada):
    response = admin_client.post(CHANGELIST, {"action": "opt_out", "_selected_action": [ada.pk], "index": "0"})

    assert response.status_code == 200
    assert response.templates[0].name == "admin/action_form.html"
    assert response.context["selected"] == [ada.pk]
    assert list(response.context["form"].fields) == ["channel"]
    ada.refresh_from_db()
    assert ada.preferences == {}


def test_opt_out_action_sets_the_channel_and_records_the_event(admin_client, account, make_contact, ada):
    grace = make_contact(email="grace@example.com")
    contact_set_preferences(account=account, contact_id=grace.pk, statuses={"sms": "opted_out"}, api_key_id=None)

    response = run_action(admin_client, "opt_out", [ada, grace], channel="sms")

    assert shown_messages(response) == ["Opted 1 contact(s) out of sms."]
    ada.refresh_from_db()
    assert ada.preference_map == {**UNSET_ALL, "sms": "opted_out"}
    events = ActivityEvent.objects.filter(contact=ada)
    assert [(event.type, event.channel, event.data) for event in events] == [
        (
            "preference.updated",
            "sms",
            {"old_status": "unset", "new_status": "opted_out", "api_key_id": None, "reason": "api"},
        )
    ]
    assert ActivityEvent.objects.filter(contact=grace).count() == 1


def test_opt_out_action_rejects_an_unknown_channel(admin_client, ada):
    response = run_action(admin_client, "opt_out", [ada], channel="fax")

    assert response.templates[0].name == "admin/action_form.html"
    assert dict(response.context["form"].errors) == {
        "channel": ["Select a valid choice. fax is not one of the available choices."]
    }
    assert ActivityEvent.objects.count() == 0


def test_add_tag_action_appends_through_the_service(admin_client, make_contact, ada):
    grace = make_contact(email="grace@example.com", tags=["x"])

    response = run_action(admin_client, "add_tag", [ada, grace], tag="  vip ")

    assert shown_messages(response) == ["Tag “vip” added to 1 contact(s); 1 already had it."]
    ada.refresh_from_db()
    grace.refresh_from_db()
    assert ada.tags == ["vip", "beta"]
    assert grace.tags == ["x", "vip"]


def test_add_tag_action_validates_the_tag_like_the_api(admin_client, ada):
    response = run_action(admin_client, "add_tag", [ada], tag="t" * 65)

    assert dict(response.context["form"].errors) == {"tag": ["Ensure this field has no more than 64 characters."]}
    ada.refresh_from_db()
    assert ada.tags == ["vip", "beta"]


def test_add_tag_action_reports_contacts_at_the_tag_limit(admin_client, make_contact):
    full = make_contact(email="full@example.com", tags=[f"t{number}" for number in range(100)])

    response = run_action(admin_client, "add_tag", [full], tag="one-more")

    assert shown_messages(response) == [
        "Tag “one-more” added to 0 contact(s); 0 already had it.",
        f"Not tagged: {full.pk}: A contact can have at most 100 tags.",
    ]
    full.refresh_from_db()
    assert len(full.tags) == 100


def test_add_to_list_action_adds_the_contacts_of_the_lists_account(
    admin_client, account, other_account, make_contact, ada
):
    grace = make_contact(email="grace@example.com")
    stranger = make_contact(account=other_account, email="stranger@example.com")
    contact_list = list_create(account=account, name="Newsletter")
    list_create(account=other_account, name="Theirs")
    list_add_members(account=account, contact_list=contact_list, contact_ids=[grace.pk])

    form_page = admin_client.post(CHANGELIST, {"action": "add_to_list", "_selected_action": [ada.pk], "index": "0"})
    assert [str(choice[1]) for choice in form_page.context["form"].fields["contact_list"].choices] == [
        "---------",
        "Newsletter (Acme)",
    ]

    response = run_action(admin_client, "add_to_list", [ada, grace, stranger], contact_list=contact_list.pk)

    assert shown_messages(response) == [
        "Added 1 contact(s) to “Newsletter”; 1 were already members. 1 contact(s) of other accounts were skipped."
    ]
    assert set(ListMembership.objects.values_list("contact_id", flat=True)) == {ada.pk, grace.pk}
    contact_list.refresh_from_db()
    assert contact_list.member_count == 2


def test_add_to_list_action_refuses_a_list_of_another_account(admin_client, other_account, ada):
    theirs = list_create(account=other_account, name="Theirs")

    response = run_action(admin_client, "add_to_list", [ada], contact_list=theirs.pk)

    assert list(response.context["form"].errors) == ["contact_list"]
    assert ListMembership.objects.count() == 0


def test_export_csv_streams_the_selected_contacts(admin_client, account, make_contact, ada):
    grace = make_contact(email="grace@example.com", first_name="Grace", metadata={"note": 'a,"b"\nc'})
    make_contact(email="not-selected@example.com")
    contact_set_preferences(account=account, contact_id=ada.pk, statuses={"sms": "opted_out"}, api_key_id=None)
    ada.refresh_from_db()
    grace.refresh_from_db()

    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [ada.pk, grace.pk], "index": "0"}
    )

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="contacts.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = {
        ada.pk: [
            ada.pk,
            "+14155552671",
            "ada@example.com",
            "Ada",
            "Lovelace",
            "US",
            "customer",
            '["vip","beta"]',
            '{"plan":"pro","seats":12}',
            json.dumps({**UNSET_ALL, "sms": "opted_out"}, separators=(",", ":")),
            ada.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            ada.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ],
        grace.pk: [
            grace.pk,
            "",
            "grace@example.com",
            "Grace",
            "",
            "",
            "lead",
            "[]",
            '{"note":"a,\\"b\\"\\nc"}',
            json.dumps(UNSET_ALL, separators=(",", ":")),
            grace.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            grace.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        ],
    }
    newest_first = sorted([ada, grace], key=lambda contact: (contact.created_at, contact.pk), reverse=True)
    assert rows == [list(CSV_COLUMNS), *(expected[contact.pk] for contact in newest_first)]


# --- activity and suppression -------------------------------------------------------------


def test_activity_admin_is_read_only_and_filters_by_contact(admin_client, account, make_contact, ada):
    grace = make_contact(email="grace@example.com")
    event, _ = activity_record(
        account=account, contact_id=ada.pk, data={"type": "message.sent", "channel": "sms", "data": {"k": [1, 2]}}
    )
    other_event, _ = activity_record(account=account, contact_id=grace.pk, data={"type": "agent.interaction"})
    activity_changelist = reverse("admin:contacts_activityevent_changelist")

    def listed_events(**params):
        response = admin_client.get(activity_changelist, params)
        assert response.status_code == 200
        return [row.pk for row in response.context["cl"].result_list]

    assert listed_events(contact=ada.pk) == [event.pk]
    assert listed_events(type="agent.interaction") == [other_event.pk]
    assert listed_events(channel="sms") == [event.pk]
    detail = admin_client.get(reverse("admin:contacts_activityevent_change", args=[quote(event.pk)]))
    assert detail.status_code == 200
    assert "<pre>{\n  &quot;k&quot;: [\n    1,\n    2\n  ]\n}</pre>" in detail.content.decode()
    assert admin_client.get(reverse("admin:contacts_activityevent_add")).status_code == 403
    delete_url = reverse("admin:contacts_activityevent_delete", args=[quote(event.pk)])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert ActivityEvent.objects.filter(pk=event.pk).exists()


def test_suppression_admin_shows_hashes_only_and_finds_an_entry_by_phone_or_email(admin_client, account, ada):
    contact_set_preferences(account=account, contact_id=ada.pk, statuses={"sms": "opted_out"}, api_key_id=None)
    admin_client.post(reverse("admin:contacts_contact_delete", args=[quote(ada.pk)]), {"post": "yes"})
    phone_hash, email_hash = identifier_hashes(phone="+14155552671", email="ada@example.com")
    suppression_changelist = reverse("admin:contacts_suppressionentry_changelist")

    by_phone = admin_client.get(suppression_changelist, {"q": "+1 (415) 555-2671"})
    by_email = admin_client.get(suppression_changelist, {"q": "ADA@example.com"})
    everything = admin_client.get(suppression_changelist)

    assert [entry.identifier_hash for entry in by_phone.context["cl"].result_list] == [phone_hash]
    assert [entry.identifier_hash for entry in by_email.context["cl"].result_list] == [email_hash]
    assert {entry.identifier_hash for entry in everything.context["cl"].result_list} == {phone_hash, email_hash}
    assert b"4155552671" not in everything.content
    assert b"ada@example.com" not in everything.content
    assert admin_client.get(reverse("admin:contacts_suppressionentry_add")).status_code == 403


def test_typed_filters_keep_the_other_parameters_of_the_page(admin_client, account, ada):
    content = admin_client.get(CHANGELIST, {"q": "ada", "country": "us", "account": account.pk}).content.decode()

    forms = {
        re.search(r'type="text" name="(\w+)" value="(\w*)"', form).groups(): set(
            re.findall(r'type="hidden" name="(\w+)" value="(\w+)"', form)
        )
        for form in re.findall(r'<form method="get" class="input-filter">(.*?)</form>', content, re.S)
    }
    assert forms == {
        ("lifecycle_stage", ""): {("q", "ada"), ("country", "us"), ("account", account.pk)},
        ("country", "us"): {("q", "ada"), ("account", account.pk)},
    }


def test_contact_pickers_use_the_api_search(admin_client, make_contact):
    jose = make_contact(email="jg@example.com", first_name="José")
    make_contact(email="other@example.com", first_name="Other")

    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "lists", "model_name": "listmembership", "field_name": "contact", "term": "jose"},
    )

    assert response.status_code == 200
    assert response.json() == {"results": [{"id": jose.pk, "text": "José"}], "pagination": {"more": False}}
