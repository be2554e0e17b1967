"""Compliance pages without ids: model → deployments → results (by environment and time) → reconstruct (POST);
the audit-log page with filters and chain verification."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from compliance.models import ComplianceReport
from ledger.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def served(client_for, data_scientist):
    """A model with one version deployed in production and staging, and a result from each."""
    dana = client_for(data_scientist)
    model = dana.post("/api/v1/models", {"name": "churn"}, format="json").json()
    version = dana.post(
        f"/api/v1/models/{model['id']}/versions", {"version": "1", "artifact_uri": "s3://m/1"}, format="json"
    ).json()
    for env in ("production", "staging"):
        dep = dana.post(
            "/api/v1/deployments", {"model_version": version["id"], "environment": env}, format="json"
        ).json()
        assert "id" in dep, dep
    now = datetime.now(UTC)
    records = [
        {
            "model": model["id"],
            "environment": env,
            "produced_at": now.isoformat(),
            "input_ref": f"case-{env}",
            "output_digest": "d1",
        }
        for env in ("production", "staging")
    ]
    res = dana.post("/api/v1/results", {"records": records}, format="json")
    assert res.status_code == 201, res.json()
    return model


def test_find_results_by_model_and_reconstruct_with_a_post(client, compliance_officer, served):
    client.force_login(compliance_officer)
    page = client.get("/compliance/find").content.decode()
    assert '<option value="churn"' in page
    page = client.get("/compliance/find", {"model": "churn"}).content.decode()
    assert "production" in page and "staging" in page and "case-production" in page and "case-staging" in page
    staging = client.get("/compliance/find", {"model": "churn", "environment": "staging"}).content.decode()
    assert "case-staging" in staging and "case-production" not in staging
    result_id = re.search(r'name="result" value="([0-9a-f-]{36})"', page).group(1)
    assert (
        client.get("/compliance/find", {"model": "churn", "from": "2999-01-01T00:00:00Z"})
        .content.decode()
        .count("case-prod")
        == 0
    ), "the time filter narrows the results"
    assert "not a time" in client.get(
        "/compliance/find", {"model": "churn", "from": "soon"}
    ).content.decode().lower() or (
        client.get("/compliance/find", {"model": "churn", "from": "soon"}).status_code == 400
    )
    res = client.post("/compliance/", {"result": result_id})
    report = ComplianceReport.objects.get()
    assert res.status_code == 302 and res.url == f"/compliance/reports/{report.pk}/"


def test_find_is_for_compliance_officers(client, data_scientist, served):
    client.force_login(data_scientist)
    assert client.get("/compliance/find", {"model": "churn"}).status_code == 403
    assert client.get("/compliance/audit").status_code == 403
    assert client.post("/compliance/audit/verify").status_code == 403


def test_audit_page_filters_and_verifies_the_chain(client, compliance_officer, data_scientist, served):
    client.force_login(compliance_officer)
    page = client.get("/compliance/audit", {"actor": "dana"}).content.decode()
    actions = set(re.findall(r"<code>([a-z_.]+)</code>", page))
    assert actions and all(a.startswith("catalog.") for a in actions), actions
    assert "events" in page and "?actor=carl" not in page
    only = client.get("/compliance/audit", {"action": "catalog.model.*"}).content.decode()
    assert "catalog.model.create" in only and "catalog.deployment" not in only
    bad = client.get("/compliance/audit", {"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.content.decode()
    ok = client.post("/compliance/audit/verify").content.decode()
    assert "Chain verified" in ok and str(AuditEvent.objects.count()) in ok
    first = AuditEvent.objects.order_by("seq").first()
    AuditEvent.objects.filter(seq=first.seq).update(reason="tampered")
    broken = client.post("/compliance/audit/verify").content.decode()
    assert f"Chain broken at event #{first.seq}" in broken


def test_a_form_error_is_shown_once(client, compliance_officer):
    client.force_login(compliance_officer)
    res = client.post("/compliance/", {"result": "not-a-uuid"})
    assert res.status_code == 400
    page = res.content.decode()
    assert page.count("not-a-uuid") <= 2 and page.count('role="alert"') == 1
    message = re.search(r'<div class="error" role="alert"><strong>([^<]+)</strong>', page).group(1)
    assert page.count(message.split(": ", 1)[-1]) == 1, "the one problem is not repeated under the message"


def test_reports_show_names_and_readable_times(client, compliance_officer, served):
    client.force_login(compliance_officer)
    page = client.get("/compliance/find", {"model": "churn", "environment": "production"}).content.decode()
    result_id = re.search(r'name="result" value="([0-9a-f-]{36})"', page).group(1)
    report_url = client.post("/compliance/", {"result": result_id}).url
    report = client.get(report_url).content.decode()
    assert re.search(r"<h1>Reconstruction as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</h1>", report)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", report), "no raw ISO timestamps on the page"
    assert re.search(r"carl</?\w*>? at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC|carl at \d{4}-\d\d-\d\d", report)
    listing = client.get("/compliance/").content.decode()
    assert "churn v1, result case-production" in listing, "recent reports are named, not listed by id"
    assert not re.search(r">[0-9a-f]{8}-[0-9a-f]{3}…<", listing)
