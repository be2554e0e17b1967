"""Ingestion and the lineage, tag and declassification API, over HTTP as producers and people use them.

The first tests drive the official ``openlineage-python`` client (its HTTP transport, a real API token)
against a live server; the rest use DRF's test client. Reads go through the API: the graph (edges, column
edges, jobs), the job (its runs), the dataset (its fields and versions), its tags and their explanations.
Requests run their after-commit work (propagation drains, eagerly on Celery in tests) as in production.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    dataset_version_dataset,
    nominal_time_run,
    schema_dataset,
)
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG
from rest_framework.test import APIClient

from accounts.services import token_create
from catalog.history import DATASET, DATASET_LEVEL
from catalog.services import dataset_classify
from ledger import history
from ledger.models import AuditEvent
from lineage.models import DatasetVersion, Edge, LineageEvent
from lineage.models import Run as RunRow
from steward.identity import Role
from tests.conftest import make_producer, make_user
from tests.lineage.conftest import ds
from tests.lineage.events import NS, at, complete, dataset, run_event

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/lineage"
BATCH = "/api/v1/lineage/batch"
GRAPH = "/api/v1/lineage/graph"


# --- helpers ----------------------------------------------------------------------------------------------


def body(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def problem_fields(response: Any) -> list[str | None]:
    assert response.status_code == 400, response.content
    return [e["field"] for e in response.json()["errors"]]


def just_before(minutes: float) -> str:
    """One microsecond before ``at(minutes)``."""
    moment = datetime.fromisoformat(at(minutes).replace("Z", "+00:00")) - timedelta(microseconds=1)
    return moment.isoformat()


def graph(client: APIClient, name: str, **params: Any) -> dict[str, Any]:
    return body(client.get(GRAPH, {"namespace": NS, "name": name, "depth": 3, **params}))


def links(g: dict[str, Any]) -> set[tuple[str, str, str]]:
    """The graph's lineage as (input dataset, job, output dataset) names."""
    names = {n["id"]: n.get("name", n["id"]) for n in g["nodes"]}
    inputs = {(e["source"], e["target"]) for e in g["edges"] if e["kind"] == "input"}
    outputs = {(e["source"], e["target"]) for e in g["edges"] if e["kind"] == "output"}
    return {(names[s], names[j], names[t]) for s, j in inputs for j2, t in outputs if j == j2}


def column_links(g: dict[str, Any]) -> set[tuple[str, str]]:
    """The graph's column lineage as ("dataset.field", "dataset.field")."""
    names = {n["id"]: n.get("name") for n in g["nodes"] if n["kind"] == "dataset"}
    columns = {n["id"]: f"{names[n['dataset']]}.{n['name']}" for n in g["nodes"] if n["kind"] == "column"}
    return {(columns[e["source"]], columns[e["target"]]) for e in g["edges"] if e["kind"] == "column"}


def job_id(g: dict[str, Any], name: str) -> str:
    return next(n["job_id"] for n in g["nodes"] if n["kind"] == "job" and n["name"] == name)


def lookup(client: APIClient, name: str, namespace: str = NS) -> Any:
    return client.get("/api/v1/datasets/lookup", {"namespace": namespace, "name": name})


@pytest.fixture
def api(data_steward, django_capture_on_commit_callbacks) -> Callable[..., APIClient]:
    """``api(user)``: a client logged in as ``user`` (the steward by default), or ``api(user, token=True)``
    sending one of the user's API tokens; its requests run their after-commit work, as in production."""

    class CommittingClient(APIClient):
        def generic(self, *args: Any, **kwargs: Any) -> Any:
            with django_capture_on_commit_callbacks(execute=True):
                return super().generic(*args, **kwargs)

    def make(user: User | None = None, *, token: bool = False, scopes: list[str] | None = None) -> APIClient:
        user = user or data_steward
        client = CommittingClient()
        if token:
            _, secret = token_create(actor=user, user=user, name="pipeline", scopes=scopes)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def airflow(db) -> User:
    """A scheduler's service account: a lineage producer allowed on the test namespaces (issue 17)."""
    return make_producer(make_user("svc-airflow"), NS, "etl")


@pytest.fixture
def pipeline_client(api, airflow) -> APIClient:
    """What a scheduler uses: its service account's token, scoped to lineage writes."""
    return api(airflow, token=True, scopes=["lineage:write"])


