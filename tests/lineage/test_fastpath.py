"""The ingestion fast path (``lineage.api.fastpath``) answers producers as the DRF views do, and hands Django every
call it is not sure of.

Calls go through the WSGI application the server serves (``steward.wsgi.application``); the same calls through
Django's test client (the DRF views) must give the same answers. A call the fast path answered carries none of
the headers Django's middleware adds (``X-Frame-Options``); one it handed on carries them.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.services import token_create, token_revoke
from lineage.models import InboxEvent, LineageEvent
from steward.identity import Role
from tests.conftest import make_producer, make_user
from tests.governance.test_decision_fastpath import wsgi  # noqa: F401 - the served application, as a fixture
from tests.lineage.events import NS, at, complete

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/lineage"
BATCH = "/api/v1/lineage/batch"


@pytest.fixture
def producer(db) -> Any:
    return make_producer(make_user("svc-airflow"), NS, "etl")


def token(user: Any, scopes: list[str] | None = None) -> str:
    return token_create(actor=user, user=user, name="pipeline", scopes=scopes)[1]


def drf(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def answered_by_django(headers: dict[str, str]) -> bool:
    return "X-Frame-Options" in headers


def test_a_producers_event_is_applied_then_a_duplicate_as_through_the_api(wsgi, producer):  # noqa: F811
    secret = token(producer, ["lineage:write"])
    event = complete("load", ["raw"], ["clean"], when=at(1))

    status, headers, body = wsgi(INGEST, event, secret)

    assert status == 201 and not answered_by_django(headers)
    answer = json.loads(body)
    assert answer["status"] == "applied" and answer["kind"] == "run"
    assert headers["X-Request-ID"] and headers["Content-Type"] == "application/json"
    assert LineageEvent.objects.count() == 1
    again = drf(secret).post(INGEST, event, format="json")
    assert again.status_code == 200 and again.json() == {**answer, "status": "duplicate"}
    status, _, body = wsgi(INGEST, event, secret)
    assert status == 200 and json.loads(body) == again.json()


def test_queued_calls_and_batches_answer_as_the_views(wsgi, producer):  # noqa: F811
    secret = token(producer)
    events = [complete(f"load_{k}", ["raw"], [f"clean_{k}"], when=at(k)) for k in range(3)]

    status, headers, body = wsgi(BATCH, {"events": events}, secret, prefer="respond-async")

    assert status == 202 and headers["Preference-Applied"] == "respond-async"
    assert [r["status"] for r in json.loads(body)["results"]] == ["queued"] * 3
    assert InboxEvent.objects.count() == 3
    through_drf = drf(secret).post(BATCH, {"events": events}, format="json", HTTP_PREFER="respond-async")
    assert through_drf.status_code == 200
    assert through_drf.json() == {"results": [{**r, "status": "duplicate"} for r in json.loads(body)["results"]]}


def test_bad_input_and_refused_namespaces_get_the_apis_errors(wsgi, producer):  # noqa: F811
    secret = token(producer, ["lineage:write"])
    bad = {"events": [complete("load", ["raw"], ["clean"]), {**complete("load2", ["raw"], ["x"]), "eventTime": "?"}]}
    status, headers, body = wsgi(BATCH, bad, secret)
    expected = drf(secret).post(BATCH, bad, format="json")
    assert (status, json.loads(body)) == (400, expected.json())
    assert [e["field"] for e in expected.json()["errors"]] == ["events[1].eventTime"]
    assert not answered_by_django(headers)

    status, _, body = wsgi(INGEST, None, secret, raw=b'{"eventType": ')
    assert status == 400 and json.loads(body)["code"] == "parse_error"

    # A namespace owned by another team's producer: the service's 403, naming the place.
    make_producer(make_user("svc-other"), "s3://lake")
    foreign = complete("load", ["raw"], ["clean"])
    foreign["outputs"][0]["namespace"] = "s3://lake"
    status, _, body = wsgi(INGEST, foreign, secret)
    expected = drf(secret).post(INGEST, foreign, format="json")
    assert (status, json.loads(body)) == (403, expected.json())
    assert not LineageEvent.objects.exists()


def test_calls_it_is_not_sure_of_go_to_django_unchanged(wsgi, producer):  # noqa: F811
    event = complete("load", ["raw"], ["clean"], when=at(1))
    # A user who may not produce lineage, a revoked token, an unknown token: Django's refusals (and audit).
    scientist = make_user("dana", Role.DATA_SCIENTIST)
    row, revoked = token_create(actor=producer, user=producer, name="old")
    token_revoke(actor=producer, token=row)
    for secret, code in [
        (token(scientist), 403),
        (revoked, 401),
        ("stw_deadbeef_not-a-token", 401),
    ]:
        status, headers, body = wsgi(INGEST, event, secret)
        assert status == code and answered_by_django(headers), (secret, status, body[:200])
    assert not LineageEvent.objects.exists()
    # A gzip body: inflated by Django's view, applied.
    data = gzip.compress(json.dumps(event).encode())
    status, headers, body = wsgi(INGEST, None, token(producer), raw=data, content_encoding="gzip")
    assert status == 201 and answered_by_django(headers), body[:300]
    assert LineageEvent.objects.count() == 1


def test_a_full_inbox_sends_queued_calls_back_as_the_views_do(wsgi, producer, settings):  # noqa: F811
    from lineage.services import inbox

    settings.STEWARD_LINEAGE_INBOX_LIMIT, settings.STEWARD_LINEAGE_INBOX_RETRY_AFTER_S = 1, 3
    inbox.forget_count()
    secret = token(producer)
    first, second = (complete(f"load_{k}", ["raw"], [f"clean_{k}"], when=at(k)) for k in range(2))
    assert wsgi(INGEST, first, secret, prefer="respond-async")[0] == 202

    status, headers, body = wsgi(INGEST, second, secret, prefer="respond-async")

    assert status == 503 and not answered_by_django(headers)
    assert headers["Retry-After"] == "3"
    through_drf = drf(secret).post(INGEST, second, format="json", HTTP_PREFER="respond-async")
    assert through_drf.status_code == 503 and through_drf["Retry-After"] == "3"
    assert json.loads(body) == through_drf.json()
    assert InboxEvent.objects.count() == 1
    inbox.forget_count()
