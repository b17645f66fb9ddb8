"""Views outside the resource viewsets: liveness and readiness probes, JSON 404s and 500s."""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_safe

from contacts_project.api.exceptions import is_database_unavailable


@require_safe
def livez(request):
    """Liveness: 200 whenever this process answers HTTP; never touches the database. No key needed.

    An orchestrator restarts a worker that fails its liveness probe, so this
    one must not fail because the database is down: restarting every worker
    would not bring the database back. ``/healthz`` is the readiness probe
    (take the instance out of the load balancer while the database is away).
    """
    return JsonResponse({"status": "ok"})


@require_GET
def healthz(request):
    """Readiness: 200 when the database answers a query, 503 otherwise. No key needed."""
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
