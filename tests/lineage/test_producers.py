"""Who may write lineage (issue 17): the lineage-producer right, scoped tokens, namespace ownership.

The three attacks a data scientist ran against the old code are here first; each one succeeded then (the
edges ended, the columns changed, the level rose) and each is refused now, with an audit event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from accounts.services import token_create
from catalog.models import Dataset, SchemaField
from ledger.models import AuditEvent
from lineage.models import Edge, LineageEvent, NamespaceProducer
from lineage.propagation import drain
from steward.errors import PermissionDenied
from tests.conftest import make_producer, make_user
from tests.lineage.events import NS, at, complete, dataset, run_event

pytestmark = pytest.mark.django_db

INGEST = "/api/v1/lineage"
BATCH = "/api/v1/lineage/batch"
NAMESPACES = "/api/v1/lineage/namespaces"
VAULT = "postgres://vault:5432"
REPORTS = "postgres://reports:5432"


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def refused_fields(response: Any) -> list[str | None]:
    assert response.status_code == 403, response.content
    return [e["field"] for e in response.json()["errors"]]


def lookup(client: APIClient, name: str, namespace: str = NS) -> Any:
    return client.get("/api/v1/datasets/lookup", {"namespace": namespace, "name": name})


def columns(namespace: str, name: str) -> list[str]:
    ds = Dataset.objects.get(namespace=namespace, name=name)
    return sorted(SchemaField.objects.filter(dataset=ds).values_list("name", flat=True))


def refusals(user: User) -> int:
    return AuditEvent.objects.filter(action="lineage.ingest.refused", actor_id=user.pk).count()


@pytest.fixture
def api(django_capture_on_commit_callbacks) -> Callable[..., APIClient]:
    """``api(user)`` logs in by session; ``api(user, token=True, scopes=[...])`` sends one of the user's tokens."""

    class CommittingClient(APIClient):
        def generic(self, *args: Any, **kwargs: Any) -> Any:
            with django_capture_on_commit_callbacks(execute=True):
                return super().generic(*args, **kwargs)

    def make(user: User | None, *, token: bool = False, scopes: list[str] | None = None) -> APIClient:
        client = CommittingClient()
        if user is None:
            return client
        if token:
            _, secret = token_create(actor=user, user=user, name="t", scopes=scopes)
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        else:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def airflow(db) -> User:
    """The platform's scheduler: a producer that owns the ``etl`` jobs and the warehouse namespace."""
    return make_producer(make_user("svc-airflow"), NS, "etl")


@pytest.fixture
def mallory(db) -> User:
    """Another team's producer: holds the right to produce lineage, owns nothing here."""
    return make_producer(make_user("svc-mallory"))


@pytest.fixture
def airflow_api(api, airflow) -> APIClient:
    return api(airflow, token=True, scopes=["lineage:write"])


@pytest.fixture
def secret_pipeline(airflow_api, tag, tags, data_scientist, api) -> None:
    """raw --etl/load--> derived; raw carries a C4 tag, so derived is C4 and hidden from dana."""
    ok(airflow_api.post(INGEST, complete("load", ["raw"], ["derived"], when=at(1)), format="json"), 201)
    tag("raw", "secret")
    drain()
    assert lookup(api(data_scientist), "derived").status_code == 404


@pytest.fixture
def vault(make_dataset, data_steward) -> Dataset:
    """A C4 dataset registered through the catalog (not lineage), one column; nobody below steward sees it."""
    return make_dataset("secrets", namespace=VAULT, classification="C4", fields=[{"name": "ssn", "type": "text"}])


@pytest.fixture
def public(make_dataset) -> Dataset:
    return make_dataset("summary", namespace=REPORTS)


# --- the three attacks ------------------------------------------------------------------------------------


def test_attack_1_an_empty_complete_of_someone_elses_job_is_refused(secret_pipeline, api, data_scientist, mallory):
    empty = run_event("load", "COMPLETE", when=at(2))
    # Dana, with her own personal token: she lacks the right to produce lineage at all.
    response = api(data_scientist, token=True).post(INGEST, empty, format="json")
    assert response.status_code == 403
    assert "lineage-producer" in response.json()["detail"]
    # Mallory, a producer of other jobs: the etl namespace is airflow's.
    assert refused_fields(api(mallory, token=True, scopes=["lineage:write"]).post(INGEST, empty, format="json")) == [
        "job.namespace"
    ]
    drain()
    assert Edge.objects.filter(valid_to__isnull=True).count() == 1
    assert lookup(api(data_scientist), "derived").status_code == 404  # still C4: no declassification
    assert refusals(data_scientist) == 1 and refusals(mallory) == 1


