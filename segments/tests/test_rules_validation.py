"""Validation of the segment rule language (API.md §8), without a database.

Every field and operator of the §8 table has a valid condition, and every way a
tree can be wrong raises ``RuleError`` whose ``attr`` points at the exact item
(``conditions.1.value``), the path the API prefixes with ``rules.``.
"""

import pytest

from segments.rules import RuleError, list_references, validate_rules

TEXT_FIELDS = ["first_name", "last_name", "email", "phone", "country", "lifecycle_stage"]
CHANNELS = ["sms", "whatsapp", "email", "rcs", "viber", "voice"]
STATUSES = ["opted_in", "opted_out", "unset"]
EMAIL_EXISTS = {"field": "email", "operator": "exists"}
MISSING = object()


def condition(field, operator, value=MISSING):
    item = {"field": field, "operator": operator}
    if value is not MISSING:
        item["value"] = value
    return item


def rules(*conditions, match="all"):
    return {"match": match, "conditions": list(conditions)}


def error_attr(tree) -> str:
    with pytest.raises(RuleError) as caught:
        validate_rules(tree)
    assert caught.value.message, caught.value
    return caught.value.attr


def nested(levels):
    """``levels`` groups, each the only item of its parent; the innermost holds one condition."""
    tree = rules(EMAIL_EXISTS)
    for _ in range(levels - 1):
        tree = rules(tree, match="any")
    return tree


def many(count, *extra):
    """A group of ``count`` valid conditions followed by ``extra`` items."""
    return rules(*[condition("first_name", "eq", f"name{index}") for index in range(count)], *extra, match="any")


# --- Valid trees -----------------------------------------------------------------

VALID_CONDITIONS = [
    *[condition(field, "eq", "x") for field in TEXT_FIELDS],
    *[condition(field, "neq", "x") for field in TEXT_FIELDS],
    *[condition(field, "in", ["x", "y"]) for field in TEXT_FIELDS],
    *[condition(field, "not_in", ["x"]) for field in TEXT_FIELDS],
    *[condition(field, "starts_with", "x") for field in TEXT_FIELDS],
    *[condition(field, "ends_with", "x") for field in TEXT_FIELDS],
    *[condition(field, "contains", "x") for field in TEXT_FIELDS],
    *[condition(field, "exists") for field in TEXT_FIELDS],
    *[condition(field, "not_exists") for field in TEXT_FIELDS],
    condition("email", "eq", ""),
    condition("phone", "eq", "+14155552671"),
    condition("country", "in", ["us", "GB"]),
    condition("tags", "contains", "vip"),
    condition("tags", "not_contains", "vip"),
    condition("tags", "contains_any", ["vip", "beta"]),
    condition("tags", "contains_all", ["vip"]),
    condition("tags", "exists"),
    condition("tags", "not_exists"),
    condition("tags", "contains", "t" * 64),
    condition("tags", "contains_any", ["t" * 64]),
    condition("lists", "contains", "lst_8fK2mQ1xZp4sT7vB"),
    condition("lists", "not_contains", "lst_8fK2mQ1xZp4sT7vB"),
    *[
        condition(field, operator, "2026-11-27T10:15:00Z")
        for field in ["created_at", "updated_at"]
        for operator in ["gt", "gte", "lt", "lte"]
    ],
    condition("created_at", "gt", "2026-11-27T10:15:00.123456+05:30"),
    condition("created_at", "lt", "2026-11-27T10:15:00-08:00"),
    condition("created_at", "lte", "2026-11-27t10:15:00z"),
    condition("updated_at", "gte", "2024-02-29T23:59:59Z"),
    *[
        condition(field, operator, duration)
        for field in ["created_at", "updated_at"]
        for operator in ["within_last", "not_within_last"]
        for duration in ["30d", "12h", "45m", "1d", "999999m"]
    ],
    *[
        condition("metadata.plan", operator, value)
        for operator in ["eq", "neq"]
        for value in ["pro", "", 12, 12.5, -3, 0, True, False, None, {"a": [1, {"b": None}]}, {}, [1, "x"], []]
    ],
    condition("metadata.plan", "in", ["pro", 12, True, None, {"a": 1}, [1]]),
    condition("metadata.plan", "not_in", ["pro"]),
    *[
        condition("metadata.seats", operator, value)
        for operator in ["gt", "gte", "lt", "lte"]
        for value in [10, 10.5, -1, 0, "m", ""]
    ],
    condition("metadata.plan", "contains", "pr"),
    condition("metadata.plan", "contains", 3),
    condition("metadata.plan", "contains", 2.5),
    condition("metadata.plan", "contains", True),
    condition("metadata.plan", "exists"),
    condition("metadata.plan", "not_exists"),
    condition("metadata." + "k" * 40, "eq", 1),
    condition("metadata.k", "eq", 1),
    condition("metadata.a.b", "eq", 1),
    condition('metadata.it\'s "odd" $(x) -- \\', "exists"),
    *[
        condition(f"preferences.{channel}", operator, status)
        for channel in CHANNELS
        for operator in ["eq", "neq"]
        for status in STATUSES
    ],
]


