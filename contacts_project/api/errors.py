"""API exceptions with the status codes of API.md §2 that DRF does not ship."""

from rest_framework import status
from rest_framework.exceptions import APIException


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self, limit: int):
        super().__init__(f"Request body is larger than the limit of {limit} bytes.")


class Conflict(APIException):
    """A write would duplicate a unique value; ``attr`` names the field."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "duplicate"

    def __init__(self, *, attr: str, detail: str):
        # A dict detail makes drf-standardized-errors report ``attr``.
        super().__init__({attr: [detail]}, code=self.default_code)


class ServiceUnavailable(APIException):
    """The database is unreachable or a statement ran past its timeout."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"
    default_detail = "The service is temporarily unavailable; retry shortly."
    retry_after_seconds = 1


IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


class IdempotencyKeyInProgress(Conflict):
    """A request with the same ``Idempotency-Key`` is still running; retry after ``Retry-After``."""

    default_code = "idempotency_key_in_progress"
    # drf-standardized-errors answers ``Retry-After`` for an exception's ``wait``.
    wait = 1

    def __init__(self):
        super().__init__(
            attr=IDEMPOTENCY_KEY_HEADER,
            detail="A request with this Idempotency-Key is still in progress; retry shortly.",
        )


class IdempotencyKeyReused(APIException):
    """The ``Idempotency-Key`` was first used for another request (method, path or body)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"

    def __init__(self):
        detail = "This Idempotency-Key was already used for a different request (method, path or body)."
        super().__init__({IDEMPOTENCY_KEY_HEADER: [detail]}, code=self.default_code)
