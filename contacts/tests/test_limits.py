"""Each limit of API.md §4 at its value (accepted) and one past it (400)."""

import json

import pytest

from contacts.constants import METADATA_MAX_BYTES, METADATA_MAX_KEYS, TAGS_MAX_COUNT
from contacts.validation import metadata_size


def metadata_of_size(size: int) -> dict:
    # '{"k":"' + value + '"}' is 8 bytes of compact JSON around the value.
    return {"k": "x" * (size - 8)}


@pytest.mark.parametrize(("size", "status"), [(METADATA_MAX_BYTES, 201), (METADATA_MAX_BYTES + 1, 400)])
def test_metadata_size_limit_is_8192_bytes_of_compact_json(api, size, status):
    response = api.post("/v1/contacts", {"email": "a@example.com", "metadata": metadata_of_size(size)}, format="json")

    assert response.status_code == status, response.json()
    if status == 400:
        assert response.json()["errors"][0]["attr"] == "metadata"


@pytest.mark.parametrize(("count", "status"), [(METADATA_MAX_KEYS, 201), (METADATA_MAX_KEYS + 1, 400)])
def test_metadata_key_count_limit(api, count, status):
    metadata = {f"k{i}": i for i in range(count)}

    response = api.post("/v1/contacts", {"email": "a@example.com", "metadata": metadata}, format="json")

    assert response.status_code == status


@pytest.mark.parametrize(("count", "status"), [(TAGS_MAX_COUNT, 201), (TAGS_MAX_COUNT + 1, 400)])
def test_tag_count_limit(api, count, status):
    response = api.post(
        "/v1/contacts", {"email": "a@example.com", "tags": [f"t{i}" for i in range(count)]}, format="json"
    )

    assert response.status_code == status


def test_metadata_size_counts_utf8_bytes_not_characters(api):
    # 4,100 two-byte characters are 8,200 bytes: over the limit though under 8,192 characters.
    response = api.post("/v1/contacts", {"email": "a@example.com", "metadata": {"k": "é" * 4100}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "metadata"


@pytest.mark.parametrize(
    "metadata",
    [
        {},
        {"plan": "pro", "seats": 29, "languages": ["ru", "pt"], "newsletter": True, "utm": {"source": None}},
        {"name": "José 李 \u2028 \x7f", "quote": '"\\', "control": "\n\t\x01"},
        {"big": 2**64, "small": -(2**63) - 1},  # past 64 bits: json does the counting
    ],
)
def test_metadata_size_is_the_bytes_of_compact_json(metadata):
    assert metadata_size(metadata) == len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())


def test_metadata_size_of_floats_differs_from_json_only_in_notation():
    # orjson writes 1e-05 as 0.00001: the same number, a byte or two apart.
    metadata = {"ratio": 1e-05, "big": 1e16, "plain": 0.25}

    assert abs(metadata_size(metadata) - len(json.dumps(metadata, separators=(",", ":")))) <= 2 * len(metadata)
