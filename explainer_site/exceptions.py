"""One error type for everything a user is meant to read, and the API's rendering of it."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """A problem the user can fix; ``message`` is shown as is, ``extra`` carries e.g. the field it concerns."""

    def __init__(self, message: str, extra: dict[str, Any] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.status = status


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error answers ``{"error": "..."}`` (plus details), never an HTML page."""
    if isinstance(exc, ApplicationError):
        return Response({"error": exc.message, **exc.extra}, status=exc.status)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(detail, dict) and "detail" in detail:
        message = str(detail["detail"])
    elif isinstance(detail, dict):
        message = "; ".join(
            f"{field}: {' '.join(map(str, errs)) if isinstance(errs, list) else errs}" for field, errs in detail.items()
        )
    else:
        message = " ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
    response.data = {"error": message, "details": detail}
    return response
