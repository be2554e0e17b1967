"""OpenLineage ingestion's fast path: a WSGI layer in front of Django for producers' calls (issue 18).

A scheduler or a Spark listener sends one event per task, thousands an hour, with an API token. Django's request
cycle (middleware, URL resolution, DRF's request, authentication, permission and response objects) cost about as
much CPU as queued ingestion's own work for such a call. So ``POST /api/v1/lineage`` and ``/api/v1/lineage/batch``
with a bearer API token (``stw_...``), an uncompressed JSON body of a known length within the endpoint's limit, and
a token and user allowed to send lineage, are answered here by the same code the DRF views call
(``views.receive_one`` / ``receive_batch``: the same parsing, services, answers and error format), with the
request id, metrics and database-connection handling of ``steward.fastpath``.

Anything this path is not sure of goes on to Django unchanged, with the body it read: gzip bodies, chunked bodies,
bodies over the limit (Django answers 413), session calls, and every call that would be refused before the
service (an unknown or revoked token, a token scope without ``lineage:write``, a user who may not produce
lineage), so those refusals, and their audit, are Django's as before.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from accounts.authentication import scope_refusal
from accounts.services import TOKEN_PREFIX, token_authenticate
from lineage.api.views import BATCH_BODY_EVENTS, LineageIngestView, receive_batch, receive_one
from lineage.permissions import can_emit_lineage
from steward import jsonbody, metrics
from steward.errors import DomainError
from steward.fastpath import REASONS, bearer_json_secret, encode, error_body, tidy
from steward.middleware import bind_request_id, request_id_from, unbind_request_id

__all__ = ["LineageFastPath"]

logger = logging.getLogger(__name__)

_HANDLERS: dict[str, tuple[Callable[[Any, Any, str], tuple[int, dict[str, Any], dict[str, str]]], int]] = {
    "/api/v1/lineage": (receive_one, 1),
    "/api/v1/lineage/": (receive_one, 1),
    "/api/v1/lineage/batch": (receive_batch, BATCH_BODY_EVENTS),
    "/api/v1/lineage/batch/": (receive_batch, BATCH_BODY_EVENTS),
}


class LineageFastPath:
    """WSGI middleware: answers producers' token-authenticated ingestion calls itself; passes the rest to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handler = _HANDLERS.get(environ.get("PATH_INFO", ""))
        secret = bearer_json_secret(environ, TOKEN_PREFIX) if handler is not None else None
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if (
            handler is None
            or secret is None
            or environ.get("HTTP_CONTENT_ENCODING", "").strip().lower() not in ("", "identity")
            or environ.get("HTTP_TRANSFER_ENCODING")
            or not 0 < length <= settings.STEWARD_LINEAGE_MAX_EVENT_BYTES * handler[1]
        ):
            return self.app(environ, start_response)
        raw = environ["wsgi.input"].read(length)
        started = time.perf_counter()
        rid = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        bound = bind_request_id(rid)
        db = connections[DEFAULT_DB_ALIAS]
        tidy(db)
        handed_on = False
        try:
            token = token_authenticate(secret)
            if token is None or scope_refusal(token.scope_set, LineageIngestView) or not can_emit_lineage(token.user):
                handed_on = True  # refused before the service: Django answers (and audits) as it always has
            else:
                status, payload, headers = self._answer(handler[0], token.user, raw, environ.get("HTTP_PREFER", ""))
        except Exception:
            logger.exception("lineage fast path failed: %s", environ.get("PATH_INFO"))
            status, payload, headers = 500, error_body(500, "server_error", "Internal server error."), {}
        finally:
            tidy(db)
            unbind_request_id(bound)
        if handed_on:
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.app(environ, start_response)
        body = encode(payload)
        start_response(
            f"{status} {REASONS.get(status, 'Error')}",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("X-Request-ID", rid),
                ("Vary", "Accept, Authorization"),
                *headers.items(),
            ],
        )
        metrics.observe_request(environ["PATH_INFO"].lstrip("/"), "POST", status, time.perf_counter() - started)
        return [body]

    @staticmethod
    def _answer(
        handler: Callable[[Any, Any, str], tuple[int, dict[str, Any], dict[str, str]]],
        user: Any,
        raw: bytes,
        prefer: str,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        try:
            return handler(user, jsonbody.loads(raw), prefer)
        except DomainError as exc:
            problems = [(p.field, p.message, p.code) for p in exc.problems]
            return exc.status, error_body(exc.status, exc.code, exc.message, problems), exc.headers
