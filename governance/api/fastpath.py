"""The decision API's fast path: a WSGI layer in front of Django for data-plane proxies' calls.

Measured on the 2-core benchmark machine, Django's request cycle alone (nine middleware, URL resolution, a
``JsonResponse``) tops out near 2,000 requests/s for a view that does nothing, which is the goal for decisions. So
``POST /api/v1/authorize`` and ``/api/v1/authorize/batch`` with a JSON body and a bearer API token (``stw_...``)
are answered here, before Django's handler, by the same code the DRF views call: the same token authentication
(``token_authenticate``), parsing and decisions (``decide_one`` / ``decide_batch``, denials audited), the same
error format, the request id (``X-Request-ID``), the body size limit and what Django's
``request_started``/``request_finished`` receivers do for the database connection (``steward.fastpath.tidy``:
closed when broken or past ``CONN_MAX_AGE``), done directly. What is skipped is what these calls never use:
sessions and CSRF (a bearer token is not a cookie), messages, clickjacking and security headers on a JSON answer,
URL resolution, DRF's request and response objects. Anything else, including session-authenticated calls to the
same URLs, goes on to Django unchanged. One difference: the token's user and roles are remembered
(``STEWARD_DECISION_AUTH_CACHE_SECONDS``, 60 at most) while the decision generation (``governance.decision_index``)
is unchanged; any change to a token, a user or a group membership moves it, so nothing is honoured after it
changed.

One round trip per call: a call whose token is remembered at the generation of the process's index is answered from
memory as if that generation were current, and the generation is read back at the end, in the same statement as the
audit append of its denials (``decision_index.assumed_generation`` / ``confirm``). The read back comes after the
call started, so a change committed before it is never missed; if the generation moved, nothing was appended and
the call is answered again the sure way (the generation read first, then the database).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from accounts.services import TOKEN_PREFIX, token_authenticate
from governance import decision_index
from governance.api.decisions import decide_batch, decide_one
from steward import jsonbody, metrics
from steward.errors import DomainError
from steward.fastpath import REASONS as _REASONS
from steward.fastpath import bearer_json_secret, encode, tidy
from steward.fastpath import error_body as _error
from steward.middleware import bind_request_id, payload_too_large, request_id_from, unbind_request_id

__all__ = ["DecisionFastPath"]

logger = logging.getLogger(__name__)

_HANDLERS: dict[str, Callable[[Any, Any], dict[str, Any]]] = {
    "/api/v1/authorize": decide_one,
    "/api/v1/authorize/": decide_one,
    "/api/v1/authorize/batch": decide_batch,
    "/api/v1/authorize/batch/": decide_batch,
}
# API token digest -> (monotonic expiry, decision generation, user with roles loaded). Per process; cleared when it
# grows past the limit.
_AUTH_CACHE: dict[str, tuple[float, int, Any]] = {}
_AUTH_CACHE_LIMIT = 10_000


def _remembered(secret: str, generation: int) -> Any:
    """The user remembered for this token at ``generation`` (still within its lifetime), else ``None``."""
    if settings.STEWARD_DECISION_AUTH_CACHE_SECONDS <= 0:
        return None
    hit = _AUTH_CACHE.get(hashlib.sha256(secret.encode()).hexdigest())
    if hit is not None and hit[0] > time.monotonic() and hit[1] == generation:
        return hit[2]
    return None


def _authenticate(secret: str, generation: int | None) -> Any:
    """The user of an active API token, or ``None``. Remembered while the decision ``generation`` (which any
    change to a token, a user's activity or roles, or group memberships moves) stays the same, for at most
    ``STEWARD_DECISION_AUTH_CACHE_SECONDS`` and never past the token's own expiry: a revoked token, a deactivated
    user or a removed role is refused by the next call. Without a generation (not PostgreSQL) or with ``0``,
    the database is asked on every call."""
    ttl = settings.STEWARD_DECISION_AUTH_CACHE_SECONDS
    if ttl <= 0 or generation is None:
        token = token_authenticate(secret)
        return None if token is None else token.user
    key = hashlib.sha256(secret.encode()).hexdigest()
    now = time.monotonic()
    hit = _AUTH_CACHE.get(key)
    if hit is not None and hit[0] > now and hit[1] == generation:
        return hit[2]
    token = token_authenticate(secret)
    if token is None:
        _AUTH_CACHE.pop(key, None)
        return None
    lifetime = float(ttl)
    if token.expires_at is not None:
        lifetime = min(lifetime, (token.expires_at - timezone.now()).total_seconds())
    if len(_AUTH_CACHE) >= _AUTH_CACHE_LIMIT:
        _AUTH_CACHE.clear()
    _AUTH_CACHE[key] = (now + lifetime, generation, token.user)
    return token.user


class DecisionFastPath:
    """WSGI middleware: answers bearer-token decision calls itself and passes every other request to ``app``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handler = _HANDLERS.get(environ.get("PATH_INFO", ""))
        secret = bearer_json_secret(environ, TOKEN_PREFIX) if handler is not None else None
        if handler is None or secret is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        rid = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        bound = bind_request_id(rid)
        db = connections[DEFAULT_DB_ALIAS]
        tidy(db)
        extra: list[tuple[str, str]] = []
        try:
            status, payload = self._answer(environ, handler, secret, extra)
        except Exception:
            logger.exception("decision fast path failed: %s", environ.get("PATH_INFO"))
            status, payload = 500, _error(500, "server_error", "Internal server error.")
        finally:
            tidy(db)
            unbind_request_id(bound)
        body = encode(payload)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("X-Request-ID", rid),
            ("Vary", "Accept, Authorization"),
            *extra,
        ]
        start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
        metrics.observe_request(environ["PATH_INFO"].lstrip("/"), "POST", status, time.perf_counter() - started)
        return [body]

    @staticmethod
    def _answer(
        environ: dict[str, Any],
        handler: Callable[[Any, Any], dict[str, Any]],
        secret: str,
        extra: list[tuple[str, str]],
    ) -> tuple[int, dict]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return 413, payload_too_large(length, limit)
        raw = environ["wsgi.input"].read(length) if length else b""
        # From memory at the generation this process's index was built at, read back once at the end together with
        # the denials' audit append (``decision_index.assumed_generation``): one round trip. If it moved, or the
        # token is not remembered at that generation, or the call is refused, it is answered the sure way below.
        assumed = decision_index.installed_generation()
        if assumed is not None:
            user = _remembered(secret, assumed)
            if user is not None and not getattr(user, "_steward_token_scopes", None):
                try:
                    with decision_index.assumed_generation(assumed):
                        answer = handler(user, jsonbody.loads(raw))
                        decision_index.confirm()  # when the handler did not (it always does)
                    return 200, answer
                except (decision_index.GenerationMoved, DomainError):
                    pass
        # One read of the decision generation serves the token check and the decisions of this call.
        with decision_index.pinned_generation() as generation:
            user = _authenticate(secret, generation)
            if user is None:
                extra.append(("WWW-Authenticate", 'Bearer realm="steward"'))
                return 401, _error(401, "authentication_failed", "Invalid, expired or revoked API token.")
            scopes = getattr(user, "_steward_token_scopes", None)
            if scopes:  # a scoped token (lineage:write) may not ask for decisions
                detail = f"This API token is limited to {', '.join(sorted(scopes))} and may do nothing else."
                return 403, _error(403, "permission_denied", detail)
            try:
                return 200, handler(user, jsonbody.loads(raw))
            except DomainError as exc:
                return exc.status, _error(
                    exc.status, exc.code, exc.message, [(p.field, p.message, p.code) for p in exc.problems]
                )
