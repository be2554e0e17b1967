"""The decision fast path (``governance.api.fastpath``) answers exactly as the DRF views do.

Each question is asked twice: through the WSGI application the server serves (``steward.wsgi.application``, where
bearer-token decision calls skip Django's request cycle) and through Django's test client (the DRF views), and
the two answers must match: status, body and the audit events they leave.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from rest_framework.test import APIClient

from accounts.services import token_create, token_revoke
from governance.api import fastpath
from governance.models import Grant
from ledger.models import AuditEvent
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def service(db):
    return make_user("gatekeeper", "service")


@pytest.fixture
def granted(ask, act, data_scientist, data_owner, levelled):
    act(data_owner, ask(data_scientist, [levelled["C2"]], purpose="analytics", duration="P1D").json()["id"], "approve")
    return Grant.objects.get()


@pytest.fixture
def wsgi(settings) -> Iterator[Any]:
    """Call the served WSGI application. Like Django's test client, keep the request signals from closing the
    test's connection (its transaction holds the test's data); fresh authentication for every test."""
    from steward.wsgi import application

    settings.STEWARD_DECISION_AUTH_CACHE_SECONDS = 0
    fastpath._AUTH_CACHE.clear()

    def call(path: str, body: Any, token: str | None, *, raw: bytes | None = None, **headers: str):
        data = raw if raw is not None else json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
            "wsgi.url_scheme": "http",
            "wsgi.errors": io.StringIO(),
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            **({"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}),
            **{f"HTTP_{k.upper()}": v for k, v in headers.items()},
        }
        seen: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
            seen["status"], seen["headers"] = int(status.split()[0]), dict(response_headers)

        # As Django's test client does around each request (it reconnects them after its own).
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            content = b"".join(application(environ, start_response))
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        return seen["status"], seen["headers"], content

    yield call
    fastpath._AUTH_CACHE.clear()


def token_of(user) -> str:
    return token_create(actor=user, user=user, name="proxy")[1]


def drf(path: str, body: Any, token: str) -> tuple[int, Any]:
    res = APIClient().post(path, body, format="json", HTTP_AUTHORIZATION=f"Bearer {token}")
    return res.status_code, res.json()


def test_answers_match_the_drf_views_for_every_outcome(wsgi, service, granted, data_scientist, levelled):
    token = token_of(service)
    ds = granted.dataset
    singles = [
        {"subject": "dana", "action": "read", "asset": str(ds.pk)},
        {"subject": data_scientist.pk, "action": "read", "asset": {"namespace": ds.namespace, "name": ds.name}},
        {"subject": "oscar", "action": "read", "asset": str(ds.pk)},
        {"subject": "dana", "action": "read", "asset": {"namespace": "s3://x", "name": "y"}},
        {"subject": "workspace:5b0d7c1e-3f7a-4c2e-9a51-1d2b3c4d5e6f", "action": "read", "asset": str(ds.pk)},
        {"subject": "dana", "action": "write", "asset": str(ds.pk)},
        {"subject": "dana", "action": "read", "asset": str(ds.pk), "at": "2020-01-01T00:00:00"},
        {"subject": "dana", "action": "read", "asset": str(ds.pk), "at": "2020-01-01T00:00:00Z"},
        ["not", "an", "object"],
    ]
    for body in singles:
        status, headers, content = wsgi("/api/v1/authorize", body, token)
        assert (status, json.loads(content)) == drf("/api/v1/authorize", body, token), body
    batch = {"requests": [b for b in singles if isinstance(b, dict) and b["action"] == "read" and "at" not in b]}
    status, _, content = wsgi("/api/v1/authorize/batch", batch, token)
    assert status == 200 and (status, json.loads(content)) == drf("/api/v1/authorize/batch", batch, token)
    assert [d["reason"] for d in json.loads(content)["decisions"]] == [
        "granted",
        "granted",
        "unknown_subject",
        "unknown_asset",
        "no_grant",
    ]
    for body in ({"requests": "x"}, {"requests": [], "extra": 1}, {"requests": [{"subject": "dana"}]}):
        status, _, content = wsgi("/api/v1/authorize/batch", body, token)
        assert (status, json.loads(content)) == drf("/api/v1/authorize/batch", body, token), body


def test_denials_are_audited_by_the_caller_with_the_request_id(wsgi, service, granted):
    token = token_of(service)
    body = {"subject": "oscar", "action": "read", "asset": str(granted.dataset_id)}

    status, headers, _ = wsgi("/api/v1/authorize", body, token, X_REQUEST_ID="trace-42")

    assert status == 200 and headers["X-Request-ID"] == "trace-42"
    event = AuditEvent.objects.get(action="governance.decision.deny")
    assert (event.actor_name, event.request_id, event.after["reason"]) == ("gatekeeper", "trace-42", "unknown_subject")
    from ledger.audit import verify

    assert verify() is None, "the fast path's appends keep the hash chain"


def test_people_ask_only_about_themselves_here_too(wsgi, granted, data_scientist, other_scientist):
    body = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}
    status, _, content = wsgi("/api/v1/authorize", body, token_of(other_scientist))
    assert status == 403 and json.loads(content)["errors"][0] == {
        "field": "subject",
        "code": "not_yourself",
        "message": json.loads(content)["errors"][0]["message"],
    }
    status, _, content = wsgi("/api/v1/authorize", body, token_of(data_scientist))
    assert status == 200 and json.loads(content)["decision"] == "allow"


def test_bad_tokens_bodies_and_sizes_get_the_api_error_format(wsgi, service, settings):
    status, headers, content = wsgi("/api/v1/authorize", {}, "stw_nope_nope")
    assert status == 401 and json.loads(content)["code"] == "authentication_failed"
    assert headers["WWW-Authenticate"] == 'Bearer realm="steward"'
    token = token_of(service)
    status, _, content = wsgi("/api/v1/authorize", None, token, raw=b"{not json")
    assert status == 400 and json.loads(content)["errors"][0]["field"] == "body"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    status, _, content = wsgi("/api/v1/authorize", {"subject": "dana", "action": "read", "asset": "x"}, token)
    assert status == 413 and json.loads(content)["code"] == "payload_too_large"


def test_a_revoked_token_stops_at_once_with_or_without_the_cache(wsgi, service, granted, settings):
    """(The remembered token's exact invalidation across connections: tests/governance/test_decision_index.py.)"""
    secret = token_of(service)
    body = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}
    settings.STEWARD_DECISION_AUTH_CACHE_SECONDS = 300
    assert wsgi("/api/v1/authorize", body, secret)[0] == 200
    token_revoke(actor=service, token=service.api_tokens.get())
    assert wsgi("/api/v1/authorize", body, secret)[0] == 401
    settings.STEWARD_DECISION_AUTH_CACHE_SECONDS = 0
    assert wsgi("/api/v1/authorize", body, secret)[0] == 401


def test_other_requests_go_to_django(wsgi, service, data_scientist):
    from steward.wsgi import application

    token = token_of(service)
    # Not a decision path, or no bearer API token: Django answers (here: its 404, and DRF's 401).
    status, _, content = wsgi("/api/v1/authorize/other", {}, token)
    assert status == 404
    status, _, content = wsgi("/api/v1/authorize", {"subject": "dana", "action": "read", "asset": "x"}, None)
    assert status == 401 and json.loads(content)["code"] == "not_authenticated"
    assert isinstance(application, fastpath.DecisionFastPath)


def test_a_token_scoped_to_lineage_writes_may_not_ask_for_decisions(wsgi, granted):
    producer = make_user("svc-airflow", "lineage-producer")
    secret = token_create(actor=producer, user=producer, name="airflow", scopes=["lineage:write"])[1]
    body = {"subject": "dana", "action": "read", "asset": str(granted.dataset_id)}
    status, _, content = wsgi("/api/v1/authorize", body, secret)
    assert status == 403 and b"lineage:write" in content
