"""Error pages in the site's layout (API paths answer JSON)."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """What Django refuses before any view runs (a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, too many fields,
    a disallowed host, another ``SuspiciousOperation``); the exception's text is for the log, not the client."""
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"error": "The request body is larger than this server accepts; send less data at once."},
                            status=413)
    return JsonResponse({"error": "Bad request: the server could not read it."}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"error": "You do not have permission to do this."}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"error": "Not found."}, status=404)
    return render(request, "errors/404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return JsonResponse({"error": "Something went wrong on our side; try again, or report it."}, status=500)
    return render(request, "errors/500.html", status=500)


class JsonErrorsMixin:
    """Errors in JSON like the rest of ``/api/``, whatever the view renders when it succeeds: the docs page renders
    HTML only and the schema YAML, so a refused method or Accept header answered an HTML page or YAML."""

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class ApiSchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class ApiDocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI, GET only: its HTML renderer has no template for OPTIONS' metadata (that was a 500)."""

    http_method_names = ["get", "head"]
