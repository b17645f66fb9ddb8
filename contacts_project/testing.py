"""Assertions on the error contract (API.md §2), shared by every app's tests."""


def assert_error(response, status: int, type_: str, attrs: list, code: str | None = None) -> dict:
    """The response is ``status`` in the error format and its errors name exactly ``attrs``.

    ``attrs`` is compared as a multiset (``None`` for errors about no one input);
    ``code``, when given, must be every error's code. Returns the first error.
    """
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"type", "errors"}, body
    assert body["type"] == type_, body
    assert body["errors"], body
    for error in body["errors"]:
        assert set(error) == {"code", "detail", "attr"}, error
        assert isinstance(error["code"], str), error
        assert isinstance(error["detail"], str), error
        assert error["detail"], error
    assert sorted(error["attr"] or "" for error in body["errors"]) == sorted(attr or "" for attr in attrs), body
    assert [error["attr"] is None for error in body["errors"]].count(True) == list(attrs).count(None), body
    if code is not None:
        assert [error["code"] for error in body["errors"]] == [code] * len(body["errors"]), body
    return body["errors"][0]


def assert_invalid(response, *attrs, code: str | None = None) -> dict:
    """A 400 ``validation_error`` naming exactly ``attrs``."""
    return assert_error(response, 400, "validation_error", list(attrs), code=code)


def assert_not_found(response) -> None:
    assert_error(response, 404, "client_error", [None], code="not_found")