def test_attack_2_a_schema_facet_may_not_rewrite_a_hidden_dataset(vault, api, data_scientist, mallory):
    event = run_event("exfil", "COMPLETE", outputs=[dataset("secrets", namespace=VAULT, fields=["a", "b"])])
    event["job"]["namespace"] = "mallory-jobs"
    assert api(data_scientist, token=True).post(INGEST, event, format="json").status_code == 403
    assert refused_fields(api(mallory, token=True, scopes=["lineage:write"]).post(INGEST, event, format="json")) == [
        "outputs[0]"
    ]
    assert columns(VAULT, "secrets") == ["ssn"]
    assert not LineageEvent.objects.exists()
    assert refusals(mallory) == 1


def test_attack_3_an_invented_edge_into_someone_elses_dataset_is_refused(vault, public, api, data_scientist, mallory):
    event = run_event(
        "exfil",
        "COMPLETE",
        inputs=[dataset("secrets", namespace=VAULT)],
        outputs=[dataset("summary", namespace=REPORTS)],
    )
    event["job"]["namespace"] = "mallory-jobs"
    client = api(mallory, token=True, scopes=["lineage:write"])
    response = client.post(INGEST, event, format="json")
    assert refused_fields(response) == ["outputs[0]"]
    drain()
    assert not Edge.objects.exists()
    assert lookup(api(data_scientist), "summary", REPORTS).status_code == 200  # still C1, readable
    # The refusal reads the same for a name that does not exist: it says nothing about hidden names.
    other = json.loads(json.dumps(event).replace('"summary"', '"no-such-table"'))
    again = client.post(INGEST, other, format="json")
    assert again.status_code == 403 and again.json()["detail"] == response.json()["detail"]
    assert refusals(mallory) == 2


def test_reading_a_hidden_dataset_as_an_input_neither_changes_it_nor_reveals_it(vault, api, mallory):
    client = api(mallory, token=True, scopes=["lineage:write"])

    def read(name: str) -> Any:
        event = run_event(
            "reader",
            "COMPLETE",
            inputs=[dataset(name, namespace=VAULT, fields=["x"])],
            outputs=[dataset(f"copy-of-{name}", namespace="s3://mallory")],
        )
        event["job"]["namespace"] = "mallory-jobs"
        result = ok(client.post(INGEST, event, format="json"), 201)
        return {k: v for k, v in result.items() if k != "run_id"}

    assert read("secrets") == read("no-such-table")
    assert columns(VAULT, "secrets") == ["ssn"]  # the input's schema facet was not applied
    assert columns(VAULT, "no-such-table") == ["x"]  # a dataset it created itself does get it


def test_a_batch_is_refused_whole_naming_the_event_and_output(airflow_api, public, airflow):
    events = [complete("load", ["raw"], ["clean"], when=at(1)), complete("publish", ["clean"], ["x"], when=at(2))]
    events[1]["outputs"] = [dataset("summary", namespace=REPORTS)]
    assert refused_fields(airflow_api.post(BATCH, {"events": events}, format="json")) == ["events[1].outputs[0]"]
    assert not LineageEvent.objects.exists() and not Edge.objects.exists()
    assert refusals(airflow) == 1


# --- producers and their namespaces ------------------------------------------------------------------------


def test_the_first_producer_of_a_namespace_owns_it_and_an_admin_may_share_it(api, airflow, mallory, admin_user):
    lake = dataset("events", namespace="s3://lake", fields=["id"])
    spark = run_event("nightly", "COMPLETE", outputs=[lake], when=at(1))
    spark["job"]["namespace"] = "spark-prod"
    ok(api(airflow, token=True, scopes=["lineage:write"]).post(INGEST, spark, format="json"), 201)
    claims = set(NamespaceProducer.objects.filter(assigned_by__isnull=True).values_list("namespace", "producer"))
    assert {("spark-prod", airflow.pk), ("s3://lake", airflow.pk)} <= claims
    as_mallory = api(mallory, token=True, scopes=["lineage:write"])
    later = {**spark, "eventTime": at(2), "run": {"runId": "01890000-0000-7000-8000-000000000001", "facets": {}}}
    assert refused_fields(as_mallory.post(INGEST, later, format="json")) == ["job.namespace", "outputs[0]"]

    admin = api(admin_user)
    for namespace in ("spark-prod", "s3://lake"):
        ok(admin.post(NAMESPACES, {"namespace": namespace, "producer": "svc-mallory"}, format="json"), 201)
    ok(as_mallory.post(INGEST, later, format="json"), 201)
    mine = ok(api(mallory).get(NAMESPACES))["results"]
    assert {r["namespace"] for r in mine} == {"spark-prod", "s3://lake"}
    assert {r["assigned_by"] for r in mine} == {admin_user.username}
    assert AuditEvent.objects.filter(action="lineage.namespace.assign").count() == 2

    withdrawn = mine[0]
    assert api(mallory).delete(f"{NAMESPACES}/{withdrawn['id']}").status_code == 403
    assert api(admin_user).delete(f"{NAMESPACES}/{withdrawn['id']}").status_code == 204


