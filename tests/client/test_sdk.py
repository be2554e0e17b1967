"""The Python SDK (``steward_client``) against a live server: what a script written with it sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lineage.models import Job
from steward_client import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    PushError,
    ServerError,
    StewardClient,
    StewardConnectionError,
    StewardError,
    ValidationError,
    push_jsonl,
)
from tests.client.conftest import ROOT
from tests.lineage.events import NS, complete, dataset, run_event

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def write_events(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_search_datasets_and_tags(cast, make_dataset, tags):
    orders = make_dataset(
        "sales.public.orders",
        description="Orders placed online",
        fields=[{"name": "id", "type": "int"}, {"name": "email", "type": "varchar"}],
    )
    for i in range(7):
        make_dataset(f"sales.public.part_{i}", description="a partition")
    dana, stella = cast.client("dana"), cast.client("stella")

    found = dana.search("orders")
    assert (found.results[0].id, found.results[0].qualified_name) == (str(orders.pk), "sales.public.orders")
    assert found.total == 1
    assert [(v.value, v.count) for v in found.facets["platform"]] == [("postgres", 1)]
    assert dana.search("orders", platform=["kafka"]).total == 0

    shown = dana.dataset(str(orders.pk))
    assert (shown.namespace, shown.name, shown.description) == (NS, "sales.public.orders", "Orders placed online")
    assert [f.name for f in shown.fields] == ["id", "email"]
    assert dana.dataset_lookup(NS, "sales.public.orders").id == str(orders.pk)

    # Lists follow the server's cursor pages: 8 datasets in pages of 3.
    names = [d.name for d in dana.datasets(namespace=NS, page_size=3)]
    assert len(names) == 8 and "sales.public.orders" in names

    assert {"pii.email", "finance"} <= {t.key for t in dana.tags(page_size=1)}
    tagged = stella.tag_add(str(orders.pk), "pii.email", field="email")
    assert [f.tags for f in tagged.fields if f.name == "email"] == [["pii.email"]]
    stella.tag_add(str(orders.pk), "finance")
    direct = dana.dataset_tags(str(orders.pk)).direct
    assert {(t.tag, t.field) for t in direct} == {("finance", None), ("pii.email", "email")}
    assert dana.dataset(str(orders.pk)).effective_classification == "C3"  # pii.email implies C3
    stella.tag_remove(str(orders.pk), "pii.email", field="email")
    assert [(t.tag, t.field) for t in dana.dataset_tags(str(orders.pk)).direct] == [("finance", None)]

    with pytest.raises(PermissionDeniedError) as denied:
        dana.tag_add(str(orders.pk), "finance")
    assert denied.value.status == 403


def test_errors_carry_the_status_the_field_and_the_servers_message(cast, make_dataset):
    dana = cast.client("dana")
    with pytest.raises(NotFoundError) as missing:
        dana.dataset_lookup(NS, "no.such.table")
    assert missing.value.status == 404 and missing.value.message  # the server's own words
    with pytest.raises(ValidationError) as bad:
        dana.access_request([("x://y", "z")], purpose="analytics", justification="j", duration="soon")
    assert bad.value.status == 400 and bad.value.field is not None
    assert any(e.field == "duration" for e in bad.value.errors)
    with pytest.raises(AuthenticationError) as unauthenticated:
        StewardClient(cast.url, "stw_not-a-token").me()
    assert unauthenticated.value.status == 401
    with pytest.raises(StewardConnectionError):
        StewardClient("http://127.0.0.1:9", "stw_x", retries=0).me()


def test_lineage_single_and_batch_are_idempotent(cast):
    pipeline = cast.client("pipeline")
    event = complete("load-orders", ["raw.orders"], ["sales.orders"])
    first = pipeline.lineage_event(event)
    assert (first.status, first.kind) == ("applied", "run")
    assert pipeline.lineage_event(event).status == "duplicate"  # a retried event is stored once
    batch = [complete(f"job-{i}", ["raw.orders"], [f"mart.t{i}"]) for i in range(3)]
    assert [r.status for r in pipeline.lineage_batch(batch)] == ["applied"] * 3
    assert [r.status for r in pipeline.lineage_batch(batch)] == ["duplicate"] * 3
    assert Job.objects.filter(name__startswith="job-").count() == 3

    with pytest.raises(PermissionDeniedError):  # a data scientist is no lineage producer
        cast.client("dana").lineage_event(complete("x", [], ["y"]))


def test_push_stops_at_a_bad_line_and_resumes_after_what_was_acknowledged(cast, tmp_path):
    pipeline = cast.client("pipeline")
    events = [complete(f"push-{i}", ["raw.orders"], [f"mart.p{i}"]) for i in range(12)]
    broken = dict(events[7])
    del broken["eventTime"]
    path = write_events(tmp_path / "events.jsonl", [*events[:7], broken, *events[8:]])

    with pytest.raises(PushError) as stopped:
        push_jsonl(pipeline, path, batch_size=3)
    assert stopped.value.line == 8 and "eventTime" in str(stopped.value)  # line 8 is the second of batch 3
    state = json.loads((tmp_path / "events.jsonl.steward-push.json").read_text())
    assert state["lines"] == 6  # two batches acknowledged
    assert Job.objects.filter(name__startswith="push-").count() == 6

    write_events(path, events)  # the line fixed: the rest is sent, the first six are not
    done = push_jsonl(pipeline, path, batch_size=3)
    assert (done.resumed_at, done.sent, done.applied, done.duplicate) == (6, 6, 6, 0)
    assert Job.objects.filter(name__startswith="push-").count() == 12
    again = push_jsonl(pipeline, path, batch_size=3)
    assert (again.resumed_at, again.sent) == (12, 0)

    with path.open("a") as handle:  # an appended log: only the new lines go
        handle.write(json.dumps(complete("push-12", ["raw.orders"], ["mart.p12"])) + "\n\n")
    grown = push_jsonl(pipeline, path, batch_size=3)
    assert (grown.resumed_at, grown.sent, grown.applied) == (12, 1, 1)

    everything = push_jsonl(pipeline, path, batch_size=5, restart=True)  # replays are harmless
    assert (everything.sent, everything.applied, everything.duplicate) == (13, 0, 13)

    path.write_text(json.dumps(run_event("other", "START", outputs=[dataset("x.y")])) + "\n")
    changed = push_jsonl(pipeline, path)  # not the file the state describes: pushed from the start
    assert changed.restarted and (changed.resumed_at, changed.applied) == (0, 1)


def test_access_request_approval_grant_and_withdrawal(cast, make_dataset):
    orders = make_dataset("sales.public.orders", classification="C2")  # no owner: a data steward approves
    make_dataset("sales.public.refunds", classification="C2")
    dana, stella = cast.client("dana"), cast.client("stella")

    request = dana.access_request([str(orders.pk)], purpose="analytics", justification="Churn study Q3", duration="P2D")
    assert request.state == "pending" and [d.name for d in request.datasets] == ["sales.public.orders"]
    assert [r.id for r in stella.access_requests(awaiting_me=True)] == [request.id]
    approved = stella.access_request_approve(request.id, comment="fine for Q3")
    assert approved.state == "approved" and approved.approvals[0].approver == "stella"
    [grant] = list(dana.grants())
    assert (grant.dataset.name, grant.state, grant.request) == ("sales.public.orders", "active", request.id)
    assert grant.id in dana.access_request_get(request.id).grants

    other = dana.access_request(
        [(NS, "sales.public.refunds")], purpose="analytics", justification="also refunds", duration="P1D"
    )
    withdrawn = dana.access_request_withdraw(other.id, reason="not needed")
    assert withdrawn.state == "withdrawn"
    assert {r.state for r in dana.access_requests()} == {"approved", "withdrawn"}
    assert [r.id for r in dana.access_requests(state="withdrawn")] == [other.id]


class FlakyGateway:
    """A real HTTP gateway in front of the live server that fails the way proxies do: for the first
    ``lost`` lineage batches it forwards the request and then answers 502 (the server stored it, the answer was
    lost); for the first ``refused`` ones it answers 503 without forwarding."""

    def __init__(self, upstream: str, *, lost: int = 0, refused: int = 0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        gateway = self
        self.lost, self.refused, self.seen = lost, refused, 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                gateway.seen += 1
                if gateway.refused:
                    gateway.refused -= 1
                    return self._answer(503, b'{"status": 503, "code": "unavailable", "detail": "busy", "errors": []}')
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                upstream_answer = requests.post(upstream + self.path, data=body, headers=headers, timeout=30)
                if gateway.lost:
                    gateway.lost -= 1
                    return self._answer(502, b"<html>Bad Gateway</html>")
                return self._answer(upstream_answer.status_code, upstream_answer.content)

            def _answer(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_lineage_is_retried_through_failures_and_stored_once(cast):
    events = [complete(f"flaky-{i}", ["raw.orders"], [f"mart.f{i}"]) for i in range(4)]
    gateway = FlakyGateway(cast.url, lost=1, refused=2)
    try:
        client = StewardClient(gateway.url, cast.tokens["pipeline"], retries=4, backoff=0.01)
        # Refused twice, then stored with its answer lost, then sent again: the server says it has them.
        assert [r.status for r in client.lineage_batch(events)] == ["duplicate"] * 4
        assert gateway.seen == 4
        assert Job.objects.filter(name__startswith="flaky-").count() == 4
        gateway.refused = 5  # more failures than retries: the server's answer is raised
        with pytest.raises(ServerError) as failed:
            client.lineage_event(events[0])
        assert (failed.value.status, failed.value.message) == (503, "busy")
    finally:
        gateway.close()


def test_the_package_imports_neither_django_nor_steward():
    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import steward_client, steward_client.cli;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework', 'steward'));"
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_push_larger_than_the_server_takes_at_once_is_split(cast, tmp_path, settings):
    settings.STEWARD_LINEAGE_MAX_EVENT_BYTES = 1_000  # a batch may then be 16,000 bytes: about 25 of these events
    events = [complete(f"big-{i}", ["raw.orders"], [f"mart.b{i}"]) for i in range(100)]
    assert all(len(json.dumps(e)) < 1_000 for e in events)
    path = write_events(tmp_path / "events.jsonl", events)
    with pytest.raises(StewardError) as too_large:
        cast.client("pipeline").lineage_batch(events)
    assert too_large.value.status == 413
    done = push_jsonl(cast.client("pipeline"), path, batch_size=100)
    assert (done.sent, done.applied) == (100, 100) and done.batches >= 4
    assert Job.objects.filter(name__startswith="big-").count() == 100