@pytest.fixture
def steward(api) -> APIClient:
    return api()


# --- the official openlineage-python client -------------------------------------------------------------


def openlineage_client(url: str, token: str | None, **config: Any) -> OpenLineageClient:
    return OpenLineageClient(
        transport=HttpTransport(
            HttpConfig(
                url=url,
                endpoint="api/v1/lineage",
                auth=ApiKeyTokenProvider({"apiKey": token}) if token else TokenProvider({}),
                **{"retry": {**DEFAULT_RETRY_CONFIG, "total": 0}, **config},  # by default fail at once, not back off
            )
        )
    )


def schema(*fields: tuple[str, str]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in fields]
    )


def column_lineage(**outputs: list[tuple[str, str]]) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            out: column_lineage_dataset.Fields(
                inputFields=[column_lineage_dataset.InputField(namespace=NS, name=n, field=f) for n, f in sources]
            )
            for out, sources in outputs.items()
        }
    )


def daily_totals_run(state: RunState, run_id: str, when: str) -> RunEvent:
    """A run of etl/daily_totals: orders(id, customer, amount) → order_totals(customer, total), version v42."""
    return RunEvent(
        eventType=state,
        eventTime=when,
        run=Run(
            runId=run_id,
            facets={"nominalTime": nominal_time_run.NominalTimeRunFacet(nominalStartTime="2026-01-01T00:00:00Z")},
        ),
        job=Job(namespace="etl", name="daily_totals"),
        producer="https://example.org/scheduler",
        inputs=[
            InputDataset(
                namespace=NS,
                name="orders",
                facets={"schema": schema(("id", "bigint"), ("customer", "varchar"), ("amount", "numeric"))},
            )
        ],
        outputs=[
            OutputDataset(
                namespace=NS,
                name="order_totals",
                facets={
                    "schema": schema(("customer", "varchar"), ("total", "numeric")),
                    "columnLineage": column_lineage(customer=[("orders", "customer")], total=[("orders", "amount")]),
                    "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v42"),
                },
            )
        ],
    )


@pytest.fixture
def token(airflow) -> str:
    return token_create(actor=airflow, user=airflow, name="scheduler", scopes=["lineage:write"])[1]


@pytest.mark.django_db(transaction=True)
def test_the_official_client_records_jobs_runs_datasets_edges_columns_and_versions(
    live_server, token, client_for, data_scientist
):
    run_id = str(uuid.uuid4())
    client = openlineage_client(live_server.url, token)
    client.emit(daily_totals_run(RunState.START, run_id, at(0)))
    client.emit(daily_totals_run(RunState.COMPLETE, run_id, at(10)))
    client.emit(
        DatasetEvent(
            eventTime=at(11),
            producer="https://example.org/catalog-sync",
            dataset=StaticDataset(namespace=NS, name="customers", facets={"schema": schema(("id", "bigint"))}),
        )
    )
    client.emit(
        JobEvent(
            eventTime=at(12),
            producer="https://example.org/catalog-sync",
            job=Job(namespace="etl", name="export_totals"),
            inputs=[InputDataset(namespace=NS, name="order_totals")],
            outputs=[OutputDataset(namespace="s3://exports", name="totals.csv")],
        )
    )

    reader = client_for(User.objects.get(username="dana"))
    g = graph(reader, "orders", direction="downstream", columns="true")
    assert links(g) == {("orders", "daily_totals", "order_totals"), ("order_totals", "export_totals", "totals.csv")}
    assert column_links(g) == {("orders.customer", "order_totals.customer"), ("orders.amount", "order_totals.total")}

    job = body(reader.get(f"/api/v1/lineage/jobs/{job_id(g, 'daily_totals')}"))
    assert (job["namespace"], job["name"]) == ("etl", "daily_totals")
    (run,) = job["runs"]
    assert run["id"] == run_id and run["state"] == "COMPLETE"
    assert (run["started_at"], run["ended_at"]) == (at(0), at(10))
    assert run["facets"]["nominalTime"]["nominalStartTime"] == "2026-01-01T00:00:00Z"

    orders = body(lookup(reader, "orders"))
    assert [(f["name"], f["type"]) for f in orders["fields"]] == [
        ("id", "bigint"),
        ("customer", "varchar"),
        ("amount", "numeric"),
    ]
    assert orders["platform"] == "postgres"
    totals = body(lookup(reader, "order_totals"))
    versions = body(reader.get(f"/api/v1/datasets/{totals['id']}/versions"))["results"]
    assert [(v["version"], v["run_id"], v["fields"]) for v in versions] == [("v42", run_id, ["customer", "total"])]
    assert [f["name"] for f in body(lookup(reader, "customers"))["fields"]] == ["id"]
    assert body(lookup(reader, "totals.csv", namespace="s3://exports"))["platform"] == "s3"


