"""Queued ingestion (issue 18): a producer gets its answer once its events are checked and stored; the inbox drain
applies them in batches, loses none, applies none twice, and keeps what it cannot apply with the reason."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.services import token_create
from catalog.models import Dataset
from lineage.models import Edge, InboxEvent, LineageEvent, NamespaceProducer
from lineage.models import Run as RunRow
from lineage.services import inbox
from steward.canonical import canonical_text, digest_text
from steward.identity import Role
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS, at, complete, dataset, run_event

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/lineage"
BATCH = "/api/v1/lineage/batch"
INBOX = "/api/v1/lineage/inbox"
LAKE = "s3://lake"


def token_client(user: Any) -> APIClient:
    """A producer's client with a lineage:write token. Its requests' after-commit work does not run here (the test
    transaction never commits), so what the answer left to the drain stays in the inbox until the test drains it."""
    _, secret = token_create(actor=user, user=user, name="pipeline", scopes=["lineage:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def producer(db) -> Any:
    return make_producer(make_user("svc-airflow"), NS, "etl", LAKE)


@pytest.fixture
def pipeline(producer) -> APIClient:
    return token_client(producer)


def applied(name: str, namespace: str = NS) -> bool:
    return Dataset.objects.filter(namespace=namespace, name=name).exists()


def test_respond_async_answers_202_and_the_drain_applies_the_event(pipeline):
    event = complete("load", ["raw"], ["clean"], when=at(1))

    res = pipeline.post(INGEST, event, format="json", HTTP_PREFER="respond-async")

    assert res.status_code == 202, res.content
    assert res["Preference-Applied"] == "respond-async"
    assert res.json()["status"] == "queued" and res.json()["kind"] == "run"
    assert not applied("clean") and not LineageEvent.objects.exists()
    assert InboxEvent.objects.count() == 1

    result = inbox.drain()

    assert (result.applied, result.duplicates, result.failed) == (1, 0, 0)
    assert applied("raw") and applied("clean")
    assert Edge.objects.filter(source__name="raw", target__name="clean", valid_to=None).count() == 1
    assert not InboxEvent.objects.exists()
    # Sent again (queued or not), it is a duplicate and is not queued.
    again = pipeline.post(INGEST, event, format="json", HTTP_PREFER="respond-async")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert not InboxEvent.objects.exists()


def test_an_event_resent_while_it_waits_is_queued_once(pipeline):
    event = complete("load", ["raw"], ["clean"], when=at(1))
    with override_settings(STEWARD_LINEAGE_INGEST="queued"):
        first = pipeline.post(INGEST, event, format="json")
        second = pipeline.post(INGEST, event, format="json")
    assert (first.status_code, first.json()["status"]) == (202, "queued")
    assert (second.status_code, second.json()["status"]) == (200, "duplicate")
    assert InboxEvent.objects.count() == 1
    assert inbox.drain().applied == 1 and LineageEvent.objects.count() == 1


@override_settings(STEWARD_LINEAGE_INGEST="queued")
def test_queued_mode_still_refuses_bad_events_at_once_naming_the_field(pipeline):
    good = complete("load", ["raw"], ["clean"], when=at(1))
    bad = {**complete("load2", ["raw"], ["other"]), "eventTime": "yesterday"}

    res = pipeline.post(BATCH, {"events": [good, bad]}, format="json")

    assert res.status_code == 400
    fields = [e["field"] for e in res.json()["errors"]]
    assert fields == ["events[1].eventTime"], res.json()
    assert not InboxEvent.objects.exists()

    # A caller who may not produce lineage is refused before anything is stored.
    scientist = make_user("dana", Role.DATA_SCIENTIST)
    client = APIClient()
    client.force_login(scientist)
    assert client.post(INGEST, good, format="json").status_code == 403
    assert not InboxEvent.objects.exists()


@override_settings(STEWARD_LINEAGE_INGEST="queued")
def test_a_queued_batch_is_applied_in_order_and_ends_as_direct_ingestion_would(pipeline):
    run_id = str(uuid.uuid4())
    start = run_event("load", "START", inputs=[dataset("raw", fields=["id", "email"])], when=at(0), run_id=run_id)
    done = run_event("load", "COMPLETE", outputs=[dataset("clean", version="7")], when=at(3), run_id=run_id)

    res = pipeline.post(BATCH, {"events": [done, start, done]}, format="json")

    assert res.status_code == 202
    assert [r["status"] for r in res.json()["results"]] == ["queued", "queued", "duplicate"]
    inbox.drain()
    run = RunRow.objects.get(pk=run_id)
    assert (run.state, run.started_at.isoformat(), run.ended_at.isoformat()) == (
        "COMPLETE",
        "2026-01-01T12:00:00+00:00",
        "2026-01-01T12:03:00+00:00",
    )
    assert list(Dataset.objects.get(name="raw").fields.order_by("ordinal").values_list("name", flat=True)) == [
        "id",
        "email",
    ]


@pytest.mark.parametrize("prefer", ["respond-async", ""])
def test_the_stored_event_is_the_canonical_text_its_key_covers(pipeline, prefer):
    """Queued or direct, the archive keeps each event as the exact canonical JSON its digest was computed from,
    so anyone can check a stored event against its key (non-ASCII text included)."""
    event = complete("chargement", ["brut"], ["propre"], when=at(1))
    event["job"]["facets"]["documentation"] = {"_producer": "x", "description": "Données « clients », déjà nettoyées"}
    response = pipeline.post(INGEST, event, format="json", HTTP_PREFER=prefer)
    assert response.status_code in (201, 202), response.content
    inbox.drain()

    stored = LineageEvent.objects.get()
    assert stored.payload == canonical_text(event)
    assert digest_text(stored.payload) == stored.digest
    assert stored.data["job"]["facets"]["documentation"]["description"].startswith("Données « clients »")


def test_a_drained_event_is_kept_under_its_key_as_sent_so_a_direct_resend_is_a_duplicate(pipeline, settings):
    """The drain applies each event under the key computed when it was received (the event as sent), as direct
    ingestion does: an event over the stored size (trimmed) or with non-ASCII text, sent again without the
    preference, is a duplicate, and is stored once."""
    settings.STEWARD_LINEAGE_STORED_EVENT_BYTES = 2_000
    big = complete("load", ["raw"], ["clean"], when=at(1))
    big["run"]["facets"]["spark.logicalPlan"] = {"_producer": "spark", "plan": ["Project [id#1]"] * 500}
    accented = complete("chargement", ["brut"], ["propre"], when=at(2))
    accented["job"]["facets"]["documentation"] = {"_producer": "x", "description": "Données clients, déjà nettoyées"}
    for event in (big, accented):
        assert pipeline.post(INGEST, event, format="json", HTTP_PREFER="respond-async").status_code == 202

    assert inbox.drain().applied == 2

    assert "spark.logicalPlan" not in LineageEvent.objects.get(run_id=big["run"]["runId"]).data["run"]["facets"]
    for event in (big, accented):
        again = pipeline.post(INGEST, event, format="json")
        assert again.status_code == 200 and again.json()["status"] == "duplicate", again.content
    assert LineageEvent.objects.count() == 2 and not InboxEvent.objects.exists()


def test_an_event_its_producer_may_no_longer_send_fails_alone_with_the_reason(pipeline, producer, admin_user):
    kept = [complete(f"load_{k}", ["raw"], [f"clean_{k}"], when=at(k)) for k in range(2)]
    lost = run_event("export", "COMPLETE", inputs=[dataset("raw")], outputs=[dataset("out", namespace=LAKE)])
    res = pipeline.post(BATCH, {"events": [kept[0], lost, kept[1]]}, format="json", HTTP_PREFER="respond-async")
    assert res.status_code == 202
    # Before the drain, an admin gives the lake to another team's producer.
    NamespaceProducer.objects.filter(namespace=LAKE).delete()
    make_producer(make_user("svc-other"), LAKE)

    result = inbox.drain()

    assert (result.applied, result.failed) == (2, 1)
    assert applied("clean_0") and applied("clean_1") and not applied("out", LAKE)
    (failure,) = InboxEvent.objects.all()
    assert failure.state == "failed" and LAKE in failure.error
    # The admin sees it with the reason; the producer sees its own; someone else is refused.
    admin = APIClient()
    admin.force_login(admin_user)
    seen = admin.get(INBOX).json()
    assert (seen["pending"], seen["failed"]) == (0, 1)
    assert seen["failures"][0]["received_by"] == "svc-airflow" and LAKE in seen["failures"][0]["error"]
    assert pipeline.get(INBOX).json()["failures"][0]["id"] == failure.pk
    other = token_client(make_producer(make_user("svc-third"), "elsewhere"))
    assert other.get(INBOX).json()["failures"] == []
    scientist = APIClient()
    scientist.force_login(make_user("dana", Role.DATA_SCIENTIST))
    assert scientist.get(INBOX).status_code == 403

    # Given the lake back, a retry applies it; a second drain finds nothing to do.
    NamespaceProducer.objects.get_or_create(namespace=LAKE, producer=producer)
    call_command("lineage_inbox", "--retry-failed", "--drain", verbosity=0)
    assert applied("out", LAKE) and not InboxEvent.objects.exists()
    assert inbox.drain().taken == 0


@override_settings(STEWARD_LINEAGE_INGEST="queued")
def test_with_the_worker_the_event_is_applied_right_after_the_answer(producer, django_capture_on_commit_callbacks):
    client = token_client(producer)
    with django_capture_on_commit_callbacks(execute=True):  # the request's after-commit work runs (eager Celery)
        res = client.post(INGEST, complete("load", ["raw"], ["clean"], when=at(1)), format="json")
    assert res.status_code == 202
    assert applied("clean") and not InboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_apply_every_event_once(producer, monkeypatch):
    monkeypatch.setattr(inbox, "_drain_later", lambda: None)  # the worker is busy: the events wait
    client = token_client(producer)
    events = [complete(f"load_{k}", [f"raw_{k % 7}"], [f"clean_{k}"], when=at(k)) for k in range(120)]
    for start in range(0, len(events), 40):
        res = client.post(BATCH, {"events": events[start : start + 40]}, format="json", HTTP_PREFER="respond-async")
        assert res.status_code == 202
    assert InboxEvent.objects.count() == len(events)
    results: list[Any] = []

    def run() -> None:
        try:
            results.append(inbox.drain())
        finally:
            connection.close()

    monkeypatch.setattr(inbox, "DRAIN_BATCH", 25)  # several batches each, so the drains interleave
    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert len(results) == 3
    assert sum(r.applied for r in results) == len(events)
    assert sum(r.duplicates + r.failed for r in results) == 0
    assert LineageEvent.objects.count() == len(events) and not InboxEvent.objects.exists()
    assert Dataset.objects.filter(name__startswith="clean_").count() == len(events)


@pytest.mark.django_db(transaction=True)
def test_the_official_client_can_ask_for_queued_ingestion(live_server, producer, monkeypatch):
    """openlineage-python's HTTP transport sends ``Prefer: respond-async`` as a custom header and takes the 202."""
    from openlineage.client.event_v2 import RunState

    from tests.lineage.test_ingest_api import daily_totals_run, openlineage_client

    monkeypatch.setattr(inbox, "_drain_later", lambda: None)  # the worker is busy: the events wait
    secret = token_create(actor=producer, user=producer, name="scheduler", scopes=["lineage:write"])[1]
    client = openlineage_client(live_server.url, secret, custom_headers={"Prefer": "respond-async"})
    run_id = str(uuid.uuid4())
    client.emit(daily_totals_run(RunState.START, run_id, at(0)))
    client.emit(daily_totals_run(RunState.COMPLETE, run_id, at(10)))

    assert InboxEvent.objects.count() == 2 and not LineageEvent.objects.exists()
    assert inbox.drain().applied == 2
    assert RunRow.objects.get(pk=run_id).state == "COMPLETE"
    assert applied("order_totals")


