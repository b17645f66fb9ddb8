"""OpenAPI details: the bearer-key security scheme and every error the API can answer.

drf-standardized-errors documents 400/401/404/405/415/500 by itself. Its 400
schema enumerates each field's error codes and attrs; ours are richer (unknown
fields are named by the client, metadata keys are paths such as
``metadata.plan``, NUL characters are refused anywhere), so the 400 body is
documented as the general shape instead of an enum that would be wrong. 409,
413, 422, 429 and 503 are added where they can happen, and so are the headers
of the rate limit (every operation) and of idempotency keys (every POST).
"""

import copy

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field, force_instance, is_serializer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from drf_standardized_errors.openapi_serializers import ClientErrorEnum, ServerErrorEnum, ValidationErrorEnum
from rest_framework import serializers

from contacts_project.api.errors import IDEMPOTENCY_KEY_HEADER
from contacts_project.api.idempotency import REPLAYED_HEADER

WRITE_METHODS = {"POST", "PUT", "PATCH"}


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(
        allow_null=True, help_text="The offending input, dotted for nested input (`metadata.plan`), or null."
    )


def _error_response(name: str, error_type, description: str):
    return type(
        name,
        (serializers.Serializer,),
        {
            "__doc__": description,
            "type": serializers.ChoiceField(choices=error_type.choices),
            "errors": ErrorSerializer(many=True),
        },
    )


ValidationErrorResponse = _error_response(
    "ValidationErrorResponse", ValidationErrorEnum, "Invalid input: body, query parameter or cursor."
)
ConflictErrorResponse = _error_response(
    "ConflictErrorResponse",
    ClientErrorEnum,
    "A unique value is taken (`code: duplicate`); `attr` names the field, `detail` the existing object's id.",
)
PostConflictErrorResponse = _error_response(
    "PostConflictErrorResponse",
    ClientErrorEnum,
    "A unique value is taken (`code: duplicate`); `attr` names the field, `detail` the existing object's id. "
    "Or a request with the same `Idempotency-Key` is still running (`code: idempotency_key_in_progress`, "
    "`attr: Idempotency-Key`): retry after `Retry-After` seconds.",
)
IdempotencyKeyReusedErrorResponse = _error_response(
    "IdempotencyKeyReusedErrorResponse",
    ClientErrorEnum,
    "The `Idempotency-Key` was already used for a different request (`code: idempotency_key_reused`).",
)
TooManyRequestsErrorResponse = _error_response(
    "TooManyRequestsErrorResponse",
    ClientErrorEnum,
    "The API key's rate limit is used up (`code: throttled`); retry after `Retry-After` seconds.",
)
PayloadTooLargeErrorResponse = _error_response(
    "PayloadTooLargeErrorResponse", ClientErrorEnum, "The request body is over the size limit."
)
ServiceUnavailableErrorResponse = _error_response(
    "ServiceUnavailableErrorResponse",
    ServerErrorEnum,
    "The database is unreachable or the query ran past its time limit; retry after `Retry-After` seconds.",
)

SUCCESS_CODES = ["200", "201", "204"]
RATE_LIMIT_HEADERS = [
    OpenApiParameter(
        name,
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[*SUCCESS_CODES, "429"],
        description=description,
    )
    for name, description in [
        ("RateLimit-Limit", "Requests this API key may make per window (a minute)."),
        ("RateLimit-Remaining", "Requests left in the current window."),
        ("RateLimit-Reset", "Seconds until the window restarts."),
    ]
]


def retry_after_header(codes):
    return OpenApiParameter(
        "Retry-After",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=codes,
        description="Seconds to wait before retrying.",
    )


IDEMPOTENCY_HEADERS = [
    OpenApiParameter(
        IDEMPOTENCY_KEY_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        pattern=r"^[\x20-\x7E]{1,255}$",
        description=(
            "Makes the POST safe to retry: 1 to 255 printable ASCII characters, unique per account (a UUID is "
            "fine). The first response (unless a 5xx) is stored for 24 hours; a repeat of the same request (method, "
            "path and body) gets it again with `Idempotent-Replayed: true` and changes nothing. The same key with a "
            "different request is a 422; a repeat while the first is still running is a 409."
        ),
    ),
    OpenApiParameter(
        REPLAYED_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        enum=["true"],
        response=SUCCESS_CODES,
        description="Present when this is the stored response to an earlier request with the same `Idempotency-Key`.",
    ),
]


class AutoSchema(StandardizedErrorsAutoSchema):
    def get_override_parameters(self):
        parameters = [*super().get_override_parameters(), *RATE_LIMIT_HEADERS]
        if self.method == "POST":
            return [*parameters, *IDEMPOTENCY_HEADERS, retry_after_header(["409", "429", "503"])]
        return [*parameters, retry_after_header(["429", "503"])]

    def _get_request_for_media_type(self, serializer, direction="request"):
        # PUT is a partial update in this API, as PATCH is (API.md §4): document
        # the same body, with no required field, not the create body.
        serializer = force_instance(serializer)
        if self.method == "PUT" and is_serializer(serializer):
            serializer = copy.copy(serializer)
            serializer.partial = True
        return super()._get_request_for_media_type(serializer, direction)

    def _get_allowed_error_status_codes(self):
        codes = ["400", "401", "404", "405", "415", "429", "500", "503"]
        if self.method in WRITE_METHODS:
            codes += ["409", "413"]
        if self.method == "POST":
            codes += ["422"]
        return codes

    def _get_error_response_serializer(self, status_code):
        return {
            "409": PostConflictErrorResponse if self.method == "POST" else ConflictErrorResponse,
            "413": PayloadTooLargeErrorResponse,
            "422": IdempotencyKeyReusedErrorResponse,
            "429": TooManyRequestsErrorResponse,
            "503": ServiceUnavailableErrorResponse,
        }.get(status_code) or super()._get_error_response_serializer(status_code)

    def _should_add_error_response(self, responses, status_code):
        if status_code == "409":
            return self.method in WRITE_METHODS and "409" not in responses
        if status_code == "404":
            return "404" not in responses
        return super()._should_add_error_response(responses, status_code)

    def _should_add_validation_error_response(self):
        # The pagination parameters and the NUL check on every query string
        # make every operation able to answer a validation error.
        return True

    def _get_http400_serializer(self):
        # Bodies that do not parse are validation errors too (see exceptions.py).
        return ValidationErrorResponse


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py create_api_key --account NAME`: `Authorization: Bearer ck_…`.",
        }


class ResponseWiderChoiceFieldExtension(OpenApiSerializerFieldExtension):
    """Requests document the accepted choices, responses every value an answer can hold."""

    target_class = "contacts_project.api.serializers.ResponseWiderChoiceField"

    def map_serializer_field(self, auto_schema, direction):
        if direction == "response":
            return build_choice_field(serializers.ChoiceField(choices=self.target.response_choices))
        return build_choice_field(self.target)