@pytest.mark.parametrize("item", VALID_CONDITIONS, ids=lambda item: f"{item['field']}-{item['operator']}")
def test_valid_condition_passes(item):
    assert validate_rules(rules(item)) is None


def test_every_field_and_operator_of_the_table_has_a_valid_case():
    covered = {(item["field"].split(".")[0], item["operator"]) for item in VALID_CONDITIONS}
    text = {(field, op) for field in TEXT_FIELDS for op in ["eq", "neq", "in", "not_in"]}
    text |= {(field, op) for field in TEXT_FIELDS for op in ["starts_with", "ends_with", "contains"]}
    text |= {(field, op) for field in TEXT_FIELDS for op in ["exists", "not_exists"]}
    tags = {("tags", op) for op in ["contains", "not_contains", "contains_any", "contains_all", "exists", "not_exists"]}
    lists = {("lists", "contains"), ("lists", "not_contains")}
    dates = {
        (field, op)
        for field in ["created_at", "updated_at"]
        for op in ["gt", "gte", "lt", "lte", "within_last", "not_within_last"]
    }
    metadata = {
        ("metadata", op)
        for op in ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists", "not_exists"]
    }
    preferences = {("preferences", "eq"), ("preferences", "neq")}
    assert covered == text | tags | lists | dates | metadata | preferences


def test_any_group_of_several_conditions_passes():
    tree = rules(
        condition("country", "eq", "US"),
        condition("tags", "contains", "vip"),
        rules(
            condition("lifecycle_stage", "in", ["customer", "lead"]),
            condition("metadata.plan", "eq", "pro"),
            match="any",
        ),
    )
    assert validate_rules(tree) is None


def test_groups_nest_five_deep():
    assert validate_rules(nested(5)) is None


def test_a_group_holds_fifty_items():
    assert validate_rules(many(50)) is None


def test_a_rule_set_holds_two_hundred_conditions_spread_over_nested_groups():
    tree = rules(EMAIL_EXISTS, many(49, many(50)), many(50), many(50))
    assert validate_rules(tree) is None


def test_exists_accepts_an_explicit_null_value():
    assert validate_rules(rules(condition("email", "exists", None))) is None


# --- The tree and its groups ---------------------------------------------------------


@pytest.mark.parametrize("tree", [None, [], [EMAIL_EXISTS], "all", 1, True])
def test_a_tree_that_is_not_an_object_is_rejected_at_the_root(tree):
    assert error_attr(tree) == ""


@pytest.mark.parametrize("match", ["ALL", "Any", "none", "", None, True, ["all"]])
def test_match_must_be_all_or_any(match):
    assert error_attr({"match": match, "conditions": [EMAIL_EXISTS]}) == "match"


def test_match_is_required():
    assert error_attr({"conditions": [EMAIL_EXISTS]}) == "match"


def test_match_of_a_nested_group_is_checked():
    assert error_attr(rules(EMAIL_EXISTS, {"match": "some", "conditions": [EMAIL_EXISTS]})) == "conditions.1.match"


@pytest.mark.parametrize("conditions", [None, {}, EMAIL_EXISTS, "email", 1])
def test_conditions_must_be_a_list(conditions):
    assert error_attr({"match": "all", "conditions": conditions}) == "conditions"


def test_conditions_are_required():
    assert error_attr({"match": "any"}) == "conditions"


def test_conditions_may_not_be_empty():
    assert error_attr(rules()) == "conditions"


def test_a_group_holds_at_most_fifty_items():
    assert error_attr(many(51)) == "conditions"


def test_a_nested_group_of_fifty_one_items_is_rejected_at_its_conditions():
    assert error_attr(rules(EMAIL_EXISTS, many(51))) == "conditions.1.conditions"


