"""Schema-driven fuzzing: every operation of /v1/schema against the app itself (API.md §2, §10).

Schemathesis reads the OpenAPI document the app serves and generates
requests for every operation, valid ones and invalid ones (negative mode:
wrong types, out-of-range numbers, NUL characters, unknown fields and query
parameters, a missing or malformed key…). Every answer must be documented:
no 5xx, a status code the operation lists, a body and headers that match
that status code's schema, and invalid input rejected (4xx).

The requests go through the project's WSGI application in this process,
inside the test's transaction, as an account that has contacts (one opted
out, one with activity), a list with members and a segment; path ids are
sometimes those real ids, so the fuzzer reaches past the 404s. Each example
runs in a savepoint that is rolled back, so every example sees the same
data whatever ran before it.

Bounded and reproducible: a fixed number of examples per operation
(``FUZZ_MAX_EXAMPLES`` raises it for a deeper local run) and ``derandomize``
(Hypothesis derives its choices from the test itself; no example database),
so CI sends the same requests every time.
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import Account
from accounts.services import api_key_create
from contacts.services import activity_record, contact_set_preferences
from contacts_project.wsgi import application
from lists.services import list_add_members, list_create
from segments.services import segment_create

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_MAX_EXAMPLES", "100"))

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]

schema = schemathesis.openapi.from_wsgi("/v1/schema?format=json", application)


@pytest.fixture
def in_test_transaction():
    """Keep Django's per-request connection recycling out of the test's transaction.

    ``close_old_connections`` runs when a request starts and finishes; inside
    the test's transaction it would mark the connection for rollback. Django's
    own test client disconnects it the same way.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_account(db, in_test_transaction, make_contact):
    """An account with something behind every id-taking path; its key and ids by path parameter."""
    account = Account.objects.create(name="Fuzz")
    _, raw_key = api_key_create(account=account, name="fuzz")
    ada = make_contact(
        account=account,
        phone="+14155552671",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        tags=["vip", "beta"],
        metadata={"plan": "pro", "seats": 12},
    )
    grace = make_contact(account=account, email="grace@example.com", first_name="Grace", tags=["vip"])
    make_contact(account=account, phone="+442071838750", country="GB", lifecycle_stage="customer")
    contact_set_preferences(account=account, contact_id=grace.id, statuses={"sms": "opted_out"}, api_key_id=None)
    activity_record(
        account=account,
        contact_id=ada.id,
        data={"type": "message.delivered", "channel": "sms", "message_id": "msg_1", "data": {"status": "ok"}},
    )
    newsletter = list_create(account=account, name="Newsletter")
    list_add_members(account=account, contact_list=newsletter, contact_ids=[ada.id, grace.id])
    segment = segment_create(
        account=account,
        name="VIPs",
        rules={"match": "all", "conditions": [{"field": "tags", "operator": "contains", "value": "vip"}]},
    )
    return raw_key, {
        "/v1/contacts/lists/": {"id": [newsletter.id], "contact_id": [ada.id, grace.id]},
        "/v1/contacts/segments/": {"id": [segment.id]},
        "/v1/contacts/": {"id": [ada.id, grace.id], "tag": ["vip", "beta", "absent"]},
    }


def _known_ids(ids_by_prefix: dict, path: str) -> dict:
    for prefix, ids in ids_by_prefix.items():
        if path.startswith(prefix):
            return ids
    return {}


@schema.parametrize()
@schema.given(data=st.data())
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, data, fuzz_account):
    raw_key, ids_by_prefix = fuzz_account
    if not case.operation.schema.is_security_param_negated(case):
        # A case that negates the key itself (missing, malformed) is sent as generated: a 401.
        headers = CaseInsensitiveDict(case.headers or {})
        headers["Authorization"] = f"Bearer {raw_key}"
        case.headers = headers
    for name, ids in _known_ids(ids_by_prefix, case.operation.path).items():
        if name in (case.path_parameters or {}) and data.draw(st.booleans(), label=f"a real {name}"):
            # Assigned, not edited in place, so schemathesis re-checks whether the case is still negative.
            case.path_parameters = {**case.path_parameters, name: data.draw(st.sampled_from(ids), label=name)}
    with transaction.atomic():
        response = case.call()
        transaction.set_rollback(True)
    case.validate_response(response, checks=CHECKS)
