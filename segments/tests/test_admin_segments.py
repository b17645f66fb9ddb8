"""The operators' admin for segments: rules validated by segments.rules with their path, saved by the services."""

import json

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from lists.services import list_create
from segments.models import Segment
from segments.services import segment_create

SEGMENTS = reverse("admin:segments_segment_changelist")
ADD = reverse("admin:segments_segment_add")
CONTACTS = reverse("admin:contacts_contact_changelist")
VIP = {"match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]}


def change_url(segment) -> str:
    return reverse("admin:segments_segment_change", args=[quote(segment.pk)])


def form_errors(response) -> dict:
    assert response.status_code == 200, response.status_code
    return {field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


def add(client, account, rules, name="VIPs"):
    return client.post(ADD, {"account": account.pk, "name": name, "rules": json.dumps(rules)})


@pytest.fixture
def vips(account):
    return segment_create(account=account, name="VIPs", rules=VIP)


def test_adding_a_segment_saves_valid_rules_through_the_service(admin_client, account):
    response = add(admin_client, account, VIP)

    assert response.status_code == 302
    segment = Segment.objects.get(account=account)
    assert (segment.name, segment.rules) == ("VIPs", VIP)
    assert segment.pk.startswith("seg_")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"match": "all", "conditions": [{"field": "tags", "operator": "eq", "value": "vip"}]},
            "rules.conditions.0.operator: Must be one of: contains, not_contains, contains_any, contains_all, "
            "exists, not_exists.",
        ),
        (
            {
                "match": "any",
                "conditions": [
                    {"field": "country", "operator": "eq", "value": "US"},
                    {"match": "all", "conditions": [{"field": "created_at", "operator": "gt", "value": "yesterday"}]},
                ],
            },
            "rules.conditions.1.conditions.0.value: Must be an RFC 3339 timestamp such as 2026-11-27T10:15:00Z.",
        ),
        ({"match": "some", "conditions": []}, 'rules.match: Must be "all" or "any".'),
        ([1, 2], "rules: Must be a group: an object with `match` and `conditions`."),
        (
            {"match": "all", "conditions": [{"field": "lists", "operator": "contains", "value": "lst_unknown"}]},
            "rules.conditions.0.value: Unknown list id.",
        ),
    ],
)
def test_invalid_rules_are_a_form_error_with_the_path(admin_client, account, rules, message):
    response = add(admin_client, account, rules)

    assert form_errors(response) == {"rules": [message]}
    assert Segment.objects.count() == 0


def test_a_list_of_another_account_is_an_unknown_list(admin_client, account, other_account):
    theirs = list_create(account=other_account, name="Theirs")
    ours = list_create(account=account, name="Ours")
    rules = {"match": "all", "conditions": [{"field": "lists", "operator": "contains", "value": theirs.pk}]}

    assert form_errors(add(admin_client, account, rules)) == {"rules": ["rules.conditions.0.value: Unknown list id."]}
    rules["conditions"][0]["value"] = ours.pk
    assert add(admin_client, account, rules).status_code == 302


def test_rules_that_are_not_json_are_a_form_error(admin_client, account):
    response = admin_client.post(ADD, {"account": account.pk, "name": "Broken", "rules": '{"match": '})

    assert form_errors(response) == {"rules": ["Enter valid JSON: Expecting value: line 1 column 11 (char 10)"]}
    assert Segment.objects.count() == 0


def test_a_duplicate_name_ignoring_case_is_a_form_error_naming_the_segment(admin_client, account, vips):
    response = add(admin_client, account, VIP, name="vips")

    assert form_errors(response) == {"name": [f"A segment with this name already exists: {vips.pk}."]}
    assert Segment.objects.count() == 1