def test_a_namespace_already_holding_datasets_must_be_assigned(api, airflow, public, admin_user):
    event = complete("publish", ["raw"], ["x"], when=at(1))
    event["outputs"] = [dataset("summary", namespace=REPORTS)]
    client = api(airflow, token=True, scopes=["lineage:write"])
    assert refused_fields(client.post(INGEST, event, format="json")) == ["outputs[0]"]
    ok(api(admin_user).post(NAMESPACES, {"namespace": REPORTS, "producer": airflow.username}, format="json"), 201)
    ok(client.post(INGEST, event, format="json"), 201)


def test_only_admins_assign_namespaces_and_assignment_names_bad_fields(api, data_steward, admin_user, airflow):
    body = {"namespace": "etl", "producer": "svc-airflow"}
    assert api(data_steward).post(NAMESPACES, body, format="json").status_code == 403
    response = api(admin_user).post(NAMESPACES, {"namespace": "etl", "producer": "nobody"}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "producer"


# --- scoped tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/datasets"),
        ("get", "/api/v1/lineage/graph?namespace=x&name=y"),
        ("get", NAMESPACES),
        ("post", "/api/v1/tokens"),
        ("post", "/api/v1/access-requests"),
    ],
)
def test_a_lineage_token_may_do_nothing_else(method, path, airflow_api, airflow):
    response = getattr(airflow_api, method)(path, {}, format="json") if method == "post" else airflow_api.get(path)
    assert response.status_code == 403
    assert "lineage:write" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="governance.token.scope_refused", actor_id=airflow.pk).count() == 1


def test_only_producers_hold_lineage_tokens_and_admins_mint_them_for_service_accounts(api, data_scientist, admin_user):
    response = api(data_scientist).post("/api/v1/tokens", {"name": "x", "scopes": ["lineage:write"]}, format="json")
    assert response.status_code == 403 and "lineage-producer" in response.json()["detail"]
    bad = api(data_scientist).post("/api/v1/tokens", {"name": "x", "scopes": ["admin"]}, format="json")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "scopes[0]"
    svc = make_user("svc-dbt")
    with pytest.raises(PermissionDenied):
        token_create(actor=svc, user=svc, name="dbt", scopes=["lineage:write"])
    token, _ = token_create(actor=admin_user, user=svc, name="dbt", scopes=["lineage:write"])
    assert token.scope_set == {"lineage:write"}
    listed = ok(api(data_scientist).get("/api/v1/tokens"))["results"]
    assert listed == []  # tokens are personal


# --- the role × endpoint matrix ----------------------------------------------------------------------------

ROLES = [
    "data_scientist",
    "data_owner",
    "data_steward",
    "privacy_officer",
    "compliance_officer",
    "admin_user",
    "airflow",
    "airflow-token",
    None,
]
# Expected status per endpoint, in the order of ROLES (anonymous last).
EXPECTED = {
    "ingest": [403, 403, 403, 403, 403, 201, 201, 201, 401],
    "batch": [403, 403, 403, 403, 403, 200, 200, 200, 401],
    "namespaces": [200, 200, 200, 200, 200, 200, 200, 403, 401],
    "assign": [403, 403, 403, 403, 403, 201, 403, 403, 401],
    "datasets": [200, 200, 200, 200, 200, 200, 200, 403, 401],
}


@pytest.mark.parametrize("endpoint", list(EXPECTED))
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r or "anonymous")
def test_role_endpoint_matrix(request, api, role, endpoint):
    if role == "airflow-token":
        client = api(request.getfixturevalue("airflow"), token=True, scopes=["lineage:write"])
    else:
        client = api(request.getfixturevalue(role) if role else None)
    make_user("svc-spark")
    event = complete("load", ["raw"], ["clean"], when=at(1))
    event["job"]["namespace"] = "etl"
    if endpoint == "ingest":
        response = client.post(INGEST, event, format="json")
    elif endpoint == "batch":
        response = client.post(BATCH, {"events": [event]}, format="json")
    elif endpoint == "namespaces":
        response = client.get(NAMESPACES)
    elif endpoint == "assign":
        response = client.post(NAMESPACES, {"namespace": "spark", "producer": "svc-spark"}, format="json")
    else:
        response = client.get("/api/v1/datasets")
    assert response.status_code == EXPECTED[endpoint][ROLES.index(role)], response.content


def test_upgrading_gives_existing_namespaces_to_who_sent_their_events(airflow_api, airflow):
    import importlib

    from django.apps import apps

    ok(airflow_api.post(INGEST, complete("load", ["raw"], ["clean"], when=at(1)), format="json"), 201)
    NamespaceProducer.objects.all().delete()  # as before the migration
    importlib.import_module("lineage.migrations.0002_namespace_producers").claim_existing(apps, None)
    assert set(NamespaceProducer.objects.values_list("namespace", "producer")) == {
        ("etl", airflow.pk),
        (NS, airflow.pk),
    }