@pytest.fixture
def small_inbox(settings) -> Any:
    """An inbox that holds two events; the web process counts what waits afresh."""
    settings.STEWARD_LINEAGE_INBOX_LIMIT = 2
    settings.STEWARD_LINEAGE_INBOX_RETRY_AFTER_S = 7
    inbox.forget_count()
    yield settings
    inbox.forget_count()


def test_a_full_inbox_sends_queued_calls_back_with_503_and_stores_nothing(pipeline, small_inbox, admin_user):
    events = [complete(f"load_{k}", ["raw"], [f"clean_{k}"], when=at(k)) for k in range(4)]
    assert pipeline.post(BATCH, {"events": events[:2]}, format="json", HTTP_PREFER="respond-async").status_code == 202

    full = pipeline.post(INGEST, events[2], format="json", HTTP_PREFER="respond-async")

    assert full.status_code == 503, full.content
    assert full["Retry-After"] == "7"
    answer = full.json()
    assert answer["code"] == "overloaded" and [e["code"] for e in answer["errors"]] == ["inbox_full"]
    assert "inbox is full" in answer["detail"] and "again in 7 s" in answer["detail"]
    assert InboxEvent.objects.count() == 2
    # Counted from the database too (another process filled it), and for batches alike.
    inbox.forget_count()
    batch = pipeline.post(BATCH, {"events": events[2:]}, format="json", HTTP_PREFER="respond-async")
    assert batch.status_code == 503 and batch["Retry-After"] == "7"
    assert InboxEvent.objects.count() == 2
    # Direct ingestion does not use the inbox: it still applies at once.
    direct = pipeline.post(INGEST, events[2], format="json")
    assert (direct.status_code, direct.json()["status"]) == (201, "applied")
    admin = APIClient()
    admin.force_login(admin_user)
    state = admin.get(INBOX).json()
    assert (state["pending"], state["failed"], state["limit"]) == (2, 0, 2)

    # Once the drain has made room, the same call is taken.
    assert inbox.drain().applied == 2
    again = pipeline.post(INGEST, events[3], format="json", HTTP_PREFER="respond-async")
    assert (again.status_code, again.json()["status"]) == (202, "queued")
    assert applied("clean_0") and applied("clean_1") and applied("clean_2") and not applied("clean_3")


