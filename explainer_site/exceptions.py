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
    message = str(detail["detail"]) if isinstance(detail, dict) and "detail" in detail else error_text(detail)
    response.data = {"error": message, "details": detail}
    return response


def error_text(errors: Any) -> str:
    """DRF's error detail as plain text: list and dict fields nest their items' errors (``{0: [ErrorDetail(...)]}``),
    whose ``str`` would show the reprs."""
    if isinstance(errors, dict):
        return "; ".join(f"{key}: {error_text(value)}" for key, value in errors.items())
    if isinstance(errors, list):
        return " ".join(map(error_text, errors))
    return str(errors)
