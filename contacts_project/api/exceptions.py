"""One exception handler for the error contract (API.md §2).

drf-standardized-errors formats every error. On top of it, failures the
database can be expected to produce are answered as what they are rather than
as a 500: an unreachable database or a statement past ``statement_timeout``
is a 503 with ``Retry-After``; a request body past the limit is a 413.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from drf_standardized_errors import formatter, handler
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.settings import api_settings

from contacts_project.api.errors import PayloadTooLarge, ServiceUnavailable

logger = logging.getLogger(__name__)


def is_database_unavailable(exc: BaseException) -> bool:
    """True for a lost/refused connection or a cancelled (timed-out) statement."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    # psycopg reports QueryCanceled (statement_timeout) as an OperationalError
    # subclass; some wrappers surface it as a bare DatabaseError.
    cause = exc.__cause__
    return isinstance(exc, DatabaseError) and type(cause).__name__ in {"QueryCanceled", "AdminShutdown"}


class ExceptionHandler(handler.ExceptionHandler):
    def convert_known_exceptions(self, exc):
        if is_database_unavailable(exc):
            logger.warning("database unavailable: %s", exc)
            return ServiceUnavailable()
        if isinstance(exc, RequestDataTooBig):
            return PayloadTooLarge(settings.API_MAX_BODY_BYTES)
        if isinstance(exc, ParseError):
            # API.md §2: every 400 is a validation_error; a body that is not
            # JSON is invalid input like any other.
            return ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [exc.detail]}, code="parse_error")
        return super().convert_known_exceptions(exc)

    def report_exception(self, exc, response):
        # An outage is logged once as a warning above; it is not a bug to report.
        if not isinstance(exc, ServiceUnavailable):
            super().report_exception(exc, response)

    def get_response(self, exc, data):
        response = super().get_response(exc, data)
        if isinstance(exc, ServiceUnavailable):
            response["Retry-After"] = str(exc.retry_after_seconds)
        return response


class ExceptionFormatter(formatter.ExceptionFormatter):
    """Errors about the body as a whole (not an object, no phone or email…) get ``attr: null``.

    API.md §2: ``attr`` names the offending input or is null; DRF's
    ``non_field_errors`` key is an implementation detail, not an input.
    """

    def get_errors(self):
        errors = super().get_errors()
        for error in errors:
            if error.attr == api_settings.NON_FIELD_ERRORS_KEY:
                error.attr = None
        return errors


exception_handler = handler.exception_handler