def test_without_a_limit_the_inbox_takes_every_call(pipeline, small_inbox):
    small_inbox.STEWARD_LINEAGE_INBOX_LIMIT = 0
    events = [complete(f"load_{k}", ["raw"], [f"clean_{k}"], when=at(k)) for k in range(5)]
    for event in events:
        assert pipeline.post(INGEST, event, format="json", HTTP_PREFER="respond-async").status_code == 202
    assert InboxEvent.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_the_official_client_waits_for_room_in_a_full_inbox_and_loses_nothing(live_server, producer, monkeypatch):
    """openlineage-python's HTTP transport, with its default retries, honours the 503's Retry-After and sends the
    event again; the drain made room meanwhile, so the event is queued once and applied."""
    from openlineage.client.event_v2 import RunState
    from openlineage.client.transport.http import DEFAULT_RETRY_CONFIG

    from tests.lineage.test_ingest_api import daily_totals_run, openlineage_client

    monkeypatch.setattr(inbox, "_drain_later", lambda: None)  # the worker is behind: events wait until drained
    with override_settings(STEWARD_LINEAGE_INBOX_LIMIT=1, STEWARD_LINEAGE_INBOX_RETRY_AFTER_S=1):
        inbox.forget_count()
        secret = token_create(actor=producer, user=producer, name="scheduler", scopes=["lineage:write"])[1]
        client = openlineage_client(
            live_server.url, secret, custom_headers={"Prefer": "respond-async"}, retry=DEFAULT_RETRY_CONFIG
        )
        run_id = str(uuid.uuid4())
        client.emit(daily_totals_run(RunState.START, run_id, at(0)))
        assert InboxEvent.objects.count() == 1

        sent_back = threading.Event()
        room_check = inbox._room_check

        def watched(events: int) -> None:
            try:
                room_check(events)
            except Exception:
                sent_back.set()
                raise

        monkeypatch.setattr(inbox, "_room_check", watched)
        drained: list[Any] = []

        def worker() -> None:  # the worker catches up once the producer has been sent back
            try:
                if sent_back.wait(timeout=30):
                    drained.append(inbox.drain())
            finally:
                connection.close()

        thread = threading.Thread(target=worker)
        thread.start()
        client.emit(daily_totals_run(RunState.COMPLETE, run_id, at(10)))  # 503, then taken on the resend
        thread.join(timeout=60)

        assert sent_back.is_set() and drained and drained[0].applied == 1
        assert InboxEvent.objects.count() == 1  # the resent COMPLETE, once
        assert inbox.drain().applied == 1
    assert RunRow.objects.get(pk=run_id).state == "COMPLETE"
    assert LineageEvent.objects.count() == 2
    inbox.forget_count()