@pytest.mark.django_db(transaction=True)
def test_the_official_client_may_send_gzip_compressed_events(live_server, token, client_for, data_scientist):
    client = openlineage_client(live_server.url, token, compression=HttpCompression.GZIP)
    run_id = str(uuid.uuid4())
    client.emit(daily_totals_run(RunState.COMPLETE, run_id, at(10)))
    g = graph(client_for(data_scientist), "orders", direction="downstream")
    assert links(g) == {("orders", "daily_totals", "order_totals")}


@pytest.mark.django_db(transaction=True)
def test_the_official_client_without_a_token_is_refused_and_nothing_is_recorded(live_server, client_for, data_steward):
    client = openlineage_client(live_server.url, None)
    with pytest.raises(requests.HTTPError) as refused:
        client.emit(daily_totals_run(RunState.COMPLETE, str(uuid.uuid4()), at(10)))
    assert refused.value.response.status_code == 401
    assert lookup(client_for(data_steward), "orders").status_code == 404
    assert not LineageEvent.objects.exists() and not RunRow.objects.exists()


def test_a_wrong_token_or_no_credentials_is_a_401(steward):
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer stw_deadbeef_not-a-token")
    assert wrong.post(INGEST, complete("load", ["raw"], ["clean"]), format="json").status_code == 401
    assert APIClient().post(INGEST, complete("load", ["raw"], ["clean"]), format="json").status_code == 401
    assert lookup(steward, "raw").status_code == 404


# --- idempotency and order ---------------------------------------------------------------------------------


def test_the_same_event_twice_is_reported_as_a_duplicate_and_changes_nothing(pipeline_client, steward):
    event = complete("load", ["raw"], ["clean"], when=at(1))
    first = body(pipeline_client.post(INGEST, event, format="json"), 201)
    assert first["status"] == "applied" and first["kind"] == "run"
    counts = (Edge.objects.count(), RunRow.objects.count(), DatasetVersion.objects.count())
    before = graph(steward, "raw")

    again = body(pipeline_client.post(INGEST, event, format="json"), 200)

    assert again == {**first, "status": "duplicate"}
    assert (Edge.objects.count(), RunRow.objects.count(), DatasetVersion.objects.count()) == counts
    assert graph(steward, "raw") == before
    clean = body(lookup(steward, "clean"))
    assert len(body(steward.get(f"/api/v1/datasets/{clean['id']}/versions"))["results"]) == 1


def start_and_complete(run_id: str) -> tuple[dict, dict]:
    """A Spark-like run: START names the input (with its schema), COMPLETE names the output."""
    start = run_event("load", "START", inputs=[dataset("raw", fields=["id", "email"])], when=at(0), run_id=run_id)
    done = run_event("load", "COMPLETE", outputs=[dataset("clean", version="7")], when=at(3), run_id=run_id)
    return start, done


@pytest.mark.parametrize("order", ["start-first", "complete-first"])
def test_a_run_ends_the_same_whatever_order_its_events_arrive_in(order, pipeline_client, steward):
    run_id = str(uuid.uuid4())
    start, done = start_and_complete(run_id)
    for event in (start, done) if order == "start-first" else (done, start):
        body(pipeline_client.post(INGEST, event, format="json"), 201)

    g = graph(steward, "raw")
    assert links(g) == {("raw", "load", "clean")}
    (run,) = body(steward.get(f"/api/v1/lineage/jobs/{job_id(g, 'load')}"))["runs"]
    assert (run["state"], run["started_at"], run["ended_at"]) == ("COMPLETE", at(0), at(3))
    # The edge starts when the run completed.
    assert links(graph(steward, "raw", at=at(3))) == {("raw", "load", "clean")}
    assert links(graph(steward, "raw", at=just_before(3))) == set()
    assert [f["name"] for f in body(lookup(steward, "raw"))["fields"]] == ["id", "email"]
    clean = body(lookup(steward, "clean"))
    versions = body(steward.get(f"/api/v1/datasets/{clean['id']}/versions"))["results"]
    assert [(v["version"], v["run_id"]) for v in versions] == [("7", run_id)]