def test_a_nested_empty_group_is_rejected_at_its_conditions():
    assert error_attr(rules(EMAIL_EXISTS, rules(match="any"))) == "conditions.1.conditions"


def test_unknown_key_in_the_root_group():
    assert error_attr({"match": "all", "conditions": [EMAIL_EXISTS], "name": "x"}) == "name"


def test_unknown_key_in_a_nested_group():
    tree = rules(EMAIL_EXISTS, {"match": "any", "conditions": [EMAIL_EXISTS], "negate": True})
    assert error_attr(tree) == "conditions.1.negate"


def test_unknown_key_in_a_condition():
    assert error_attr(rules({**EMAIL_EXISTS, "values": ["x"]})) == "conditions.0.values"


def test_unknown_key_in_a_deep_condition():
    tree = rules(EMAIL_EXISTS, rules(EMAIL_EXISTS, rules({"field": "email", "operator": "eq", "value": "a", "x": 1})))
    assert error_attr(tree) == "conditions.1.conditions.1.conditions.0.x"


@pytest.mark.parametrize("item", [None, "email", 1, ["email", "exists"], True])
def test_an_item_that_is_neither_condition_nor_group(item):
    assert error_attr(rules(EMAIL_EXISTS, item)) == "conditions.1"


def test_a_group_nested_six_deep_is_rejected_at_the_sixth_group():
    assert error_attr(nested(6)) == ".".join(["conditions.0"] * 5)


def test_two_hundred_and_one_conditions_are_rejected_at_the_last_one():
    tree = rules(many(50), many(50), many(50), many(50), EMAIL_EXISTS)
    assert error_attr(tree) == "conditions.4"


def test_two_hundred_and_one_conditions_spread_over_nested_groups():
    tree = rules(EMAIL_EXISTS, many(49, many(50)), many(50), many(50), EMAIL_EXISTS)
    assert error_attr(tree) == "conditions.4"


def test_the_two_hundred_and_first_condition_deep_in_the_tree():
    tree = rules(many(50), many(50), many(50), many(49, many(2)))
    assert error_attr(tree) == "conditions.3.conditions.49.conditions.1"


# --- Fields and operators ---------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "Email",
        "first name",
        "tag",
        "list",
        "metadata",
        "preferences",
        "created",
        "id",
        "account",
        "search_vector",
        "phone_digits",
        "",
        None,
        1,
        ["email"],
    ],
)
def test_unknown_field(field):
    assert error_attr(rules(EMAIL_EXISTS, condition(field, "exists"))) == "conditions.1.field"


def test_field_is_required():
    assert error_attr(rules({"operator": "exists"})) == "conditions.0.field"


@pytest.mark.parametrize("field", ["metadata.", "metadata." + "k" * 41])
def test_metadata_key_of_a_wrong_length(field):
    assert error_attr(rules(condition(field, "exists"))) == "conditions.0.field"


@pytest.mark.parametrize("field", ["preferences.fax", "preferences.SMS", "preferences.", "preferences.sms.x"])
def test_unknown_preferences_channel(field):
    assert error_attr(rules(condition(field, "eq", "opted_in"))) == "conditions.0.field"


@pytest.mark.parametrize(
    ("field", "operator"),
    [
        ("tags", "eq"),
        ("tags", "in"),
        ("tags", "neq"),
        ("created_at", "eq"),
        ("updated_at", "neq"),
        ("created_at", "exists"),
        ("created_at", "in"),
        ("lists", "eq"),
        ("lists", "exists"),
        ("lists", "contains_any"),
        ("email", "gt"),
        ("email", "contains_any"),
        ("country", "within_last"),
        ("lifecycle_stage", "not_contains"),
        ("metadata.plan", "contains_all"),
        ("metadata.plan", "not_contains"),
        ("metadata.plan", "starts_with"),
        ("metadata.plan", "within_last"),
        ("preferences.sms", "in"),
        ("preferences.sms", "exists"),
        ("preferences.sms", "not_in"),
        ("email", "EQ"),
        ("email", ""),
        ("email", None),
        ("email", 1),
    ],
)
def test_unknown_operator_for_the_field(field, operator):
    assert error_attr(rules(EMAIL_EXISTS, condition(field, operator, "x"))) == "conditions.1.operator"


