"""OpenAPI details: the bearer-key security scheme and every error the API can answer.

drf-standardized-errors documents 400/401/404/405/415/500 by itself. Its 400
schema enumerates each field's error codes and attrs; ours are richer (unknown
fields are named by the client, metadata keys are paths such as
``metadata.plan``, NUL characters are refused anywhere), so the 400 body is
documented as the general shape instead of an enum that would be wrong. 409,
413 and 503 are added where they can happen.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from drf_standardized_errors.openapi_serializers import ClientErrorEnum, ServerErrorEnum, ValidationErrorEnum
from rest_framework import serializers

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
PayloadTooLargeErrorResponse = _error_response(
    "PayloadTooLargeErrorResponse", ClientErrorEnum, "The request body is over the size limit."
)
ServiceUnavailableErrorResponse = _error_response(
    "ServiceUnavailableErrorResponse",
    ServerErrorEnum,
    "The database is unreachable or the query ran past its time limit; retry after `Retry-After` seconds.",
)


class AutoSchema(StandardizedErrorsAutoSchema):
    def _get_allowed_error_status_codes(self):
        codes = ["400", "401", "404", "405", "415", "500", "503"]
        if self.method in WRITE_METHODS:
            codes += ["409", "413"]
        return codes

    def _get_error_response_serializer(self, status_code):
        return {
            "409": ConflictErrorResponse,
            "413": PayloadTooLargeErrorResponse,
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
