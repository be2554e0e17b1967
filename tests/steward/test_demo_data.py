"""The demo data set shows what the product is for: the flagship dataset can be requested, and the compliance
page has a green reconstruction (trained under a valid grant) beside a deliberately red one (trained without)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from catalog.models import Dataset, ResultRecord
from governance.models import AccessRequest
from lineage.demo import PG
from steward.identity import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(django_capture_on_commit_callbacks, workspace_templates) -> str:
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("demo_load", stdout=out)
    return out.getvalue()


def reconstruct(client_for, model: str) -> dict[str, Any]:
    carl = User.objects.get(username="carl")  # the demo's compliance officer
    record = ResultRecord.objects.filter(model_version__model__name=model).order_by("produced_at").first()
    assert record is not None, f"the demo records results of {model}"
    res = client_for(carl).get("/api/v1/compliance/reconstruct", {"result": str(record.pk)})
    assert res.status_code == 200, res.json()
    return res.json()["bundle"]["reconstruction"]


def test_an_ordinary_data_scientist_can_request_the_customer_360(demo, client_for, django_capture_on_commit_callbacks):
    c360 = Dataset.objects.get(namespace=PG, name="marts.customer_360")
    tags = {a.tag.key for a in c360.tag_assignments.all()} | set(
        c360.propagated_tags.filter(valid_to__isnull=True).values_list("tag__key", flat=True)
    )
    assert "customer" in tags and "transactions.raw" not in tags, tags
    newcomer = make_user("nina", Role.DATA_SCIENTIST)
    body = {
        "datasets": [str(c360.pk)],
        "purpose": "model-training",
        "justification": "Churn features for the next quarter.",
        "duration": "P7D",
    }
    with django_capture_on_commit_callbacks(execute=True):
        res = client_for(newcomer).post("/api/v1/access-requests", body, format="json")
    assert res.status_code == 201, res.json()
    assert AccessRequest.objects.filter(requester=newcomer, items__dataset=c360).exists()


def test_one_demo_reconstruction_is_green_and_another_deliberately_red(demo, client_for):
    green = reconstruct(client_for, "churn-predictor")
    assert green["allowed"], green["findings"]
    assert green["findings"] == []
    assert green["training"]["trained_by"] == "dana"
    (item,) = green["training"]["inputs"]
    assert item["at_training"]["name"] == "marts.customer_360" and item["access"]["grant"]

    red = reconstruct(client_for, "fraud-detector")
    assert not red["allowed"]
    assert any(
        "dana held no valid grant on marts.customer_360 at training time" in finding for finding in red["findings"]
    ), red["findings"]
