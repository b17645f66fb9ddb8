from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from contacts.api.urls import urlpatterns as contacts_urls
from contacts_project.api.views import healthz, livez, not_found
from lists.api.urls import urlpatterns as lists_urls
from segments.api.urls import urlpatterns as segments_urls

urlpatterns = [
    path("livez", livez, name="livez"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v1/redoc", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    # One include, the busiest routes first: each route tried is a regex
    # match on every request (contact ids cannot be "lists" or "segments").
    path("v1/", include([*contacts_urls, *segments_urls, *lists_urls])),
    # Unknown API routes answer in the error format even with DEBUG on.
    re_path(r"^v1/", not_found),
]

handler404 = "contacts_project.api.views.not_found"
handler500 = "contacts_project.api.views.server_error"