def two_runs_of_load() -> tuple[dict, dict]:
    """load reads raw and lookup at minute 1, then only raw at minute 5."""
    return complete("load", ["raw", "lookup"], ["clean"], when=at(1)), complete("load", ["raw"], ["clean"], when=at(5))


def test_a_later_run_without_an_input_ends_that_edge_at_its_event_time(pipeline_client, steward):
    first, second = two_runs_of_load()
    body(pipeline_client.post(INGEST, first, format="json"), 201)
    assert links(graph(steward, "clean", direction="upstream")) == {
        ("raw", "load", "clean"),
        ("lookup", "load", "clean"),
    }
    body(pipeline_client.post(INGEST, second, format="json"), 201)

    assert links(graph(steward, "clean", direction="upstream")) == {("raw", "load", "clean")}
    still_read_just_before = links(graph(steward, "clean", direction="upstream", at=just_before(5)))
    assert ("lookup", "load", "clean") in still_read_just_before
    assert links(graph(steward, "clean", direction="upstream", at=at(5))) == {("raw", "load", "clean")}


def test_runs_completing_out_of_order_give_the_same_edge_history(pipeline_client, steward):
    first, second = two_runs_of_load()
    body(pipeline_client.post(INGEST, second, format="json"), 201)
    body(pipeline_client.post(INGEST, first, format="json"), 201)

    assert links(graph(steward, "clean", direction="upstream")) == {("raw", "load", "clean")}
    at_minute_3 = links(graph(steward, "clean", direction="upstream", at=at(3)))
    assert at_minute_3 == {("raw", "load", "clean"), ("lookup", "load", "clean")}


def test_deleting_a_job_ends_all_its_edges_now(pipeline_client, steward):
    body(pipeline_client.post(INGEST, complete("load", ["raw", "lookup"], ["clean"], when=at(1)), format="json"), 201)
    load = job_id(graph(steward, "clean"), "load")

    ended = body(steward.delete(f"/api/v1/lineage/jobs/{load}"))

    assert ended["edges_ended_at"] is not None
    assert links(graph(steward, "clean", direction="upstream")) == set()
    history = graph(steward, "clean", direction="upstream", at=at(2))
    assert links(history) == {("raw", "load", "clean"), ("lookup", "load", "clean")}


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("data_scientist", 403),
        ("data_owner", 403),
        ("privacy_officer", 403),
        ("data_steward", 200),
        ("admin_user", 200),
    ],
)
def test_only_stewards_and_admins_may_end_a_jobs_lineage(role, status, request, pipeline_client, api, steward):
    body(pipeline_client.post(INGEST, complete("load", ["raw"], ["clean"], when=at(1)), format="json"), 201)
    load = job_id(graph(steward, "clean"), "load")
    response = api(request.getfixturevalue(role)).delete(f"/api/v1/lineage/jobs/{load}")
    assert response.status_code == status
    still_there = links(graph(steward, "clean", direction="upstream")) == {("raw", "load", "clean")}
    assert still_there == (status == 403)


# --- bad input ---------------------------------------------------------------------------------------------


def without_run_id(event: dict) -> dict:
    del event["run"]["runId"]
    return event


@pytest.mark.parametrize(
    ("spoil", "field", "code"),
    [
        (without_run_id, "run.runId", "required"),
        (lambda e: {**e, "run": {"runId": "run-1"}}, "run.runId", "invalid_uuid"),
        (lambda e: {**e, "eventTime": "yesterday at noon"}, "eventTime", "invalid_datetime"),
        (lambda e: {**e, "eventTime": "2026-01-01T12:00:00"}, "eventTime", "naive_datetime"),
        (lambda e: {**e, "eventType": "FINISHED"}, "eventType", "invalid_choice"),
        (lambda e: {**e, "job": {"namespace": "etl"}}, "job.name", "required"),
    ],
    ids=["no-runId", "runId-not-uuid", "bad-eventTime", "naive-eventTime", "unknown-eventType", "no-job-name"],
)
def test_an_invalid_event_is_a_400_naming_the_field_and_nothing_is_applied(
    spoil, field, code, pipeline_client, steward
):
    response = pipeline_client.post(INGEST, spoil(complete("load", ["raw"], ["clean"])), format="json")
    assert problem_fields(response) == [field]
    assert response.json()["errors"][0]["code"] == code
    assert lookup(steward, "raw").status_code == 404 and not LineageEvent.objects.exists()


