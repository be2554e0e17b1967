"""Request id propagation for logs."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

__all__ = [
    "BodySizeLimitMiddleware",
    "RefuseNulMiddleware",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "bind_request_id",
    "current_request_id",
    "payload_too_large",
    "request_id_from",
    "unbind_request_id",
]

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


def request_id_from(incoming: str) -> str:
    """The caller's ``X-Request-ID`` when it is short ASCII, else a new one."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isascii() else uuid.uuid4().hex


def bind_request_id(rid: str) -> contextvars.Token[str]:
    """Make ``rid`` the current request id (for logs and audit events); reset with ``unbind_request_id``."""
    return _request_id.set(rid)


def unbind_request_id(token: contextvars.Token[str]) -> None:
    _request_id.reset(token)


def payload_too_large(length: int, limit: int) -> dict:
    """The error body for a request body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""
    message = f"The request body has {length} bytes; at most {limit} are accepted. Send smaller batches."
    return {
        "status": 413,
        "code": "payload_too_large",
        "detail": message,
        "errors": [{"field": "body", "code": "payload_too_large", "message": message}],
    }


class RequestIdMiddleware:
    """Take ``X-Request-ID`` from the caller (or make one) and echo it in the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rid = request_id_from(request.headers.get("X-Request-ID", ""))
        token = _request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = rid
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class BodySizeLimitMiddleware:
    """Refuse a request body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413, before reading it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return JsonResponse(payload_too_large(length, limit), status=413)
        return self.get_response(request)


class RefuseNulMiddleware:
    """Refuse a NUL character in the path or a query parameter with 400 naming it: no text in PostgreSQL can
    hold one, so it would reach the database as an error (``?q=a%00b`` was a 500 on every filtered list)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        field = "path" if "\x00" in request.path else None
        if field is None:
            field = next(
                (key for key, values in request.GET.lists() if "\x00" in key or any("\x00" in v for v in values)),
                None,
            )
        if field is None:
            return self.get_response(request)
        message = "Control characters are not allowed (here NUL, %00)."
        body = {
            "status": 400,
            "code": "validation_error",
            "detail": f"{field}: {message}",
            "errors": [{"field": field, "code": "invalid", "message": message}],
        }
        return JsonResponse(body, status=400)