def test_operator_is_required():
    assert error_attr(rules({"field": "email", "value": "x"})) == "conditions.0.operator"


# --- Values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "operator"),
    [
        ("email", "eq"),
        ("first_name", "in"),
        ("tags", "contains"),
        ("tags", "contains_any"),
        ("lists", "contains"),
        ("created_at", "gt"),
        ("updated_at", "within_last"),
        ("metadata.plan", "eq"),
        ("metadata.plan", "neq"),
        ("metadata.plan", "in"),
        ("metadata.plan", "gt"),
        ("metadata.plan", "contains"),
        ("preferences.sms", "eq"),
    ],
)
def test_missing_value(field, operator):
    assert error_attr(rules(condition(field, operator))) == "conditions.0.value"


@pytest.mark.parametrize("value", ["x", "", 0, False, [], {}])
@pytest.mark.parametrize(
    ("field", "operator"),
    [("email", "exists"), ("phone", "not_exists"), ("tags", "exists"), ("metadata.plan", "not_exists")],
)
def test_a_value_for_exists_or_not_exists(field, operator, value):
    assert error_attr(rules(condition(field, operator, value))) == "conditions.0.value"


@pytest.mark.parametrize("value", [12, 1.5, True, None, ["x"], {"x": 1}, "x" * 1001])
@pytest.mark.parametrize("field", TEXT_FIELDS)
@pytest.mark.parametrize("operator", ["eq", "neq", "starts_with", "ends_with", "contains"])
def test_text_operators_need_a_string(field, operator, value):
    assert error_attr(rules(condition(field, operator, value))) == "conditions.0.value"


@pytest.mark.parametrize("value", ["x", 1, None, {"x": 1}, [], [str(index) for index in range(1001)]])
@pytest.mark.parametrize("operator", ["in", "not_in"])
def test_in_and_not_in_need_a_non_empty_list(operator, value):
    assert error_attr(rules(condition("lifecycle_stage", operator, value))) == "conditions.0.value"


@pytest.mark.parametrize(
    ("value", "attr"), [(["a", 1], "value.1"), ([None], "value.0"), (["a", "b", ["c"]], "value.2")]
)
@pytest.mark.parametrize("operator", ["in", "not_in"])
def test_in_and_not_in_need_strings_on_text_fields(operator, value, attr):
    assert error_attr(rules(condition("email", operator, value))) == f"conditions.0.{attr}"


@pytest.mark.parametrize("operator", ["contains", "not_contains"])
@pytest.mark.parametrize("value", [["vip"], 1, None, {"tag": "vip"}, "t" * 65])
def test_tags_contains_needs_one_tag(operator, value):
    assert error_attr(rules(condition("tags", operator, value))) == "conditions.0.value"


@pytest.mark.parametrize("operator", ["contains_any", "contains_all"])
@pytest.mark.parametrize("value", ["vip", 1, None, {"tag": "vip"}, []])
def test_tags_contains_any_and_all_need_a_list(operator, value):
    assert error_attr(rules(condition("tags", operator, value))) == "conditions.0.value"


@pytest.mark.parametrize("operator", ["contains_any", "contains_all"])
@pytest.mark.parametrize(("value", "attr"), [(["vip", 1], "value.1"), (["t" * 65], "value.0"), ([None], "value.0")])
def test_tags_list_items_must_be_tags(operator, value, attr):
    assert error_attr(rules(condition("tags", operator, value))) == f"conditions.0.{attr}"


@pytest.mark.parametrize("value", [1, None, ["lst_x"], {"id": "lst_x"}, "l" * 65])
@pytest.mark.parametrize("operator", ["contains", "not_contains"])
def test_lists_need_one_list_id(operator, value):
    assert error_attr(rules(condition("lists", operator, value))) == "conditions.0.value"


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-27T10:15:00",
        "2026-11-27",
        "2026-13-27T10:15:00Z",
        "2026-00-10T10:15:00Z",
        "2026-02-30T10:15:00Z",
        "2026-11-27T25:15:00Z",
        "2026-11-27T10:61:00Z",
        "2026-11-27T10:15:00+0100",
        "0001-01-01T00:00:00+10:00",  # before year 1 in UTC
        "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0667T10:15:00Z",  # Arabic-Indic digits
        "9999-12-31T23:00:00-10:00",  # after year 9999 in UTC
        "2026-11-27T10:15Z",
        "27/11/2026 10:15:00Z",
        "yesterday",
        "now",
        "",
        " 2026-11-27T10:15:00Z",
        "2026-11-27T10:15:00Z ",
        "2026-11-27T10:15:00Z\n",
        1764238500,
        None,
        ["2026-11-27T10:15:00Z"],
    ],
)
def test_malformed_timestamp(value):
    assert error_attr(rules(condition("created_at", "gt", value))) == "conditions.0.value"


