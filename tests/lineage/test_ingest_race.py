"""Concurrent clients naming the same new datasets (issue 18): nothing lost, nothing duplicated, no 5xx.

Each client is a thread sending HTTP requests to a live server on the test PostgreSQL (each request on its own
database connection), all released together by a barrier so their transactions overlap.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from accounts.services import token_create
from catalog.models import Dataset, SchemaField
from ledger.models import AuditEvent
from lineage.models import Job, LineageEvent, Run
from steward.identity import Role
from tests.conftest import make_user
from tests.lineage.events import NS, at, dataset

CLIENTS = 6


def _together(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run ``calls`` at once, one thread each; the responses in order (an exception fails the test)."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = calls[i]()
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for i, res in enumerate(out):
        assert isinstance(res, requests.Response), (i, res)
    return out


def _post(url: str, token: str, body: Any) -> Callable[[], requests.Response]:
    return lambda: requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120)


def _event(job: str, inputs: list[str], outputs: list[str], run_id: str, event_type: str = "COMPLETE") -> dict:
    return {
        "eventType": event_type,
        "eventTime": at(1 if event_type == "COMPLETE" else 0),
        "producer": "https://example.org/race",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "etl", "name": job, "facets": {}},
        "inputs": [dataset(n, fields=["id", "amount"]) for n in inputs],
        "outputs": [dataset(n, fields=["id", "amount", f"col_{job}"]) for n in outputs],
    }


@pytest.fixture
def tokens(transactional_db) -> dict[str, str]:
    scientist = make_user("race-dana", Role.DATA_SCIENTIST, Role.LINEAGE_PRODUCER)
    steward = make_user("race-stella", Role.DATA_STEWARD)
    return {
        "scientist": token_create(actor=scientist, user=scientist, name="race")[1],
        "steward": token_create(actor=steward, user=steward, name="race")[1],
    }


def test_concurrent_single_events_naming_the_same_new_datasets_lose_nothing(live_server, tokens):
    names = [f"race.shared_{k}" for k in range(12)]
    # Each client's own job reads every shared dataset and writes one of them, in its own order (so that two
    # clients' inserts would interleave); a START and a COMPLETE of one run are sent by two different clients too.
    shared_run = str(uuid.uuid4())
    calls = []
    for c in range(CLIENTS):
        order = names[c:] + names[:c]
        calls.append(
            _post(
                f"{live_server.url}/api/v1/lineage",
                tokens["scientist"],
                _event(f"job_{c}", order[1:], order[:1], str(uuid.uuid4())),
            )
        )
    calls.append(
        _post(
            f"{live_server.url}/api/v1/lineage",
            tokens["scientist"],
            _event("job_shared", names[:3], names[3:4], shared_run, "START"),
        )
    )
    calls.append(
        _post(
            f"{live_server.url}/api/v1/lineage",
            tokens["scientist"],
            _event("job_shared", names[:3], names[3:4], shared_run),
        )
    )
    duplicate = _event("job_dup", names[4:6], names[6:7], str(uuid.uuid4()))
    calls += [_post(f"{live_server.url}/api/v1/lineage", tokens["scientist"], duplicate) for _ in range(2)]

    responses = _together(calls)

    assert [r.status_code for r in responses if r.status_code >= 300] == [], [r.text[:300] for r in responses]
    statuses = sorted(r.json()["status"] for r in responses[-2:])
    assert statuses == ["applied", "duplicate"]
    assert Dataset.objects.filter(namespace=NS, name__in=names).count() == len(names)
    assert set(Job.objects.filter(namespace="etl").values_list("name", flat=True)) == {
        *(f"job_{c}" for c in range(CLIENTS)),
        "job_shared",
        "job_dup",
    }
    assert LineageEvent.objects.count() == CLIENTS + 3  # every distinct event once, the resent one once
    assert Run.objects.get(pk=shared_run).state == "COMPLETE"
    for c in range(CLIENTS):  # each writer's own column reached the dataset it wrote
        written = (names[c:] + names[:c])[0]
        assert SchemaField.objects.filter(dataset__name=written, name=f"col_job_{c}").exists()
    for name in names:  # the schema every event stated, whichever client created the dataset, each field once
        stored = SchemaField.objects.filter(dataset__namespace=NS, dataset__name=name)
        fields = list(stored.values_list("name", flat=True))
        assert {"id", "amount"} <= set(fields) and len(fields) == len(set(fields)), (name, fields)


def test_concurrent_batches_and_catalog_bulk_upserts_of_the_same_new_datasets(live_server, tokens):
    names = [f"race.bulk_{k}" for k in range(40)]
    calls = []
    for c in range(CLIENTS // 2):
        order = names[c * 7 :] + names[: c * 7]
        events = [_event(f"batch_{c}_{k}", [order[k]], [order[k + 1]], str(uuid.uuid4())) for k in range(0, 38, 2)]
        calls.append(_post(f"{live_server.url}/api/v1/lineage/batch", tokens["scientist"], {"events": events}))
    for c in range(CLIENTS // 2):
        order = list(reversed(names)) if c % 2 else names
        specs = [{"namespace": NS, "name": n, "description": f"from client {c}"} for n in order]
        calls.append(_post(f"{live_server.url}/api/v1/datasets/bulk", tokens["steward"], {"datasets": specs}))

    responses = _together(calls)

    assert [r.status_code for r in responses if r.status_code >= 300] == [], [r.text[:300] for r in responses]
    assert Dataset.objects.filter(namespace=NS, name__in=names).count() == len(names)
    for body in (r.json() for r in responses[CLIENTS // 2 :]):
        assert body["created"] + body["updated"] + body["unchanged"] == len(names), body
    created = AuditEvent.objects.filter(action="catalog.dataset.create", target_repr__contains="race.bulk_")
    assert created.count() == len(names)  # each dataset created once, by one of the clients
    assert LineageEvent.objects.count() == (CLIENTS // 2) * 19


def test_concurrent_big_batches_of_the_same_new_datasets_and_the_same_events(live_server, tokens):
    # More new datasets and versions in a call than go in one INSERT ... VALUES (steward.bulk.SMALL): the set-based
    # path, each client naming them in its own order; one client sends the same events as another (a retry).
    names = [f"race.big_{k}" for k in range(260)]
    batches = []
    for c in range(3):
        order = names[c * 50 :] + names[: c * 50]
        events = [_event(f"big_{c}", order[:1], order[1:2], str(uuid.uuid4()), "START")]
        events += [_event(f"big_{c}_{k}", [order[k]], [order[k + 1]], str(uuid.uuid4())) for k in range(0, 258, 2)]
        batches.append({"events": events})
    batches.append(batches[0])
    calls = [_post(f"{live_server.url}/api/v1/lineage/batch", tokens["scientist"], body) for body in batches]

    responses = _together(calls)

    assert [r.status_code for r in responses if r.status_code >= 300] == [], [r.text[:300] for r in responses]
    assert Dataset.objects.filter(namespace=NS, name__in=names).count() == len(names)
    created = AuditEvent.objects.filter(action="catalog.dataset.create", target_repr__contains="race.big_")
    assert created.count() == len(names)  # each dataset created once, by one of the clients
    assert LineageEvent.objects.count() == 3 * 130  # the resent batch added nothing
    for name in names[:20]:
        fields = list(SchemaField.objects.filter(dataset__name=name).values_list("name", flat=True))
        assert {"id", "amount"} <= set(fields) and len(fields) == len(set(fields)), (name, fields)
