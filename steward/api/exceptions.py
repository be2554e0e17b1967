"""One error format for the whole API.

Every error body looks like::

    {"status": 400, "code": "validation_error", "detail": "datasets[3].name: This field is required.",
     "errors": [{"field": "datasets[3].name", "code": "required", "message": "This field is required."}]}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from steward.errors import BackendUnavailable, DomainError, FieldProblem

__all__ = ["api_not_found", "error_response", "exception_handler", "flatten_errors", "not_found", "server_error"]


def flatten_errors(detail: Any, prefix: str | None = None) -> list[FieldProblem]:
    """Turn DRF's nested error detail into a flat list of (dotted field path, message)."""
    problems: list[FieldProblem] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                field = prefix
            elif isinstance(key, int) and prefix:  # ListField items: datasets[3], as in the documented format
                field = f"{prefix}[{key}]"
            else:
                field = f"{prefix}.{key}" if prefix else str(key)
            problems.extend(flatten_errors(value, field))
    elif isinstance(detail, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            for item in detail:
                problems.append(FieldProblem(prefix, str(item), getattr(item, "code", "invalid") or "invalid"))
        else:
            for index, item in enumerate(detail):
                if item:
                    problems.extend(flatten_errors(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        problems.append(FieldProblem(prefix, str(detail), getattr(detail, "code", "invalid") or "invalid"))
    return problems


def error_response(status_code: int, code: str, detail: str, problems: list[FieldProblem]) -> Response:
    body = {
        "status": status_code,
        "code": code,
        "detail": detail,
        "errors": [{"field": p.field, "code": p.code, "message": p.message} for p in problems],
    }
    return Response(body, status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        resp = error_response(exc.status, exc.code, exc.message, exc.problems)
        for header, value in exc.headers.items():
            resp[header] = value
        return resp
    if isinstance(exc, BackendUnavailable):
        return error_response(
            503, "backend_unavailable", f"{exc} Try again shortly; the operators can check /readyz.", []
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        problems = flatten_errors(exc.detail)
        first = problems[0] if problems else FieldProblem(None, "Invalid input.")
        detail = f"{first.field}: {first.message}" if first.field else first.message
        resp = error_response(status.HTTP_400_BAD_REQUEST, "validation_error", detail, problems)
    elif isinstance(exc, exceptions.ParseError):
        resp = error_response(
            400, "parse_error", str(exc.detail), [FieldProblem("body", str(exc.detail), "parse_error")]
        )
    elif isinstance(exc, exceptions.APIException):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        resp = error_response(response.status_code, str(code), str(exc.detail), [])
    else:  # pragma: no cover - DRF only returns responses for APIException
        return response
    for header in ("WWW-Authenticate", "Retry-After", "Allow"):
        if header in response:
            resp[header] = response[header]
    return resp


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any unknown path under ``/api/``, whatever the method: the API's JSON error, never the HTML 404 page
    (nor a CSRF 403 for a POST: there is nothing here to protect)."""
    body = {"status": 404, "code": "not_found", "detail": f"No API endpoint at {request.path}.", "errors": []}
    return JsonResponse(body, status=404)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: under ``/api/`` a path no route matches (``/api/v1/compliance/reports/not-a-uuid``) gets the
    API's error format in JSON, like every other API error; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        body = {"status": 404, "code": "not_found", "detail": "No such API path or object.", "errors": []}
        return JsonResponse(body, status=404)
    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: the API's error format under ``/api/``; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        body = {"status": 500, "code": "server_error", "detail": "Internal server error.", "errors": []}
        return JsonResponse(body, status=500)
    return django_server_error(request)
