"""Answers given before (or around) any view: body size and database outages."""

from django.conf import settings
from django.http import JsonResponse

from contacts_project.api.errors import PayloadTooLarge, ServiceUnavailable
from contacts_project.api.exceptions import is_database_unavailable


def error_response(exc, *, type_: str = "client_error") -> JsonResponse:
    body = {"type": type_, "errors": [{"code": exc.default_code, "detail": str(exc.detail), "attr": None}]}
    response = JsonResponse(body, status=exc.status_code)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = str(exc.retry_after_seconds)
    return response


class RequestBodyLimitMiddleware:
    """413 for a declared ``Content-Length`` over the limit, before anything reads the body.

    Bodies without a length (chunked) are bounded by the JSON parser, which
    reads at most one byte more than the limit.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.API_MAX_BODY_BYTES:
            return error_response(PayloadTooLarge(settings.API_MAX_BODY_BYTES))
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """503 + ``Retry-After`` when a view outside DRF (admin, health, a plain read) loses the database.

    DRF's dispatch answers the same through its exception handler.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_database_unavailable(exception):
            return error_response(ServiceUnavailable(), type_="server_error")
        return None
