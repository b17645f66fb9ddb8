"""Views outside the resource viewsets: health check and JSON 404s."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from contacts_project.api.exceptions import is_database_unavailable


@require_GET
def healthz(request):
    """200 when the database answers a query, 503 otherwise. No key needed."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        if not is_database_unavailable(exc):
            raise
        return JsonResponse({"status": "unavailable"}, status=503, headers={"Retry-After": "1"})
    return JsonResponse({"status": "ok"})


@csrf_exempt
def not_found(request, exception=None):
    """Unknown routes answer in the API's error format (also under /admin/, harmlessly).

    CSRF-exempt like every API view (they authenticate by key, not cookie):
    otherwise a POST, PUT or DELETE to an unknown /v1/ path, an id of the
    wrong shape included, is answered by the CSRF check's HTML 403.
    """
    return JsonResponse(
        {"type": "client_error", "errors": [{"code": "not_found", "detail": "Not found.", "attr": None}]}, status=404
    )


def server_error(request):
    return JsonResponse(
        {"type": "server_error", "errors": [{"code": "error", "detail": "A server error occurred.", "attr": None}]},
        status=500,
    )
