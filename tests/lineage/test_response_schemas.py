"""Lineage's answers conform to what docs/openapi.yaml says about them (nullable fields, optional keys, masked refs).

Each endpoint is called for real, as a steward and as a data scientist (who gets masked datasets and jobs), and
every 200/201 body is validated against the schema of that operation and status.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from catalog.services import dataset_classify
from lineage.models import Declassification, Job, NamespaceProducer
from tests.lineage.conftest import ds
from tests.lineage.events import NS, complete, dataset, run_event

pytestmark = pytest.mark.django_db

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml").read_text())


def _resolve(node: Any) -> Any:
    """The schema with its ``$ref``s inlined and OpenAPI 3.0's ``nullable`` turned into JSON Schema."""
    if isinstance(node, list):
        return [_resolve(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _resolve(SCHEMA["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
    out = {k: _resolve(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def conforms(response: Any, path: str, method: str = "get") -> dict[str, Any]:
    """The body, after checking it against the documented schema of this path, method and status."""
    code = response.status_code
    assert code in (200, 201), response.content
    documented = SCHEMA["paths"][path][method]["responses"][str(code)]["content"]["application/json"]["schema"]
    body = response.json()
    jsonschema.validate(body, _resolve(documented), format_checker=jsonschema.FormatChecker())
    return body


def test_the_schema_describes_each_lineage_answer(
    emit, tags, tag, data_steward, privacy_officer, data_scientist, client_for
):
    emit(
        run_event(
            "load",
            "COMPLETE",
            inputs=[dataset("users", fields=["id", "email"])],
            outputs=[dataset("contacts", fields=["uid", "mail"], columns={"mail": [("users", "email")]})],
        ),
        complete("a2b", ["a"], ["b"]),
        complete("b2c", ["b"], ["c"]),
    )
    tag("users", "email", field="email")
    tag("a", "email")
    steward, scientist = client_for(data_steward), client_for(data_scientist)
    c, contacts = ds("c").pk, ds("contacts").pk
    for api in (steward, scientist):
        conforms(api.get(f"/api/v1/datasets/{c}/tags/"), "/api/v1/datasets/{id}/tags/")
        conforms(api.get(f"/api/v1/datasets/{contacts}/tags/"), "/api/v1/datasets/{id}/tags/")
        conforms(
            api.get(f"/api/v1/datasets/{contacts}/fields/mail/tags/"), "/api/v1/datasets/{id}/fields/{field}/tags/"
        )
        body = conforms(api.get(f"/api/v1/datasets/{c}/explain/", {"tag": "email"}), "/api/v1/datasets/{id}/explain/")
        assert body["direct"] is False and "at" in body
        body = conforms(
            api.get(f"/api/v1/datasets/{ds('a').pk}/explain/", {"tag": "email"}), "/api/v1/datasets/{id}/explain/"
        )
        assert body["direct"] is True and "at" not in body
        conforms(
            api.get(f"/api/v1/datasets/{contacts}/fields/mail/explain/", {"tag": "email"}),
            "/api/v1/datasets/{id}/fields/{field}/explain/",
        )
        conforms(api.get(f"/api/v1/datasets/{contacts}/versions/"), "/api/v1/datasets/{id}/versions/")
    # b becomes C4: the data scientist now gets masked datasets and jobs in the graph and in explanations.
    dataset_classify(actor=data_steward, dataset=ds("b"), level="C4")
    for api in (steward, scientist):
        for params in ({"name": "a"}, {"name": "users", "columns": "true"}, {"name": "a", "at": "2020-01-01T00:00Z"}):
            conforms(api.get("/api/v1/lineage/graph", {"namespace": NS, **params}), "/api/v1/lineage/graph")
    body = conforms(scientist.get("/api/v1/lineage/graph", {"namespace": NS, "name": "a"}), "/api/v1/lineage/graph")
    assert any(n.get("hidden") for n in body["nodes"])
    load = Job.objects.get(name="load")
    conforms(steward.get(f"/api/v1/lineage/jobs/{load.pk}"), "/api/v1/lineage/jobs/{id}")
    conforms(
        steward.get("/api/v1/lineage/jobs/lookup", {"namespace": load.namespace, "name": "load"}),
        "/api/v1/lineage/jobs/lookup",
    )
    # Declassifications: requested, listed, decided, revoked.
    officer = client_for(privacy_officer)
    request = {"job": str(Job.objects.get(name="a2b").pk), "tags": ["email"], "justification": "counts only"}
    decl = conforms(
        officer.post("/api/v1/declassifications", request, format="json"), "/api/v1/declassifications", "post"
    )
    assert decl["decided_by"] is None and decl["valid_from"] is None
    conforms(officer.get("/api/v1/declassifications"), "/api/v1/declassifications")
    path = "/api/v1/declassifications/{id}/"
    decided = conforms(
        steward.post(f"/api/v1/declassifications/{decl['id']}/approve", {}, format="json"),
        path + "approve",
        "post",
    )
    assert decided["decided_by"]
    conforms(
        steward.post(f"/api/v1/declassifications/{decl['id']}/revoke", {"reason": "x"}, format="json"),
        path + "revoke",
        "post",
    )
    other = conforms(
        officer.post("/api/v1/declassifications", request, format="json"), "/api/v1/declassifications", "post"
    )
    conforms(
        steward.post(f"/api/v1/declassifications/{other['id']}/reject", {}, format="json"), path + "reject", "post"
    )
    assert Declassification.objects.count() == 2
    # Namespaces, and ending a job's edges.
    conforms(steward.get("/api/v1/lineage/namespaces"), "/api/v1/lineage/namespaces")
    assert NamespaceProducer.objects.exists()
    conforms(steward.delete(f"/api/v1/lineage/jobs/{load.pk}"), "/api/v1/lineage/jobs/{id}", "delete")