def test_changing_rules_validates_and_saves_through_the_service(admin_client, account, vips):
    bad = {"match": "all", "conditions": [{"field": "metadata.", "operator": "eq", "value": 1}]}
    response = admin_client.post(change_url(vips), {"name": "VIPs", "rules": json.dumps(bad)})

    assert form_errors(response) == {"rules": ["rules.conditions.0.field: A metadata key has 1 to 40 characters."]}
    vips.refresh_from_db()
    assert vips.rules == VIP

    good = {"match": "any", "conditions": [{"field": "country", "operator": "in", "value": ["US", "TR"]}]}
    response = admin_client.post(change_url(vips), {"name": "Americas and Turkey", "rules": json.dumps(good)})

    assert response.status_code == 302
    vips.refresh_from_db()
    assert (vips.name, vips.rules) == ("Americas and Turkey", good)


def test_change_page_shows_rules_as_indented_json_and_the_live_member_count(admin_client, make_contact, vips):
    members = [make_contact(phone=f"+1415555000{number}", tags=["vip"]) for number in range(2)]
    make_contact(phone="+14155550009", tags=["other"])
    members_url = f"{CONTACTS}?segment={vips.pk}"

    content = admin_client.get(change_url(vips)).content.decode()

    assert "{\n  &quot;match&quot;: &quot;all&quot;,\n  &quot;conditions&quot;: [\n    {\n" in content
    assert f'<a href="{members_url}">2 contacts match now</a>' in content
    members_page = admin_client.get(members_url)
    assert {contact.pk for contact in members_page.context["cl"].result_list} == {contact.pk for contact in members}
    make_contact(phone="+14155550008", tags=["vip"])
    assert f'<a href="{members_url}">3 contacts match now</a>' in admin_client.get(change_url(vips)).content.decode()


def test_segment_changelist_counts_no_members(admin_client, account, make_contact, django_assert_num_queries):
    make_contact(phone="+14155550001", tags=["vip"])
    segment_create(account=account, name="One", rules=VIP)
    # Session, user, the account filter's choices, the count of segments, the page: no member count per row.
    with django_assert_num_queries(5) as captured:
        assert admin_client.get(SEGMENTS).status_code == 200
    assert not any("contacts_contact" in query["sql"] for query in captured.captured_queries)
    for number in range(4):
        segment_create(account=account, name=f"More {number}", rules=VIP)
    with django_assert_num_queries(5):
        assert admin_client.get(SEGMENTS).status_code == 200


def test_renaming_keeps_stored_rules_without_revalidating_them(admin_client, account):
    gone = list_create(account=account, name="Gone")
    rules = {"match": "all", "conditions": [{"field": "lists", "operator": "contains", "value": gone.pk}]}
    segment = segment_create(account=account, name="In Gone", rules=rules)
    gone.delete()

    response = admin_client.post(change_url(segment), {"name": "Was in Gone", "rules": json.dumps(rules)})

    assert response.status_code == 302
    segment.refresh_from_db()
    assert (segment.name, segment.rules) == ("Was in Gone", rules)
    changed = {"match": "any", "conditions": rules["conditions"]}
    response = admin_client.post(change_url(segment), {"name": "Was in Gone", "rules": json.dumps(changed)})
    assert form_errors(response) == {"rules": ["rules.conditions.0.value: Unknown list id."]}


def test_rules_postgresql_cannot_store_are_a_form_error_not_a_500(admin_client, account):
    nan = '{"match": "all", "conditions": [{"field": "metadata.score", "operator": "eq", "value": NaN}]}'
    nul = '{"match": "all", "conditions": [{"field": "first_name", "operator": "eq", "value": "a\\u0000"}]}'

    assert form_errors(admin_client.post(ADD, {"account": account.pk, "name": "N", "rules": nan})) == {
        "rules": ["Enter valid JSON: NaN is not valid JSON"]
    }
    assert form_errors(admin_client.post(ADD, {"account": account.pk, "name": "N", "rules": nul})) == {
        "rules": ["Enter valid JSON: conditions.0.value: NUL characters (\\u0000) are not allowed."]
    }
    assert Segment.objects.count() == 0
