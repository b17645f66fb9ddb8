from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from contacts_project.api.views import healthz, livez, not_found

urlpatterns = [
    path("livez", livez, name="livez"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v1/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("v1/", include("lists.api.urls")),
    path("v1/", include("segments.api.urls")),
    path("v1/", include("contacts.api.urls")),
    # Unknown API routes answer in the error format even with DEBUG on.
    re_path(r"^v1/", not_found),
]

handler404 = "contacts_project.api.views.not_found"
handler500 = "contacts_project.api.views.server_error"
