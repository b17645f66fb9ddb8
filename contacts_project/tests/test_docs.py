"""The OpenAPI document, the docs pages, the health check and deploy settings (API.md §10)."""

import json
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import yaml
from django.conf import settings

OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi"
METHODS = {"get", "post", "put", "patch", "delete", "head", "options", "trace"}

# The endpoints served today (API.md §4 to §8), path parameters written as "{}".
CONTACT_OPERATIONS = {
    "/v1/contacts": {"get", "post"},
    "/v1/contacts/{}": {"get", "put", "patch", "delete"},
    "/v1/contacts/{}/tags": {"post"},
    "/v1/contacts/{}/tags/{}": {"delete"},
    "/v1/contacts/{}/activity": {"get", "post"},
    "/v1/contacts/{}/preferences": {"put"},
    "/v1/contacts/optouts": {"get"},
    "/v1/contacts/lists": {"get", "post"},
    "/v1/contacts/lists/{}": {"get", "put", "patch", "delete"},
    "/v1/contacts/lists/{}/members": {"get", "post"},
    "/v1/contacts/lists/{}/members/{}": {"delete"},
    "/v1/contacts/segments": {"get", "post"},
    "/v1/contacts/segments/{}": {"get", "put", "patch", "delete"},
    "/v1/contacts/segments/{}/members": {"get"},
    "/v1/contacts/segments/preview": {"post"},
}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/v1/schema?format=json")
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def normalized(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def operations(schema) -> dict[str, set[str]]:
    """Every documented /v1/contacts operation: normalized path -> methods."""
    return {
        normalized(path): {method for method in item if method in METHODS}
        for path, item in schema["paths"].items()
        if path == "/v1/contacts" or path.startswith("/v1/contacts/")
    }


def contact_operations(schema):
    for path, item in schema["paths"].items():
        if normalized(path) in CONTACT_OPERATIONS:
            for method, operation in item.items():
                if method in METHODS:
                    yield normalized(path), method, operation


def resolve(schema, node):
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = schema["components"][section][name]
    return node


def object_alternatives(schema, node):
    """The object schemas a (possibly oneOf/anyOf) schema stands for."""
    node = resolve(schema, node)
    for key in ("oneOf", "anyOf"):
        if key in node:
            return [alt for choice in node[key] for alt in object_alternatives(schema, choice)]
    return [node]


def assert_error_shape(schema, response, where):
    assert "application/json" in response.get("content", {}), f"{where}: no error body documented"
    body_schema = response["content"]["application/json"]["schema"]
    alternatives = object_alternatives(schema, body_schema)
    assert alternatives
    for alternative in alternatives:
        assert {"type", "errors"} <= set(alternative["required"])
        item = resolve(schema, alternative["properties"]["errors"]["items"])
        assert {"code", "detail", "attr"} <= set(item["properties"])


# --- The OpenAPI document ---------------------------------------------------


def test_schema_is_openapi_3_without_a_key(anonymous_api, db):
    response = anonymous_api.get("/v1/schema")

    assert response.status_code == 200
    assert response["Content-Type"].startswith(OPENAPI_MEDIA_TYPE)
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Contacts API"


def test_schema_in_json_is_the_same_document(anonymous_api, db):
    as_yaml = yaml.safe_load(anonymous_api.get("/v1/schema").content)

    response = anonymous_api.get("/v1/schema?format=json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith(f"{OPENAPI_MEDIA_TYPE}+json")
    assert json.loads(response.content) == as_yaml


def test_schema_lists_every_contact_path_and_method(schema):
    documented = operations(schema)

    assert {path: documented.get(path) for path in CONTACT_OPERATIONS} == CONTACT_OPERATIONS


def test_schema_lists_no_operation_beyond_the_built_ones(schema):
    # Each resource's issue adds its operations to CONTACT_OPERATIONS.
    assert operations(schema) == CONTACT_OPERATIONS


def test_paths_have_no_trailing_slash(schema):
    assert [path for path in schema["paths"] if path.endswith("/")] == []


def test_every_contact_operation_requires_the_bearer_key(schema):
    schemes = schema["components"]["securitySchemes"]
    bearer = {
        name
        for name, scheme in schemes.items()
        if scheme["type"] == "http" and scheme.get("scheme", "").lower() == "bearer"
    }
    assert bearer

    for path, method, operation in contact_operations(schema):
        requirements = operation.get("security", schema.get("security", []))
        assert any(set(requirement) & bearer for requirement in requirements), (path, method)
        assert {} not in requirements, (path, method)


def test_every_contact_operation_documents_401(schema):
    for path, method, operation in contact_operations(schema):
        assert "401" in operation["responses"], (path, method)
        assert_error_shape(schema, operation["responses"]["401"], (path, method))


def test_operations_on_one_contact_document_404(schema):
    for path, method, operation in contact_operations(schema):
        if "{}" in path:
            assert "404" in operation["responses"], (path, method)
            assert_error_shape(schema, operation["responses"]["404"], (path, method))


def test_operations_taking_input_document_400(schema):
    taking_input = {
        ("/v1/contacts", "get"),
        ("/v1/contacts", "post"),
        ("/v1/contacts/{}", "put"),
        ("/v1/contacts/{}", "patch"),
        ("/v1/contacts/{}/tags", "post"),
    }
    seen = set()
    for path, method, operation in contact_operations(schema):
        if (path, method) in taking_input:
            seen.add((path, method))
            assert "400" in operation["responses"], (path, method)
            assert_error_shape(schema, operation["responses"]["400"], (path, method))

    assert seen == taking_input


def test_put_documents_a_partial_body_like_patch(schema):
    # PUT and PATCH both update partially (API.md §4): neither may document a required field.
    for path, item in schema["paths"].items():
        if "put" not in item:
            continue
        bodies = [
            item[method]["requestBody"]["content"]["application/json"]["schema"]
            for method in ("put", "patch")
            if method in item
        ]
        assert all(body == bodies[0] for body in bodies), path
        assert not resolve(schema, bodies[0]).get("required"), path


def test_list_endpoint_documents_cursor_and_limit(schema):
    parameters = {
        parameter["name"]: parameter
        for parameter in schema["paths"]["/v1/contacts"]["get"]["parameters"]
        if parameter["in"] == "query"
    }

    assert parameters["cursor"]["schema"]["type"] == "string"
    assert parameters["cursor"].get("required", False) is False
    assert parameters["limit"]["schema"]["type"] == "integer"
    assert parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["limit"]["schema"]["maximum"] == 100
    assert parameters["limit"]["schema"]["default"] == 20
    assert parameters["limit"].get("required", False) is False


def test_list_endpoint_documents_its_filters(schema):
    parameters = {
        parameter["name"]
        for parameter in schema["paths"]["/v1/contacts"]["get"]["parameters"]
        if parameter["in"] == "query"
    }

    assert {"search", "lifecycle_stage", "country", "tag", "created_after", "created_before", "updated_after"} <= (
        parameters
    )


def test_list_endpoint_documents_the_page_shape(schema):
    response = schema["paths"]["/v1/contacts"]["get"]["responses"]["200"]
    page = resolve(schema, response["content"]["application/json"]["schema"])

    assert set(page["properties"]) == {"data", "next_cursor", "has_more"}
    assert page["properties"]["data"]["type"] == "array"


# --- Docs pages -----------------------------------------------------------------


class _AssetCollector(HTMLParser):
    """The URLs a page loads: script src, link href, img src."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in {"script": ["src"], "link": ["href"], "img": ["src"]}.get(tag, []):
            if attrs.get(name):
                self.urls.append(attrs[name])


def page_assets(html: str) -> list[str]:
    collector = _AssetCollector()
    collector.feed(html)
    return collector.urls


def is_remote(url: str) -> bool:
    return bool(re.match(r"^([a-z][a-z0-9+.-]*:)?//", url, re.IGNORECASE))


@pytest.mark.parametrize("path", ["/v1/docs", "/v1/redoc"])
def test_docs_page_is_html_without_a_key(anonymous_api, db, path):
    response = anonymous_api.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/v1/schema" in response.content.decode()


@pytest.mark.parametrize("path", ["/v1/docs", "/v1/redoc"])
def test_docs_page_loads_nothing_from_the_internet(anonymous_api, db, path):
    html = anonymous_api.get(path).content.decode()

    assets = page_assets(html)

    assert any(url.endswith(".js") for url in assets)
    assert [url for url in assets if is_remote(url)] == []


@pytest.mark.parametrize("path", ["/v1/docs", "/v1/redoc"])
def test_docs_page_assets_are_served_by_the_app(anonymous_api, db, path):
    html = anonymous_api.get(path).content.decode()
    local = [url for url in page_assets(html) if not is_remote(url)]
    assert local

    for url in local:
        response = anonymous_api.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert body, url


# --- Health check ----------------------------------------------------------------


def test_healthz_needs_no_key(anonymous_api, db):
    response = anonymous_api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_ignores_a_bad_key(anonymous_api, db):
    anonymous_api.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")

    response = anonymous_api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- Deploy checks ----------------------------------------------------------------


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "contacts.example.com,api.example.com",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_ALLOWED_HOSTS": "contacts.example.com"}
    env.pop("DJANGO_SECRET_KEY", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
