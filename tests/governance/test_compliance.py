"""Point-in-time reconstruction over a scripted three-year timeline (time travel with time-machine).

2023-01  tags, policy, two datasets (C1)            2024-01  access again (C3 now: owner + privacy officer),
2023-02  access auto-approved (P90D), training        retraining, v2, redeployed (v1's deployment ends)
         run 1, model churn v1, deployed            2024-06  result R2 (served by v2)
2023-03  result R1 (served by v1)                   2025-03  crm.customers reclassified C4 after the fact
2023-04  the web.clicks grant is revoked            2026-01  reconstructions asked
2023-06  column email tagged (C3), column phone added
2023-09  web.clicks gets an upstream (raw.clicks)    2024-03  a new policy version (between v2's training and R2)
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from catalog import services as catalog
from catalog.models import Dataset, ModelVersion, Tag
from compliance.models import ComplianceReport
from governance.models import Grant
from governance.selectors import policy_current
from governance.services.grants import grant_revoke
from governance.services.policy import policy_update
from ledger import history
from ledger.models import AuditEvent
from lineage.models import PropagatedTag, Run
from lineage.propagation import drain
from lineage.services.ingest import ingest
from tests.conftest import make_producer, spec
from tests.lineage.events import complete

NS = "postgres://warehouse:5432"
T_SETUP = datetime(2023, 1, 2, 9, 0, tzinfo=UTC)
T_ACCESS_1 = datetime(2023, 2, 1, 9, 0, tzinfo=UTC)
T_TRAIN_1 = datetime(2023, 2, 2, 10, 0, tzinfo=UTC)
T_DEPLOY_1 = datetime(2023, 2, 10, 8, 0, tzinfo=UTC)
T_RESULT_1 = datetime(2023, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
T_REVOKE = datetime(2023, 4, 1, 9, 0, tzinfo=UTC)
T_TAG = datetime(2023, 6, 1, 9, 0, tzinfo=UTC)
T_UPSTREAM = datetime(2023, 9, 1, 9, 0, tzinfo=UTC)
T_ACCESS_2 = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
T_TRAIN_2 = datetime(2024, 1, 16, 10, 0, tzinfo=UTC)
T_DEPLOY_2 = datetime(2024, 2, 1, 8, 0, tzinfo=UTC)
T_POLICY_2 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
T_RESULT_2 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T_RECLASSIFY = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
T_NOW = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat()


def travel(t: datetime) -> Any:
    return time_machine.travel(t, tick=False)


def ok(res: Any, status: int = 200) -> Any:
    assert res.status_code == status, res.content[:2000]
    return res.json()


def train(producer: Any, run_id: str, when: datetime, output: str) -> None:
    event = complete("train-churn", ["crm.customers", "web.clicks"], [output], run_id=run_id)
    event["eventTime"] = iso(when)
    ingest(actor=make_producer(producer, NS, "etl"), events=[event], batch=True)
    drain()


@pytest.fixture
def timeline(
    admin_user, data_steward, data_scientist, data_owner, privacy_officer, client_for, ask, act, tags
) -> dict[str, Any]:
    """Plays the timeline; returns the ids the tests ask about."""
    ids: dict[str, Any] = {}
    dana = client_for(data_scientist)
    with travel(T_SETUP):
        current = policy_current()
        doc = current.document()
        doc["purposes"]["model-training"] = "Training or evaluating machine-learning models (2023 wording)."
        ids["policy"] = policy_update(actor=admin_user, document=doc, note="2023 policy")[0].version
        for name, fields in (("crm.customers", ["id", "email"]), ("web.clicks", ["id", "url"])):
            catalog.dataset_create(
                actor=data_steward,
                spec=spec(
                    {
                        "namespace": NS,
                        "name": name,
                        "owners": ["group:sales-eng"],
                        "fields": [{"name": f, "type": "varchar"} for f in fields],
                    }
                ),
            )
        customers = Dataset.objects.get(name="crm.customers")
        clicks = Dataset.objects.get(name="web.clicks")
        ids["customers"], ids["clicks"] = str(customers.pk), str(clicks.pk)
    with travel(T_ACCESS_1):
        request = ok(ask(data_scientist, [customers, clicks], purpose="model-training", duration="P90D"), 201)
        assert request["state"] == "approved"
        ids["grants_1"] = {str(g.dataset_id): str(g.pk) for g in Grant.objects.filter(request_id=request["id"])}
    run_1 = str(uuid.uuid4())
    with travel(T_TRAIN_1):
        train(data_steward, run_1, T_TRAIN_1, "ml.churn_features")
    with travel(T_TRAIN_1 + timedelta(hours=1)):
        model = ok(dana.post("/api/v1/models", {"name": "churn"}, format="json"), 201)
        v1 = ok(
            dana.post(
                f"/api/v1/models/{model['id']}/versions",
                {
                    "version": "1",
                    "artifact_uri": "s3://models/churn/1",
                    "artifact_digest": "sha256:" + "1" * 64,
                    "code_commit": "a1b2c3d",
                    "training_run": run_1,
                },
                format="json",
            ),
            201,
        )
        ids["model"], ids["v1"], ids["run_1"] = model["id"], v1["id"], run_1
    with travel(T_DEPLOY_1):
        ids["deployment_1"] = ok(
            dana.post("/api/v1/deployments", {"model_version": v1["id"], "environment": "production"}, format="json"),
            201,
        )["id"]
    with travel(T_RESULT_1 + timedelta(minutes=5)):
        body = {"model": model["id"], "produced_at": iso(T_RESULT_1), "input_ref": "case-1", "output_digest": "d1"}
        ok(dana.post("/api/v1/results", {"records": [body]}, format="json"), 201)
    with travel(T_REVOKE):
        grant_revoke(actor=data_steward, grant=Grant.objects.get(pk=ids["grants_1"][ids["clicks"]]), reason="leaver")
    with travel(T_TAG):
        catalog.dataset_tag_add(actor=data_steward, dataset=customers, key="pii.email", field_name="email")
        catalog.dataset_update(
            actor=data_steward,
            dataset=customers,
            spec=spec(
                {
                    "namespace": NS,
                    "name": "crm.customers",
                    "fields": [
                        {"name": "id", "type": "varchar"},
                        {"name": "email", "type": "varchar", "tags": ["pii.email"]},  # a field spec is whole
                        {"name": "phone", "type": "varchar"},
                    ],
                }
            ),
        )
        drain()
    with travel(T_UPSTREAM):
        event = complete("load-clicks", ["raw.clicks"], ["web.clicks"], run_id=str(uuid.uuid4()))
        event["eventTime"] = iso(T_UPSTREAM)
        ingest(actor=make_producer(data_steward, NS, "etl"), events=[event], batch=True)
        drain()
    with travel(T_ACCESS_2):
        request = ok(ask(data_scientist, [customers, clicks], purpose="model-training", duration="P7D"), 201)
        assert request["state"] == "pending"
        ok(act(data_owner, request["id"], "approve"))
        assert ok(act(privacy_officer, request["id"], "approve"))["state"] == "approved"
        ids["grants_2"] = {str(g.dataset_id): str(g.pk) for g in Grant.objects.filter(request_id=request["id"])}
    run_2 = str(uuid.uuid4())
    with travel(T_TRAIN_2):
        train(data_steward, run_2, T_TRAIN_2, "ml.churn_features")
    with travel(T_TRAIN_2 + timedelta(hours=1)):
        v2 = ok(
            dana.post(
                f"/api/v1/models/{model['id']}/versions",
                {"version": "2", "artifact_uri": "s3://models/churn/2", "training_run": run_2},
                format="json",
            ),
            201,
        )
        ids["v2"], ids["run_2"] = v2["id"], run_2
    with travel(T_DEPLOY_2):
        ids["deployment_2"] = ok(
            dana.post("/api/v1/deployments", {"model_version": v2["id"], "environment": "production"}, format="json"),
            201,
        )["id"]
    with travel(T_POLICY_2):
        doc = policy_current().document()
        doc["purposes"]["model-training"] = "Training or evaluating machine-learning models (2024 wording)."
        ids["policy_2"] = policy_update(actor=admin_user, document=doc, note="2024 policy")[0].version
    with travel(T_RESULT_2 + timedelta(seconds=1)):
        body = {"model": model["id"], "produced_at": iso(T_RESULT_2), "input_ref": "case-2", "output_digest": "d2"}
        ok(dana.post("/api/v1/results", body, format="json"), 201)
    with travel(T_RECLASSIFY):
        catalog.dataset_classify(actor=data_steward, dataset=customers, level="C4")
        drain()
    # Every write of the timeline went through history: the open rows match the live tables.
    assert {kind: history.drift(kind) for kind in history.kinds()} == dict.fromkeys(history.kinds(), [])
    ids["result_1"] = str(ModelVersion.objects.get(pk=v1["id"]).results.get().pk)
    ids["result_2"] = str(ModelVersion.objects.get(pk=v2["id"]).results.get().pk)
    return ids


def reconstruct(client: Any, **params: str) -> dict[str, Any]:
    with travel(T_NOW):
        return ok(client.get("/api/v1/compliance/reconstruct", params))


def inputs(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["at_training"]["name"]: item for item in r["training"]["inputs"]}


def kinds(r: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["kind"], c["at"]) for c in r["changes_since"]]


@pytest.mark.django_db
def test_result_1_shows_2023_as_it_was_and_flags_what_changed_since(timeline, client_for, compliance_officer):
    body = reconstruct(client_for(compliance_officer), result=timeline["result_1"])
    r = body["bundle"]["reconstruction"]
    assert r["at"] == iso(T_RESULT_1)
    assert r["model_version"]["id"] == timeline["v1"] and r["model_version"]["state"]["version"] == "1"
    assert r["model_version"]["state"]["code_commit"] == "a1b2c3d"
    [deployment] = r["deployments"]
    assert deployment["id"] == timeline["deployment_1"]
    assert deployment["state"]["environment"] == "production" and deployment["state"]["deployed_to"] is None
    assert r["training"]["run"]["id"] == timeline["run_1"] and r["training"]["at"] == iso(T_TRAIN_1)
    assert r["training"]["trained_by"] == "dana"
    customers = inputs(r)["crm.customers"]
    assert [f["name"] for f in customers["at_training"]["schema"]] == ["id", "email"]
    assert customers["at_training"]["tags"] == {"dataset": [], "fields": {}, "propagated": []}
    assert customers["at_training"]["effective_classification"] == "C1"
    assert customers["at_time"]["effective_classification"] == "C1"
    for name in ("crm.customers", "web.clicks"):
        access = inputs(r)[name]["access"]
        dataset_id = timeline["customers"] if name == "crm.customers" else timeline["clicks"]
        assert access["allowed"] and access["grant"] == timeline["grants_1"][dataset_id]
        [grant] = access["grants"]
        assert grant["valid_at_training"] and not grant["revoked_by_then"]
        assert grant["request"]["state_then"]["state"] == "approved"
    assert r["allowed"] and r["findings"] == []
    assert r["policy"]["at_time"]["version"] == r["policy"]["at_training"]["version"] == timeline["policy"]
    assert "2023 wording" in r["policy"]["at_time"]["document"]["purposes"]["model-training"]
    assert {e["source"] for e in r["lineage"]["edges"]} == set()  # the inputs had no upstream yet
    actions = [e["action"] for e in r["audit"]["events"]]
    assert "catalog.model_version.create" in actions and "governance.grant.revoke" not in actions
    assert all(e["at"] <= iso(T_RESULT_1) for e in r["audit"]["events"])
    changes = kinds(r)
    assert ("grant_revoked", iso(T_REVOKE)) in changes
    assert ("tags_changed", iso(T_TAG)) in changes and ("schema_changed", iso(T_TAG)) in changes
    assert ("deployment_ended", iso(T_DEPLOY_2)) in changes
    assert [(c["version"], c["at"]) for c in r["changes_since"] if c["kind"] == "policy_changed"] == [
        (timeline["policy_2"], iso(T_POLICY_2))
    ]
    reclassified = [(c["from"], c["to"], c["at"]) for c in r["changes_since"] if c["kind"] == "reclassified"]
    assert reclassified == [("C1", "C3", iso(T_TAG)), ("C3", "C4", iso(T_RECLASSIFY))]
    [schema] = [c for c in r["changes_since"] if c["kind"] == "schema_changed"]
    assert schema["added"] == ["phone"] and schema["removed"] == []


@pytest.mark.django_db
def test_result_2_is_served_by_v2_trained_on_the_tagged_column(timeline, client_for, compliance_officer):
    r = reconstruct(client_for(compliance_officer), result=timeline["result_2"])["bundle"]["reconstruction"]
    assert r["model_version"]["id"] == timeline["v2"]
    assert [d["id"] for d in r["deployments"]] == [timeline["deployment_2"]]
    customers = inputs(r)["crm.customers"]
    assert customers["at_training"]["tags"]["fields"] == {"email": ["pii.email"]}
    assert [f["name"] for f in customers["at_training"]["schema"]] == ["id", "email", "phone"]
    assert customers["at_training"]["effective_classification"] == "C3"
    assert customers["access"]["grant"] == timeline["grants_2"][timeline["customers"]]
    approvals = customers["access"]["grants"][-1]["request"]["state_then"]
    assert approvals["state"] == "approved"
    # The revoked 2023 grant is listed, but it is not what allowed the 2024 training.
    clicks = inputs(r)["web.clicks"]
    old = [g for g in clicks["access"]["grants"] if g["id"] == timeline["grants_1"][timeline["clicks"]]]
    assert old and old[0]["revoked_by_then"] and not old[0]["valid_at_training"]
    assert clicks["access"]["allowed"]
    # By v2's training, web.clicks had an upstream: the lineage of both inputs, walked from both at once.
    lineage = r["lineage"]
    assert not lineage["truncated"]
    assert {d["name"] for d in lineage["datasets"]} == {"crm.customers", "web.clicks", "raw.clicks"}
    named = {d["id"]: d["name"] for d in lineage["datasets"]}
    assert [(named[e["source"]], e["job"]["name"], named[e["target"]]) for e in lineage["edges"]] == [
        ("raw.clicks", "load-clicks", "web.clicks")
    ]
    # Trained under the 2023 policy; the result came under the 2024 one (published in between, so not a change).
    policy = r["policy"]
    assert (policy["at_training"]["version"], policy["at_time"]["version"]) == (
        timeline["policy"],
        timeline["policy_2"],
    )
    assert "2024 wording" in policy["at_time"]["document"]["purposes"]["model-training"]
    assert "2023 wording" in policy["at_training"]["document"]["purposes"]["model-training"]
    assert kinds(r) == [("direct_level_changed", iso(T_RECLASSIFY)), ("reclassified", iso(T_RECLASSIFY))]


@pytest.mark.django_db
def test_the_lineage_node_limit_applies_to_each_input_not_to_all_together(
    timeline, client_for, compliance_officer, settings
):
    """Three datasets upstream of v2's two inputs, a limit of two: each input's own walk fits (web.clicks and
    raw.clicks; crm.customers alone), so nothing is cut, as when each input was walked on its own."""
    client = client_for(compliance_officer)
    whole = reconstruct(client, result=timeline["result_2"])["bundle"]["reconstruction"]["lineage"]
    settings.STEWARD_LINEAGE_DEFAULT_NODES = 2
    limited = reconstruct(client, result=timeline["result_2"])["bundle"]["reconstruction"]["lineage"]
    assert limited == whole and len(whole["datasets"]) == 3 and not limited["truncated"]
    settings.STEWARD_LINEAGE_DEFAULT_NODES = 1
    cut = reconstruct(client, result=timeline["result_2"])["bundle"]["reconstruction"]["lineage"]
    assert cut["truncated"] and {d["name"] for d in cut["datasets"]} == {"crm.customers", "web.clicks"}


@pytest.mark.django_db
def test_a_model_version_at_any_instant_is_exact_to_the_microsecond(timeline, client_for, compliance_officer):
    client = client_for(compliance_officer)
    before = reconstruct(client, model_version=timeline["v1"], at=iso(T_TAG - timedelta(microseconds=1)))
    after = reconstruct(client, model_version=timeline["v1"], at=iso(T_TAG))
    level = {
        b: inputs(x["bundle"]["reconstruction"])["crm.customers"]["at_time"]["effective_classification"]
        for b, x in (("before", before), ("after", after))
    }
    assert level == {"before": "C1", "after": "C3"}
    # Before deployment, v1 served nowhere; after the redeploy neither.
    assert (
        reconstruct(client, model_version=timeline["v1"], at=iso(T_DEPLOY_1 - timedelta(seconds=1)))["bundle"][
            "reconstruction"
        ]["deployments"]
        == []
    )
    assert (
        reconstruct(client, model_version=timeline["v1"], at=iso(T_DEPLOY_2))["bundle"]["reconstruction"]["deployments"]
        == []
    )
    r = reconstruct(client, model_version=timeline["v2"], at=iso(T_RECLASSIFY))["bundle"]["reconstruction"]
    assert inputs(r)["crm.customers"]["at_time"]["effective_classification"] == "C4"
    assert inputs(r)["crm.customers"]["at_training"]["effective_classification"] == "C3"


@pytest.mark.django_db
def test_propagated_tags_of_the_inputs_show_at_each_instant_and_their_comings_and_goings_after_it(
    timeline, client_for, compliance_officer
):
    """Tags that reached web.clicks along lineage: one in force from before v2's training until after R2, one
    arriving later and still in force. Each instant of a reconstruction shows the tags in force then; what came
    or went after it is listed under changes_since."""
    clicks, customers = Dataset.objects.get(pk=timeline["clicks"]), Dataset.objects.get(pk=timeline["customers"])
    job = Run.objects.get(pk=timeline["run_2"]).job
    arrived, withdrawn, later = T_ACCESS_2, T_RESULT_2 + timedelta(days=30), T_RECLASSIFY + timedelta(days=30)
    for key, field, start, end in (("pii.email", "url", arrived, withdrawn), ("finance", "", later, None)):
        PropagatedTag.objects.create(
            dataset=clicks,
            field=field,
            tag=Tag.objects.get(key=key),
            origin_dataset=customers,
            origin_field="email" if field else "",
            via_dataset=customers,
            via_field="email" if field else "",
            job=job,
            valid_from=start,
            valid_to=end,
        )
    email = {"tag": "pii.email", "field": "url", "from": {"dataset": timeline["customers"], "field": "email"}}
    finance = {"tag": "finance", "field": None, "from": {"dataset": timeline["customers"], "field": None}}
    client = client_for(compliance_officer)

    def propagated(r: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        tags = inputs(r)["web.clicks"]
        return tags["at_training"]["tags"]["propagated"], tags["at_time"]["tags"]["propagated"]

    def tag_changes(r: dict[str, Any]) -> list[tuple[str, str, str]]:
        return [(c["kind"], c["tag"], c["at"]) for c in r["changes_since"] if c["kind"].startswith("tag_")]

    r1 = reconstruct(client, result=timeline["result_1"])["bundle"]["reconstruction"]  # before either
    assert propagated(r1) == ([], [])
    assert tag_changes(r1) == [
        ("tag_propagated", "pii.email", iso(arrived)),
        ("tag_withdrawn", "pii.email", iso(withdrawn)),
        ("tag_propagated", "finance", iso(later)),
    ]
    r2 = reconstruct(client, result=timeline["result_2"])["bundle"]["reconstruction"]  # e-mail tag at both
    assert propagated(r2) == ([email], [email])
    assert tag_changes(r2) == [
        ("tag_withdrawn", "pii.email", iso(withdrawn)),
        ("tag_propagated", "finance", iso(later)),
    ]
    # v2 after the withdrawal and the later tag: training time still shows the e-mail tag, the instant shows finance.
    r = reconstruct(client, model_version=timeline["v2"], at=iso(later))["bundle"]["reconstruction"]
    assert propagated(r) == ([email], [finance])
    assert tag_changes(r) == []
    # At the very instant of the withdrawal the tag is gone ([valid_from, valid_to)).
    r = reconstruct(client, model_version=timeline["v2"], at=iso(withdrawn))["bundle"]["reconstruction"]
    assert propagated(r) == ([email], [])
    assert tag_changes(r) == [("tag_propagated", "finance", iso(later))]


@pytest.mark.django_db
def test_the_bundle_carries_the_digest_of_its_canonical_form_and_the_asking_is_audited(
    timeline, client_for, compliance_officer
):
    client = client_for(compliance_officer)
    with travel(T_NOW):
        body = ok(client.post("/api/v1/compliance/reports", {"result": timeline["result_1"]}, format="json"), 201)
    report = ComplianceReport.objects.get(pk=body["id"])
    assert report.requested_by == compliance_officer and body["requested_by"] == "carl"
    with travel(T_NOW):
        res = client.get(body["links"]["bundle"])
    assert res.status_code == 200 and "attachment" in res["Content-Disposition"]
    downloaded = json.loads(res.content)
    canonical = json.dumps(downloaded["bundle"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode()).hexdigest() == downloaded["digest"]["value"] == report.digest
    assert downloaded["bundle"]["report"]["requested_by"] == "carl"
    assert downloaded["bundle"]["report"]["requested_at"] == iso(T_NOW)
    made = AuditEvent.objects.get(action="governance.compliance.report", target_id=str(report.pk))
    assert made.actor_name == "carl" and made.after["digest"] == report.digest
    assert AuditEvent.objects.filter(action="governance.compliance.report_view", target_id=str(report.pk)).exists()
    # Tampering with the stored bundle shows: its digest no longer matches.
    downloaded["bundle"]["reconstruction"]["allowed"] = False
    tampered = json.dumps(downloaded["bundle"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(tampered.encode()).hexdigest() != report.digest


@pytest.mark.django_db
def test_reconstructing_with_get_stores_nothing_and_post_keeps_the_same_bundle(
    timeline, client_for, compliance_officer
):
    client = client_for(compliance_officer)
    looked = reconstruct(client, result=timeline["result_1"])
    looked_again = reconstruct(client, result=timeline["result_1"])
    assert not ComplianceReport.objects.exists(), "a GET stores no report"
    assert looked["id"] is None and looked["links"] == {"store": "/api/v1/compliance/reports"}
    assert looked == looked_again, "the same question at the same time gives the same answer"
    asked = AuditEvent.objects.filter(action="governance.compliance.reconstruct")
    assert asked.count() == 2 and asked.first().after["digest"] == looked["digest"]["value"]
    with travel(T_NOW):
        kept = ok(client.post("/api/v1/compliance/reports", {"result": timeline["result_1"]}, format="json"), 201)
    assert ComplianceReport.objects.get().pk == uuid.UUID(kept["id"])
    assert kept["bundle"]["reconstruction"] == looked["bundle"]["reconstruction"]


@pytest.mark.django_db
def test_the_html_report_reads_like_the_bundle(timeline, client_for, compliance_officer, data_scientist):
    client = client_for(compliance_officer)
    with travel(T_NOW):
        res = client.post("/compliance/", {"result": timeline["result_1"]}, format="multipart")  # an HTML form
        assert res.status_code == 302
        page = client.get(res["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    report = ComplianceReport.objects.latest("requested_at")
    assert report.digest in html and "crm.customers" in html and "grant_revoked" in html
    assert "Every training input was covered by a valid grant." in html
    with travel(T_NOW):
        assert client_for(data_scientist).get(res["Location"]).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({}, 400, "result"),
        ({"result": "not-a-uuid"}, 400, "result"),
        ({"result": str(uuid.uuid4())}, 404, None),
        ({"model_version": str(uuid.uuid4()), "at": "2024-01-01T00:00:00Z"}, 404, None),
        ({"model_version": "V1"}, 400, "at"),
        ({"model_version": "V1", "at": "2024-01-01T00:00:00"}, 400, "at"),
        ({"model_version": "V1", "at": "2027-01-01T00:00:00Z"}, 400, "at"),
        ({"model_version": "V1", "at": "2020-01-01T00:00:00Z"}, 400, "at"),
        ({"model_version": "V1", "at": "yesterday"}, 400, "at"),
        ({"model_version": "V1", "at": "2024-01-01T00:00:00Z", "result": "R1"}, 400, "result"),
        ({"model_version": "V1", "at": "2024-01-01T00:00:00Z", "depth": "99"}, 400, "depth"),
    ],
)
def test_bad_input_is_a_clear_4xx(timeline, client_for, compliance_officer, params, status, field):
    params = {k: {"V1": timeline["v1"], "R1": timeline["result_1"]}.get(v, v) for k, v in params.items()}
    with travel(T_NOW):
        res = client_for(compliance_officer).get("/api/v1/compliance/reconstruct", params)
    assert res.status_code == status, res.content
    if field:
        assert field in [e["field"] for e in res.json()["errors"]]
    assert not ComplianceReport.objects.exists()


@pytest.mark.django_db
def test_only_compliance_officers_and_admins_reconstruct(
    timeline, client_for, data_scientist, data_steward, admin_user
):
    with travel(T_NOW):
        for user, status in ((None, 401), (data_scientist, 403), (data_steward, 403), (admin_user, 200)):
            res = client_for(user).get("/api/v1/compliance/reconstruct", {"result": timeline["result_1"]})
            assert res.status_code == status, (user, res.content[:300])
            res = client_for(user).get("/api/v1/compliance/reports")
            assert res.status_code == status
