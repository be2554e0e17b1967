"""Facets that carry meaning (issue 17): ownership, documentation, tags, symlinks and dataSource set a dataset's
owners, description, tags, aliases and platform, sent in the exact OpenLineage wire format (built with the
openlineage-python client's own classes). People win: what a person set stays, the producer's value is shown
beside it."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    datasource_dataset,
    documentation_dataset,
    ownership_dataset,
    schema_dataset,
    symlinks_dataset,
    tags_dataset,
)
from openlineage.client.serde import Serde
from rest_framework.test import APIClient

from accounts.services import token_create
from catalog import services as catalog
from catalog.history import DATASET, DATASET_LEVEL
from catalog.models import Dataset, TagAssignment
from catalog.validation import DatasetSpec
from ledger import history
from ledger.models import AuditEvent
from lineage.models import ColumnEdge
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS, PRODUCER

pytestmark = pytest.mark.django_db

GLUE = "arn:aws:glue:us-east-1:123456789012"


@pytest.fixture
def api(django_capture_on_commit_callbacks) -> Callable[..., APIClient]:
    class CommittingClient(APIClient):
        def generic(self, *args: Any, **kwargs: Any) -> Any:
            with django_capture_on_commit_callbacks(execute=True):
                return super().generic(*args, **kwargs)

    def make(user: User, *, token: bool = False) -> APIClient:
        client = CommittingClient()
        if token:
            _, secret = token_create(actor=user, user=user, name="t", scopes=["lineage:write"])
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def spark(db) -> User:
    return make_producer(make_user("svc-spark"), NS, "etl")


@pytest.fixture
def vocabulary(admin_user) -> None:
    catalog.tag_create(actor=admin_user, key="email", implied_level="C3")
    catalog.tag_create(actor=admin_user, key="finance")


@pytest.fixture
def people(db) -> None:
    make_user("alice", groups=("sales-eng",))


def facets(
    *,
    description: str | None = "Orders, one row per order line.",
    owners: list[str] | None = None,
    tags: list[tuple[str, str | None]] | None = None,
    aliases: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "schema": schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(name="id", type="bigint"),
                schema_dataset.SchemaDatasetFacetFields(name="email", type="varchar"),
            ]
        ),
        "dataSource": datasource_dataset.DatasourceDatasetFacet(name="snowflake", uri="snowflake://acme.eu-west-1"),
    }
    if description is not None:
        out["documentation"] = documentation_dataset.DocumentationDatasetFacet(description=description)
    if owners is not None:
        out["ownership"] = ownership_dataset.OwnershipDatasetFacet(
            owners=[ownership_dataset.Owner(name=name, type="MAINTAINER") for name in owners]
        )
    if tags is not None:
        out["tags"] = tags_dataset.TagsDatasetFacet(
            tags=[tags_dataset.TagsDatasetFacetFields(key=k, value="true", source="SPARK", field=f) for k, f in tags]
        )
    if aliases is not None:
        out["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
            identifiers=[symlinks_dataset.Identifier(namespace=ns, name=n, type="TABLE") for ns, n in aliases]
        )
    return out


def event(output_facets: dict[str, Any], *, name: str = "sales.orders", input_facets: dict | None = None) -> dict:
    run = RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-01-01T12:00:00.000Z",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="etl", name="orders_build"),
        producer=PRODUCER,
        inputs=[InputDataset(namespace=GLUE, name="raw.orders", facets=input_facets or {})],
        outputs=[OutputDataset(namespace=NS, name=name, facets=output_facets)],
    )
    return Serde.to_dict(run)


def send(client: APIClient, body: dict, status: int = 201) -> Any:
    response = client.post("/api/v1/lineage", body, format="json")
    assert response.status_code == status, response.content
    return response.json()


def lookup(client: APIClient, namespace: str, name: str, status: int = 200) -> Any:
    response = client.get("/api/v1/datasets/lookup", {"namespace": namespace, "name": name})
    assert response.status_code == status, response.content
    return response.json()


def test_facets_set_description_owners_tags_aliases_and_platform(api, spark, vocabulary, people, data_steward):
    body = event(
        facets(
            owners=["user:alice", "team:sales-eng", "application:spark-app", "user:nobody"],
            tags=[("finance", None), ("email", "email"), ("made-up", None), ("email", "no_such_column")],
            aliases=[(GLUE, "sales.orders_glue"), ("hive://metastore:9083", "sales.orders")],
        )
    )
    assert body["outputs"][0]["facets"]["tags"]["tags"][1]["field"] == "email"  # the client's own wire format
    send(api(spark, token=True), copy.deepcopy(body))

    steward = api(data_steward)
    shown = lookup(steward, NS, "sales.orders")
    assert shown["description"] == "Orders, one row per order line."
    assert shown["platform"] == "snowflake"
    assert {(o["type"], o["name"]) for o in shown["owners"]} == {("user", "alice"), ("group", "sales-eng")}
    assert shown["tags"] == ["finance"]
    assert {f["name"]: f["tags"] for f in shown["fields"]} == {"id": [], "email": ["email"]}
    assert shown["effective_classification"] == "C3"  # the column tag's implied level
    producer = shown["producer"]
    assert producer["unresolved_owners"] == ["application:spark-app", "user:nobody"]
    assert producer["unknown_tags"] == ["made-up", "no_such_column:email"]
    assert producer["by"] == "svc-spark"
    assert not TagAssignment.objects.filter(tag__key="made-up").exists()

    # Each alias finds the dataset.
    assert lookup(steward, GLUE, "sales.orders_glue")["id"] == shown["id"]
    assert lookup(steward, "hive://metastore:9083", "sales.orders")["id"] == shown["id"]
    lookup(steward, GLUE, "sales.unknown", status=404)

    # Audited and historised like any dataset write, with no drift.
    audited = AuditEvent.objects.filter(action="catalog.dataset.update", target_id=shown["id"]).last()
    assert audited.after["description"] == "Orders, one row per order line."
    assert audited.actor_id == spark.pk
    state = history.as_of(DATASET, shown["id"], datetime.now(UTC))
    assert state["description"] == "Orders, one row per order line."
    assert state["producer"]["unresolved_owners"] == ["application:spark-app", "user:nobody"]
    assert history.drift(DATASET) == [] and history.drift(DATASET_LEVEL) == []

    # The same facts again (a new run) change nothing and write no audit event.
    before = AuditEvent.objects.filter(action="catalog.dataset.update").count()
    body["run"]["runId"] = str(uuid.uuid4())
    send(api(spark, token=True), body)
    assert AuditEvent.objects.filter(action="catalog.dataset.update").count() == before


def test_people_win_and_both_are_shown(api, spark, vocabulary, people, data_steward):
    client = api(spark, token=True)
    send(client, event(facets(owners=["user:alice"], tags=[("finance", None)])))
    ds = Dataset.objects.get(namespace=NS, name="sales.orders")
    # A person writes the description, names the owners and removes the producer's tag.
    catalog.dataset_update(
        actor=data_steward,
        dataset=ds,
        spec=DatasetSpec(namespace=NS, name="sales.orders", description="Curated: orders.", owners=["group:sales-eng"]),
    )
    catalog.dataset_tag_remove(actor=data_steward, dataset=ds, key="finance")

    send(client, event(facets(description="Generated by Spark.", owners=["user:alice"], tags=[("finance", None)])))
    shown = lookup(api(data_steward), NS, "sales.orders")
    assert shown["description"] == "Curated: orders."
    assert shown["producer"]["description"] == "Generated by Spark."
    assert [(o["type"], o["name"]) for o in shown["owners"]] == [("group", "sales-eng")]
    assert shown["producer"]["owners"] == ["user:alice"]
    assert shown["tags"] == []  # removed by a person: not added again
    assert shown["producer"]["tags"] == ["finance"]


def test_producer_value_follows_while_no_person_set_it(api, spark, data_steward):
    client = api(spark, token=True)
    send(client, event(facets(description="v1")))
    send(client, event(facets(description="v2")))
    assert lookup(api(data_steward), NS, "sales.orders")["description"] == "v2"


def test_only_a_producer_allowed_on_the_namespace_changes_these(api, spark, data_steward):
    send(api(spark, token=True), event(facets(description="Spark's words.")))
    mallory = make_producer(make_user("svc-mallory"), "other-etl")
    body = event(facets(description="Mallory's words.", aliases=[(NS, "sales.hijacked")]))
    body["job"]["namespace"] = "other-etl"
    body["outputs"][0]["facets"].pop("schema")
    refused = api(mallory, token=True).post("/api/v1/lineage", body, format="json")
    assert refused.status_code == 403, refused.content
    assert [e["field"] for e in refused.json()["errors"]] == ["outputs[0]"]
    assert Dataset.objects.get(namespace=NS, name="sales.orders").description == "Spark's words."

    # As an input, another namespace's facts are ignored silently (the event is accepted).
    body = event({}, name="mallory.report", input_facets={"documentation": {"description": "Mallory's words."}})
    body["job"]["namespace"] = "other-etl"
    body["inputs"][0]["namespace"] = NS
    body["inputs"][0]["name"] = "sales.orders"
    body["outputs"][0]["namespace"] = "mallory://db"
    send(api(mallory, token=True), body)
    assert Dataset.objects.get(namespace=NS, name="sales.orders").description == "Spark's words."


def test_malformed_meaningful_facet_names_the_field(api, spark):
    body = event({"ownership": {"owners": "alice"}})
    response = api(spark, token=True).post("/api/v1/lineage", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == "outputs[0].facets.ownership.owners"


def test_column_lineage_records_indirect_inputs_and_the_graph_shows_them(api, spark, data_steward):
    """A Spark job filters orders by ``status`` and joins on ``customer_id``: ``total`` comes from ``amount``
    (DIRECT), is affected by ``customer_id`` (INDIRECT: JOIN), and the whole output by ``status`` (the
    facet's dataset-level list, INDIRECT: FILTER)."""

    def source(field: str, kind: str, subtype: str) -> column_lineage_dataset.InputField:
        return column_lineage_dataset.InputField(
            namespace=NS,
            name="sales.orders",
            field=field,
            transformations=[column_lineage_dataset.Transformation(type=kind, subtype=subtype)],
        )

    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            "total": column_lineage_dataset.Fields(
                inputFields=[source("amount", "DIRECT", "AGGREGATION"), source("customer_id", "INDIRECT", "JOIN")]
            )
        },
        dataset=[source("status", "INDIRECT", "FILTER")],
    )
    body = Serde.to_dict(
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime="2026-01-01T12:00:00.000Z",
            run=Run(runId=str(uuid.uuid4())),
            job=Job(namespace="etl", name="revenue"),
            producer=PRODUCER,
            inputs=[InputDataset(namespace=NS, name="sales.orders")],
            outputs=[OutputDataset(namespace=NS, name="sales.revenue", facets={"columnLineage": lineage})],
        )
    )
    assert body["outputs"][0]["facets"]["columnLineage"]["dataset"][0]["field"] == "status"
    send(api(spark, token=True), body)

    kinds = {
        (e.source_field, e.target_field): e.transformation
        for e in ColumnEdge.objects.filter(valid_to__isnull=True, job__name="revenue")
    }
    assert kinds == {("amount", "total"): "DIRECT", ("customer_id", "total"): "INDIRECT", ("status", ""): "INDIRECT"}
    # The dataset-level input is no column of the output.
    assert "" not in set(Dataset.objects.get(name="sales.revenue").fields.values_list("name", flat=True))

    response = api(data_steward).get(
        "/api/v1/lineage/graph",
        {"namespace": NS, "name": "sales.orders", "direction": "downstream", "columns": "true"},
    )
    assert response.status_code == 200, response.content
    orders = Dataset.objects.get(name="sales.orders").pk
    revenue = Dataset.objects.get(name="sales.revenue").pk
    shown = {(e["source"], e["target"], e["transformation"]) for e in response.json()["edges"] if e["kind"] == "column"}
    assert shown == {
        (f"column:{orders}:amount", f"column:{revenue}:total", "DIRECT"),
        (f"column:{orders}:customer_id", f"column:{revenue}:total", "INDIRECT"),
        (f"column:{orders}:status", f"dataset:{revenue}", "INDIRECT"),
    }
