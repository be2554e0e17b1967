"""What the WSGI fast paths in front of Django share (``governance.api.fastpath`` for decisions,
``lineage.api.fastpath`` for ingestion): answering a JSON call without Django's request cycle, as Django would.

Each fast path answers only the calls it is sure of (a bearer API token, a JSON body of a known length) with the
same services, error format, request id, metrics and database-connection handling as the API; anything else goes
on to Django unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["REASONS", "bearer_json_secret", "encode", "error_body", "json_default", "tidy"]

REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}
REASONS |= {404: "Not Found", 409: "Conflict", 413: "Payload Too Large", 500: "Internal Server Error"}
REASONS |= {503: "Service Unavailable"}


def bearer_json_secret(environ: dict[str, Any], prefix: str) -> str | None:
    """The API token of a ``POST`` with a JSON body and ``Authorization: Bearer <prefix>...`` (or ``Token``), the
    only calls a fast path answers; ``None`` for any other request."""
    scheme, _, secret = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    secret = secret.strip()
    if (
        environ.get("REQUEST_METHOD") != "POST"
        or scheme.lower() not in ("bearer", "token")
        or not secret.startswith(prefix)
        or not environ.get("CONTENT_TYPE", "").startswith("application/json")
    ):
        return None
    return secret


def json_default(value: Any) -> str:
    """As DRF's encoder renders them: UUIDs as strings, datetimes in ISO 8601 with ``Z`` for UTC."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode(payload: Any) -> bytes:
    """A JSON answer's bytes, as DRF's renderer writes them (compact, UTF-8)."""
    return json.dumps(payload, default=json_default, separators=(",", ":"), ensure_ascii=False).encode()


def tidy(db: BaseDatabaseWrapper) -> None:
    """What Django's ``request_started``/``request_finished`` receivers do for the one connection a fast path uses,
    without sending the signals (their dispatch cost a fifth of a decision's CPU): close it if it is broken or
    older than ``CONN_MAX_AGE`` (``close_old_connections``), empty its query log under ``DEBUG``
    (``reset_queries``). A connection inside a transaction is left alone (only a test's is, between requests).
    The other receivers (caches, the URLconf) serve what the fast paths do not use."""
    if db.in_atomic_block:
        return
    if db.queries_logged:
        db.queries_log.clear()
    if db.connection is not None:
        db.close_if_unusable_or_obsolete()


def error_body(status: int, code: str, detail: str, problems: Iterable[tuple[str | None, str, str]] = ()) -> dict:
    """The API's error format (``steward.api.exceptions.error_response``); ``problems`` as (field, message, code)."""
    errors = [{"field": f, "code": c, "message": m} for f, m, c in problems]
    return {"status": status, "code": code, "detail": detail, "errors": errors}
