"""Streaming jobs (issue 17): a Flink job sends START and RUNNING and never COMPLETE; its lineage shows while
it runs, and ends as a batch job's does (a later run replaces it) or when the run aborts or fails."""

from __future__ import annotations

import uuid

import pytest

from lineage.models import Edge
from tests.lineage.events import at, dataset, run_event

pytestmark = pytest.mark.django_db


def open_edges() -> set[tuple[str, str, str]]:
    return {
        (e.source.name, e.job.name, e.target.name)
        for e in Edge.objects.filter(valid_to__isnull=True).select_related("source", "target", "job")
    }


def all_edges() -> set[tuple[str, str, str, str | None]]:
    return {
        (e.source.name, e.target.name, e.valid_from.isoformat(), e.valid_to.isoformat() if e.valid_to else None)
        for e in Edge.objects.select_related("source", "target")
    }


def flink(event_type: str, run_id: str, minutes: float, *, inputs=("clicks",), outputs=("sessions",), streaming=True):
    event = run_event(
        "sessionize",
        event_type,
        inputs=[dataset(n) for n in inputs],
        outputs=[dataset(n) for n in outputs],
        when=at(minutes),
        run_id=run_id,
    )
    if streaming:
        event["job"]["facets"]["jobType"] = {
            "_producer": "https://github.com/OpenLineage/OpenLineage/tree/1.x/integration/flink",
            "processingType": "STREAMING",
            "integration": "FLINK",
            "jobType": "JOB",
        }
    return event


def test_a_streaming_start_opens_its_edges_while_it_runs(emit):
    emit(flink("START", str(uuid.uuid4()), 1))
    assert open_edges() == {("clicks", "sessionize", "sessions")}


def test_a_batch_start_does_not_but_running_does(emit):
    run = str(uuid.uuid4())
    emit(flink("START", run, 1, streaming=False))
    assert open_edges() == set()
    emit(flink("RUNNING", run, 2, streaming=False))
    assert open_edges() == {("clicks", "sessionize", "sessions")}


def test_running_adds_the_datasets_it_names_and_a_later_run_replaces_them(emit):
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    emit(flink("START", first, 1), flink("RUNNING", first, 2, inputs=("clicks", "views")))
    assert open_edges() == {("clicks", "sessionize", "sessions"), ("views", "sessionize", "sessions")}
    emit(flink("START", second, 10, inputs=("views",)))
    assert open_edges() == {("views", "sessionize", "sessions")}


@pytest.mark.parametrize("ending", ["ABORT", "FAIL"])
def test_abort_or_fail_closes_a_streaming_runs_edges_at_its_end(emit, ending):
    run = str(uuid.uuid4())
    emit(flink("START", run, 1), flink(ending, run, 5))
    assert open_edges() == set()
    assert all_edges() == {("clicks", "sessions", at(1).replace("Z", "+00:00"), at(5).replace("Z", "+00:00"))}


def test_out_of_order_arrival_gives_the_same_history(emit):
    run = str(uuid.uuid4())
    emit(flink("FAIL", run, 5))
    emit(flink("START", run, 1))
    assert open_edges() == set()
    assert all_edges() == {("clicks", "sessions", at(1).replace("Z", "+00:00"), at(5).replace("Z", "+00:00"))}