def test_a_body_that_is_not_json_is_a_400(pipeline_client):
    response = pipeline_client.post(INGEST, '{"eventType": "START", ', content_type="application/json")
    assert problem_fields(response) == ["body"]
    assert response.json()["code"] == "parse_error"


def test_an_event_over_the_size_limit_is_a_413_and_nothing_is_applied(pipeline_client, steward, settings):
    settings.STEWARD_LINEAGE_MAX_EVENT_BYTES = 2_000
    event = complete("load", ["raw"], ["clean"])
    event["job"]["facets"] = {"documentation": {"description": "x" * 2_000}}
    response = pipeline_client.post(INGEST, event, format="json")
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert lookup(steward, "raw").status_code == 404
    del event["job"]["facets"]["documentation"]
    assert pipeline_client.post(INGEST, event, format="json").status_code == 201


def test_a_gzip_body_that_inflates_past_the_limit_is_a_413(pipeline_client, settings):
    settings.STEWARD_LINEAGE_MAX_EVENT_BYTES = 2_000
    event = complete("load", ["raw"], ["clean"])
    event["job"]["facets"] = {"documentation": {"description": " " * 100_000}}
    packed = gzip.compress(json.dumps(event).encode())
    assert len(packed) < 2_000
    response = pipeline_client.post(INGEST, packed, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_a_graph_deeper_than_the_limit_is_a_400_naming_depth(pipeline_client, steward, settings):
    settings.STEWARD_LINEAGE_MAX_DEPTH = 4
    body(pipeline_client.post(INGEST, complete("load", ["raw"], ["clean"]), format="json"), 201)
    assert graph(steward, "raw", depth=4)["depth"] == 4
    response = steward.get(GRAPH, {"namespace": NS, "name": "raw", "depth": 5})
    assert problem_fields(response) == ["depth"]


# --- the batch endpoint ------------------------------------------------------------------------------------


def test_a_batch_applies_every_event_and_reports_each_one(pipeline_client, steward):
    run_id = str(uuid.uuid4())
    events = [
        run_event("load", "START", inputs=[dataset("raw")], when=at(0), run_id=run_id),
        run_event("load", "COMPLETE", outputs=[dataset("clean")], when=at(1), run_id=run_id),
        complete("report", ["clean"], ["summary"], when=at(2)),
        {"eventTime": at(3), "dataset": dataset("lookup", fields=["code"]), "producer": "x", "schemaURL": "x"},
    ]
    results = body(pipeline_client.post(BATCH, {"events": [*events, events[2]]}, format="json"))["results"]

    assert [(r["index"], r["status"], r["kind"]) for r in results] == [
        (0, "applied", "run"),
        (1, "applied", "run"),
        (2, "applied", "run"),
        (3, "applied", "dataset"),
        (4, "duplicate", "run"),  # the same event again in the batch
    ]
    assert results[0]["run_id"] == results[1]["run_id"] == run_id
    assert links(graph(steward, "raw", direction="downstream")) == {
        ("raw", "load", "clean"),
        ("clean", "report", "summary"),
    }
    assert [f["name"] for f in body(lookup(steward, "lookup"))["fields"]] == ["code"]


def test_datasets_created_and_changed_by_ingestion_have_exact_history(pipeline_client, steward):
    """New datasets' first history states are written from what ingestion inserted (not read back): they must
    equal what the catalog reads, for datasets with a schema, without one, and named only by column lineage."""
    events = [
        run_event(
            "load",
            "COMPLETE",
            inputs=[dataset("src", fields=["id", "email"])],
            outputs=[dataset("dst", fields=["uid", "mail"], columns={"mail": [("src", "email"), ("side", "x")]})],
            when=at(1),
        ),
        {"eventTime": at(2), "dataset": dataset("bare"), "producer": "x", "schemaURL": "x"},
    ]
    body(pipeline_client.post(BATCH, {"events": events}, format="json"))
    # Then a known dataset gains a field (captured from the tables, as before).
    body(pipeline_client.post(BATCH, {"events": [complete("more", ["src"], ["dst2"], when=at(3))]}, format="json"))
    body(
        pipeline_client.post(
            INGEST,
            {"eventTime": at(4), "dataset": dataset("src", fields=["id", "email", "phone"]), "producer": "x"},
            format="json",
        ),
        201,
    )

    assert history.drift(DATASET) == [] and history.drift(DATASET_LEVEL) == []
    src = body(lookup(steward, "src"))
    state = history.as_of(DATASET, src["id"], datetime.now(UTC))
    assert [f["name"] for f in state["fields"]] == ["id", "email", "phone"]
    side = body(lookup(steward, "side"))
    assert [f["name"] for f in history.as_of(DATASET, side["id"], datetime.now(UTC))["fields"]] == ["x"]


def test_one_invalid_event_rejects_the_whole_batch(pipeline_client, steward):
    good = complete("load", ["raw"], ["clean"], when=at(1))
    bad = {**complete("report", ["clean"], ["summary"]), "eventTime": "soon"}
    response = pipeline_client.post(BATCH, {"events": [good, bad, complete("x", ["a"], ["b"])]}, format="json")
    assert problem_fields(response) == ["events[1].eventTime"]
    assert lookup(steward, "raw").status_code == 404 and lookup(steward, "a").status_code == 404
    assert not LineageEvent.objects.exists()


def test_a_batch_failing_while_applied_rolls_back_every_event(pipeline_client, steward):
    """A run id already used by another job is only found while writing: the batch is undone all the same."""
    run_id = str(uuid.uuid4())
    events = [
        complete("load", ["raw"], ["clean"], when=at(1), run_id=run_id),
        complete("report", ["clean"], ["summary"], when=at(2), run_id=run_id),
    ]
    response = pipeline_client.post(BATCH, {"events": events}, format="json")
    assert problem_fields(response) == ["events[1].run.runId"]
    assert "belongs to job" in response.json()["errors"][0]["message"]
    assert lookup(steward, "raw").status_code == 404
    assert not RunRow.objects.exists() and not LineageEvent.objects.exists()


def test_a_batch_must_be_a_list_of_at_most_1000_events(pipeline_client):
    assert problem_fields(pipeline_client.post(BATCH, {"events": {"a": 1}}, format="json")) == ["events"]
    many = [complete(f"job{i}", ["raw"], ["clean"]) for i in range(1_001)]
    assert problem_fields(pipeline_client.post(BATCH, {"events": many}, format="json")) == ["events"]


# --- tags, explanations and declassifications --------------------------------------------------------------


@pytest.fixture
def contacts(tags, pipeline_client, steward) -> dict[str, str]:
    """users(id, email) ─load (column lineage)→ contacts(uid, mail) ─report→ summary; users.email tagged email.

    Returns the dataset ids by name."""
    events = [
        run_event(
            "load",
            "COMPLETE",
            inputs=[dataset("users", fields=["id", "email"])],
            outputs=[
                dataset(
                    "contacts", fields=["uid", "mail"], columns={"uid": [("users", "id")], "mail": [("users", "email")]}
                )
            ],
            when=at(1),
        ),
        complete("report", ["contacts"], ["summary"], when=at(2)),
    ]
    body(pipeline_client.post(BATCH, {"events": events}, format="json"))
    ids = {name: str(ds(name).pk) for name in ("users", "contacts", "summary")}
    body(steward.post(f"/api/v1/datasets/{ids['users']}/tags", {"key": "email", "field": "email"}, format="json"), 201)
    return ids


def test_dataset_tags_list_direct_and_propagated_tags_each_with_its_source(contacts, steward):
    users = body(steward.get(f"/api/v1/datasets/{contacts['users']}/tags"))
    assert [(t["tag"], t["field"]) for t in users["direct"]] == [("email", "email")]
    assert users["propagated"] == []

    (via_columns,) = body(steward.get(f"/api/v1/datasets/{contacts['contacts']}/tags"))["propagated"]
    assert (via_columns["tag"], via_columns["field"]) == ("email", "mail")
    assert (via_columns["source"]["name"], via_columns["source"]["field"]) == ("users", "email")
    assert via_columns["via"]["job"]["name"] == "load"

    summary = body(steward.get(f"/api/v1/datasets/{contacts['summary']}/tags"))
    (at_dataset_level,) = summary["propagated"]
    assert (at_dataset_level["tag"], at_dataset_level["field"]) == ("email", None)
    assert (at_dataset_level["source"]["name"], at_dataset_level["source"]["field"]) == ("users", "email")
    assert (at_dataset_level["via"]["name"], at_dataset_level["via"]["job"]["name"]) == ("contacts", "report")
    assert summary["effective_classification"] == "C3"


def test_explain_returns_the_path_from_the_direct_assignment(contacts, steward):
    why = body(steward.get(f"/api/v1/datasets/{contacts['summary']}/explain", {"tag": "email"}))
    assert why["direct"] is False
    assert (why["source"]["name"], why["source"]["field"]) == ("users", "email")
    hops = [
        (h["from"]["name"], h["from"]["field"], h["job"]["name"], h["to"]["name"], h["to"]["field"])
        for h in why["path"]
    ]
    assert hops == [("users", "email", "load", "contacts", "mail"), ("contacts", "mail", "report", "summary", None)]


def test_explain_says_direct_for_a_direct_tag_and_404_for_a_tag_not_carried(contacts, steward):
    direct = body(steward.get(f"/api/v1/datasets/{contacts['users']}/explain", {"tag": "email", "field": "email"}))
    assert direct["direct"] is True and direct["path"] == []
    assert steward.get(f"/api/v1/datasets/{contacts['summary']}/explain", {"tag": "secret"}).status_code == 404
    assert problem_fields(steward.get(f"/api/v1/datasets/{contacts['summary']}/explain")) == ["tag"]


def test_a_columns_tags_and_explanation(contacts, steward):
    base = f"/api/v1/datasets/{contacts['contacts']}/fields"
    mail = body(steward.get(f"{base}/mail/tags"))
    assert mail["field"] == "mail" and mail["direct"] == []
    assert [(t["tag"], t["source"]["name"], t["source"]["field"]) for t in mail["propagated"]] == [
        ("email", "users", "email")
    ]
    assert body(steward.get(f"{base}/uid/tags"))["propagated"] == []
    assert steward.get(f"{base}/nope/tags").status_code == 404

    why = body(steward.get(f"{base}/mail/explain", {"tag": "email"}))
    assert [(h["from"]["field"], h["job"]["name"], h["to"]["field"]) for h in why["path"]] == [
        ("email", "load", "mail")
    ]
    assert steward.get(f"{base}/uid/explain", {"tag": "email"}).status_code == 404


@pytest.fixture
def second_steward(db) -> User:
    return make_user("sam", Role.DATA_STEWARD)


def propagated(client: APIClient, dataset_id: str) -> set[str]:
    return {t["tag"] for t in body(client.get(f"/api/v1/datasets/{dataset_id}/tags"))["propagated"]}


def request_block(client: APIClient, job: str, tags: list[str]) -> Any:
    return client.post(
        "/api/v1/declassifications",
        {"job": job, "tags": tags, "justification": "report keeps only counts per country"},
        format="json",
    )


def test_an_approved_declassification_blocks_the_tag_downstream_until_revoked(contacts, steward, api, second_steward):
    report = job_id(graph(steward, "summary"), "report")
    asked = body(request_block(steward, report, ["email"]), 201)
    assert (asked["state"], asked["requested_by"], asked["tags"]) == ("pending", "stella", ["email"])
    assert propagated(steward, contacts["summary"]) == {"email"}  # pending: no effect yet

    other = api(second_steward)
    approved = body(other.post(f"/api/v1/declassifications/{asked['id']}/approve", {"reason": "aggregated"}))
    assert (approved["state"], approved["decided_by"]) == ("approved", "sam")
    assert propagated(steward, contacts["summary"]) == set()
    assert propagated(steward, contacts["contacts"]) == {"email"}  # other jobs still carry it
    assert body(steward.get(f"/api/v1/datasets/{contacts['summary']}/tags"))["effective_classification"] == "C1"

    revoked = body(other.post(f"/api/v1/declassifications/{asked['id']}/revoke", {"reason": "report now lists rows"}))
    assert revoked["state"] == "revoked"
    assert propagated(steward, contacts["summary"]) == {"email"}


def test_a_steward_may_not_approve_their_own_declassification(contacts, steward):
    asked = body(request_block(steward, job_id(graph(steward, "summary"), "report"), ["email"]), 201)
    refused = steward.post(f"/api/v1/declassifications/{asked['id']}/approve", {})
    assert refused.status_code == 403
    assert "your own" in refused.json()["detail"]
    assert propagated(steward, contacts["summary"]) == {"email"}


def test_who_may_request_and_decide_declassifications(
    contacts, steward, api, data_scientist, data_owner, privacy_officer, admin_user, second_steward
):
    report = job_id(graph(steward, "summary"), "report")
    assert request_block(api(data_scientist), report, ["email"]).status_code == 403
    for requester in (data_owner, privacy_officer, admin_user):
        assert request_block(api(requester), report, ["email"]).status_code == 201
    pending = body(steward.get("/api/v1/declassifications", {"state": "pending"}))["results"]
    assert len(pending) == 3
    first = pending[0]["id"]
    for not_a_steward in (data_scientist, data_owner, privacy_officer, admin_user):
        assert api(not_a_steward).post(f"/api/v1/declassifications/{first}/approve", {}).status_code == 403
    assert body(api(second_steward).post(f"/api/v1/declassifications/{first}/reject", {"reason": "no"}))["state"] == (
        "rejected"
    )
    assert api(second_steward).post(f"/api/v1/declassifications/{first}/approve", {}).status_code == 409


def test_a_requester_may_withdraw_a_pending_request_and_others_may_not(contacts, steward, api, privacy_officer):
    report = job_id(graph(steward, "summary"), "report")
    asked = body(request_block(api(privacy_officer), report, ["email"]), 201)
    assert steward.post(f"/api/v1/declassifications/{asked['id']}/revoke", {"reason": "x"}).status_code == 409
    withdrawn = body(api(privacy_officer).post(f"/api/v1/declassifications/{asked['id']}/revoke", {}))
    assert withdrawn["state"] == "withdrawn"


def test_a_declassification_names_known_tags_and_a_job(contacts, steward):
    report = job_id(graph(steward, "summary"), "report")
    assert problem_fields(request_block(steward, report, ["no-such-tag"])) == ["tags"]
    assert problem_fields(request_block(steward, str(uuid.uuid4()), ["email"])) == ["job"]
    assert problem_fields(request_block(steward, report, [])) == ["tags"]


def test_each_declassification_step_is_audited(contacts, steward, api, second_steward):
    asked = body(request_block(steward, job_id(graph(steward, "summary"), "report"), ["email"]), 201)
    api(second_steward).post(f"/api/v1/declassifications/{asked['id']}/approve", {"reason": "aggregated"})
    api(second_steward).post(f"/api/v1/declassifications/{asked['id']}/revoke", {"reason": "report changed"})

    trail = AuditEvent.objects.filter(target_id=asked["id"]).order_by("seq")
    assert [(e.action, e.actor_name, e.reason) for e in trail] == [
        ("lineage.declassification.request", "stella", ""),
        ("lineage.declassification.approve", "sam", "aggregated"),
        ("lineage.declassification.revoked", "sam", "report changed"),
    ]
    assert trail[0].after["tags"] == ["email"]


def test_declassifications_on_jobs_touching_hidden_datasets_are_not_listed(
    contacts, pipeline_client, steward, api, data_scientist, data_owner
):
    body(pipeline_client.post(INGEST, complete("mask", ["vault"], ["masked"], when=at(3)), format="json"), 201)
    dataset_classify(actor=User.objects.get(username="stella"), dataset=ds("vault"), level="C4")
    mask = job_id(graph(steward, "masked", direction="upstream"), "mask")
    report = job_id(graph(steward, "summary"), "report")
    on_hidden = body(request_block(steward, mask, ["email"]), 201)
    on_visible = body(request_block(steward, report, ["email"]), 201)
    owners_own = body(request_block(api(data_owner), mask, ["email"]), 201)

    def listed(client: APIClient) -> set[str]:
        return {d["id"] for d in body(client.get("/api/v1/declassifications"))["results"]}

    assert listed(steward) == {on_hidden["id"], on_visible["id"], owners_own["id"]}
    assert listed(api(data_scientist)) == {on_visible["id"]}
    assert listed(api(data_owner)) == {on_visible["id"], owners_own["id"]}  # their own request stays visible
    assert api(data_scientist).get(f"/api/v1/lineage/jobs/{mask}").status_code == 404
    assert body(api(data_scientist).get(f"/api/v1/lineage/jobs/{report}"))["name"] == "report"
