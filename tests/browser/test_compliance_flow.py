"""End to end in chromium: a compliance officer finds a result from the model's name (no ids), reconstructs it
(a POST), reads the report, then verifies the audit chain."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_model_to_result_to_report_then_audit_verifies(login, shot, client_for, data_scientist, compliance_officer):
    dana = client_for(data_scientist)
    model = dana.post("/api/v1/models", {"name": "churn"}, format="json").json()
    version = dana.post(
        f"/api/v1/models/{model['id']}/versions", {"version": "1", "artifact_uri": "s3://m/1"}, format="json"
    ).json()
    dana.post("/api/v1/deployments", {"model_version": version["id"], "environment": "production"}, format="json")
    record = {
        "model": "churn",
        "produced_at": datetime.now(UTC).isoformat(),
        "input_ref": "case-7",
        "output_digest": "d7",
    }
    assert dana.post("/api/v1/results", {"records": [record]}, format="json").status_code == 201

    carl = login("carl")
    carl.get_by_role("link", name="Compliance").click()
    carl.get_by_role("link", name="Find a model's results and deployments").click()
    carl.select_option("select[name=model]", "churn")
    carl.get_by_role("button", name="Show").click()
    assert "production" in carl.locator("table.deployments").inner_text()
    row = carl.locator("table.results tr", has_text="case-7")
    shot(carl, "find-results")
    row.get_by_role("button", name="Reconstruct").click()
    carl.wait_for_url(re.compile(r"/compliance/reports/[0-9a-f-]+/$"))
    assert "churn" in carl.content()
    shot(carl, "report")

    carl.goto("/compliance/audit")
    carl.get_by_role("button", name="Verify chain").click()
    assert "Chain verified" in carl.locator("#verify-result").inner_text()
    carl.fill("input[name=action]", "governance.compliance.*")
    carl.get_by_role("button", name="Filter").click()
    assert carl.locator("table.audit-events tbody tr").count() >= 1
    shot(carl, "audit-verified")
