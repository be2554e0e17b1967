"""Prometheus /metrics: who may scrape it, and that the counters move with what happens."""

from __future__ import annotations

import pytest
import redis
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from accounts.services import token_create
from lineage import propagation
from lineage.graph.neo4j import Neo4jGraphBackend
from lineage.models import PropagationChange
from steward import metrics
from steward.errors import BackendUnavailable
from tests.conftest import make_producer
from tests.governance.conftest import ask, levelled  # noqa: F401 (fixtures)
from tests.lineage.events import NS, complete

pytestmark = pytest.mark.django_db
# A Redis database of this helper's own, so parallel runs (and the real workers on db 0) never collide.
REDIS_DB = 13


def scrape(client) -> dict[tuple[str, tuple], float]:
    res = client.get("/metrics")
    assert res.status_code == 200, res.content
    assert res["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(res.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def restricted():
    with override_settings(STEWARD_METRICS_ALLOWED_NETWORKS=["10.9.0.0/16"]):
        metrics._clear_caches()
        yield
    metrics._clear_caches()


def test_outside_the_allowed_networks_only_admins_scrape(restricted, client_for, data_scientist, admin_user):
    assert client_for(None).get("/metrics").status_code == 403
    assert client_for(None).get("/metrics", REMOTE_ADDR="10.9.1.2").status_code == 200
    assert client_for(data_scientist).get("/metrics").status_code == 403
    assert client_for(admin_user).get("/metrics").status_code == 200
    _, secret = token_create(actor=admin_user, user=admin_user, name="prometheus")
    assert client_for(None).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    _, theirs = token_create(actor=data_scientist, user=data_scientist, name="mine")
    assert client_for(None).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {theirs}").status_code == 403


def test_decisions_and_request_latency_are_counted(client_for, admin_user, data_scientist, ask, levelled):  # noqa: F811
    client = client_for(admin_user)
    before = scrape(client)
    assert ask(data_scientist, [levelled["C1"]], purpose="analytics").status_code == 201  # auto-approved
    for name in ("web.public.pages", "hr.public.salaries"):
        body = {"subject": "dana", "action": "read", "asset": {"namespace": levelled["C1"].namespace, "name": name}}
        assert client.post("/api/v1/authorize", body, format="json").status_code == 200
    after = scrape(client)
    assert (
        value(after, "steward_decisions_total", decision="allow")
        - value(before, "steward_decisions_total", decision="allow")
        == 1
    )
    assert (
        value(after, "steward_decisions_total", decision="deny")
        - value(before, "steward_decisions_total", decision="deny")
        == 1
    )

    def timed(scraped: dict) -> dict[str, float]:
        """POST requests counted per endpoint, summed over the other labels (status and so on)."""
        out: dict[str, float] = {}
        for (name, labels), v in scraped.items():
            if name == "steward_http_request_duration_seconds_count" and dict(labels)["method"] == "POST":
                out[dict(labels)["endpoint"]] = out.get(dict(labels)["endpoint"], 0) + v
        return out

    counted = timed(after).get("api/v1/authorize", 0) - timed(before).get("api/v1/authorize", 0)
    assert counted >= 2, timed(after)  # by route pattern, never by concrete path


def test_ingestion_accepted_and_refused(client_for, data_steward, admin_user):
    admin = client_for(admin_user)
    before = scrape(admin)
    sender = client_for(make_producer(data_steward, "etl", NS))
    good = complete("load_orders", ["raw.orders"], ["staging.orders"])
    assert sender.post("/api/v1/lineage", good, format="json").status_code in (200, 201)
    assert sender.post("/api/v1/lineage", good, format="json").status_code in (200, 201)  # a duplicate: accepted
    bad = sender.post("/api/v1/lineage/batch", {"events": [good, {"eventType": "NOPE"}]}, format="json")
    assert bad.status_code == 400
    after = scrape(admin)

    def moved(outcome: str) -> float:
        labels = {"source": "openlineage", "outcome": outcome}
        return value(after, "steward_ingestion_events_total", **labels) - value(
            before, "steward_ingestion_events_total", **labels
        )

    assert (moved("accepted"), moved("refused")) == (2, 2)


def test_propagation_backlog_and_drain_time(client_for, admin_user, make_dataset):
    admin = client_for(admin_user)
    ds = make_dataset("sales.public.orders")
    PropagationChange.objects.all().delete()
    PropagationChange.objects.create(datasets=[str(ds.pk)])
    PropagationChange.objects.create(datasets=[str(ds.pk)])
    waiting = scrape(admin)
    assert value(waiting, "steward_propagation_backlog") == 2
    assert value(waiting, "steward_propagation_backlog_oldest_seconds") >= 0
    propagation.drain()
    drained = scrape(admin)
    assert value(drained, "steward_propagation_backlog") == 0
    assert (
        value(drained, "steward_propagation_drain_seconds_count")
        == value(waiting, "steward_propagation_drain_seconds_count") + 1
    )


def test_queued_ingestion_shows_what_waits_and_what_a_full_inbox_sent_back(
    client_for, data_steward, admin_user, settings, monkeypatch
):
    from lineage.services import inbox

    monkeypatch.setattr(inbox, "_drain_later", lambda: None)  # the worker is behind: events wait
    settings.STEWARD_LINEAGE_INBOX_LIMIT = 2
    inbox.forget_count()
    admin = client_for(admin_user)
    before = scrape(admin)
    sender = client_for(make_producer(data_steward, "etl", NS))
    events = [complete(f"load_{k}", [f"raw.t{k}"], [f"staging.t{k}"]) for k in range(4)]
    queued = {"format": "json", "HTTP_PREFER": "respond-async"}
    assert sender.post("/api/v1/lineage/batch", {"events": events[:2]}, **queued).status_code == 202
    assert sender.post("/api/v1/lineage/batch", {"events": events[2:]}, **queued).status_code == 503
    after = scrape(admin)

    assert value(after, "steward_lineage_inbox_pending") == 2
    assert value(after, "steward_lineage_inbox_oldest_seconds") >= 0
    assert value(after, "steward_lineage_inbox_failed") == 0
    assert value(after, "steward_lineage_inbox_limit") == 2
    labels = {"source": "openlineage_queued", "outcome": "deferred"}
    deferred = value(after, "steward_ingestion_events_total", **labels)
    assert deferred - value(before, "steward_ingestion_events_total", **labels) == 2
    inbox.drain()
    assert value(scrape(admin), "steward_lineage_inbox_pending") == 0
    inbox.forget_count()


def test_celery_queue_depth_is_read_from_the_broker(client_for, admin_user):
    url = f"redis://127.0.0.1:56379/{REDIS_DB}"
    queue = "steward-h12b-metrics"
    r = redis.Redis.from_url(url)
    r.delete(queue)
    r.lpush(queue, *[f"message {i}" for i in range(3)])
    try:
        with override_settings(CELERY_BROKER_URL=url, CELERY_TASK_DEFAULT_QUEUE=queue):
            samples = scrape(client_for(admin_user))
        assert value(samples, "steward_celery_queue_depth", queue=queue) == 3
    finally:
        r.delete(queue)


def test_graph_backend_errors_are_counted(client_for, admin_user):
    before = scrape(client_for(admin_user))
    backend = Neo4jGraphBackend(url="bolt://127.0.0.1:1", connection_timeout=1.0)
    with pytest.raises(BackendUnavailable):
        backend.ping()
    backend.close()
    after = scrape(client_for(admin_user))
    labels = {"kind": "graph", "backend": "neo4j"}
    assert value(after, "steward_backend_errors_total", **labels) > value(
        before, "steward_backend_errors_total", **labels
    )
