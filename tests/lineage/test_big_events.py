"""Big events (issue 17): Spark's logical plan facet pushes events past any sensible size. The event is
accepted, the facets Steward does not use are dropped from storage (largest first) above
STEWARD_LINEAGE_STORED_EVENT_BYTES, the lineage is kept, and the answer names each dropped facet."""

from __future__ import annotations

import gzip
import json

import pytest

from lineage.models import Edge, Job, LineageEvent, Run
from tests.lineage.events import at, complete

pytestmark = pytest.mark.django_db


def spark_event(plan_items: int) -> dict:
    event = complete("etl_orders", ["raw"], ["clean"], when=at(1))
    event["run"]["facets"]["spark.logicalPlan"] = {
        "_producer": "spark",
        "plan": ["Project [id#1, name#2]"] * plan_items,
    }
    event["run"]["facets"]["spark_version"] = {"_producer": "spark", "spark-version": "3.5.1"}
    event["run"]["facets"]["nominalTime"] = {"_producer": "spark", "nominalStartTime": at(0)}
    event["job"]["facets"]["jobType"] = {"_producer": "spark", "processingType": "BATCH", "jobType": "JOB"}
    return event


def test_an_event_over_the_stored_size_keeps_its_lineage_and_names_the_dropped_facets(producer, client_for, settings):
    settings.STEWARD_LINEAGE_STORED_EVENT_BYTES = 20_000
    event = spark_event(5_000)  # ~120 kB
    client = client_for(producer)
    response = client.post(
        "/api/v1/lineage",
        gzip.compress(json.dumps(event).encode()),
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 201, response.content
    assert response.json()["dropped_facets"] == ["run.facets.spark.logicalPlan"]  # enough: the small one stays
    stored = LineageEvent.objects.get().data
    assert set(stored["run"]["facets"]) == {"spark_version", "nominalTime"}
    assert set(Run.objects.get().facets) == {"spark_version", "nominalTime"}
    assert Job.objects.get().facets["jobType"]["processingType"] == "BATCH"
    assert Edge.objects.filter(valid_to__isnull=True).count() == 1
    # The same event again is a duplicate (its identity is the event as sent, not as stored).
    again = client.post("/api/v1/lineage", event, format="json")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"


def test_an_event_under_the_stored_size_is_kept_whole(emit, settings):
    settings.STEWARD_LINEAGE_STORED_EVENT_BYTES = 1_000_000
    (result,) = emit(spark_event(100))
    assert result.dropped_facets == []
    assert "spark.logicalPlan" in LineageEvent.objects.get().data["run"]["facets"]


def test_a_one_mebibyte_plan_is_accepted_with_the_default_limits(emit):
    (result,) = emit(spark_event(50_000))  # ~1.2 MB: over the old 1 MiB limit
    assert result.dropped_facets == ["run.facets.spark.logicalPlan"]
    assert Edge.objects.filter(valid_to__isnull=True).count() == 1