@pytest.mark.parametrize("operator", ["gt", "gte", "lt", "lte"])
@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_every_timestamp_operator_checks_its_value(field, operator):
    assert error_attr(rules(EMAIL_EXISTS, condition(field, operator, "yesterday"))) == "conditions.1.value"


@pytest.mark.parametrize(
    "value",
    [
        "30",
        "0d",
        "00d",
        "30s",
        "30w",
        "-1d",
        "+1d",
        "1.5h",
        "d",
        "30D",
        "30 d",
        " 30d",
        "30d ",
        "30d\n",
        "1d12h",
        "1000000d",
        "",
        30,
        None,
        ["30d"],
        "P30D",
    ],
)
def test_malformed_duration(value):
    assert error_attr(rules(condition("created_at", "within_last", value))) == "conditions.0.value"


@pytest.mark.parametrize("value", ["30", "0d", "30s", "-1d", "1.5h", "d"])
@pytest.mark.parametrize("operator", ["within_last", "not_within_last"])
@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_every_duration_operator_checks_its_value(field, operator, value):
    assert error_attr(rules(EMAIL_EXISTS, condition(field, operator, value))) == "conditions.1.value"


@pytest.mark.parametrize("value", ["opted-in", "OPTED_IN", "optedin", "", "yes", None, True, 1, ["opted_in"], {}])
@pytest.mark.parametrize("operator", ["eq", "neq"])
def test_preference_value_must_be_a_status(operator, value):
    assert error_attr(rules(condition("preferences.sms", operator, value))) == "conditions.0.value"


@pytest.mark.parametrize("value", [True, False, None, {"n": 1}, [1], []])
@pytest.mark.parametrize("operator", ["gt", "gte", "lt", "lte"])
def test_metadata_comparison_needs_a_number_or_string(operator, value):
    assert error_attr(rules(condition("metadata.seats", operator, value))) == "conditions.0.value"


@pytest.mark.parametrize("value", [{"a": 1}, {}, ["a"], [], None])
def test_metadata_contains_needs_a_scalar(value):
    assert error_attr(rules(condition("metadata.plan", "contains", value))) == "conditions.0.value"


@pytest.mark.parametrize("value", ["pro", 12, None, {"a": 1}, [], list(range(1001))])
@pytest.mark.parametrize("operator", ["in", "not_in"])
def test_metadata_in_needs_a_non_empty_list(operator, value):
    assert error_attr(rules(condition("metadata.plan", operator, value))) == "conditions.0.value"


def test_the_first_error_in_tree_order_is_reported():
    tree = rules(
        EMAIL_EXISTS,
        rules(EMAIL_EXISTS, condition("created_at", "within_last", "30"), match="any"),
        condition("bogus", "eq", "x"),
    )
    assert error_attr(tree) == "conditions.1.conditions.1.value"


def test_rule_error_attr_joins_the_path():
    assert RuleError(("conditions", 2, "value"), "Must be a string.").attr == "conditions.2.value"
    assert RuleError((), "Must be a group.").attr == ""


# --- list_references -----------------------------------------------------------------------


def test_list_references_names_every_lists_condition_with_its_value_path():
    tree = rules(
        condition("lists", "contains", "lst_a"),
        rules(
            EMAIL_EXISTS,
            rules(condition("lists", "not_contains", "lst_b"), condition("tags", "contains", "lst_c")),
            match="any",
        ),
        condition("metadata.lists", "eq", "lst_d"),
        condition("lists", "contains", "lst_a"),
    )
    validate_rules(tree)
    assert list_references(tree) == [
        (("conditions", 0, "value"), "lst_a"),
        (("conditions", 1, "conditions", 1, "conditions", 0, "value"), "lst_b"),
        (("conditions", 3, "value"), "lst_a"),
    ]


def test_list_references_of_a_tree_without_lists_is_empty():
    tree = rules(EMAIL_EXISTS, rules(condition("tags", "contains", "vip"), match="any"))
    assert list_references(tree) == []
