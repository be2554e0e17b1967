"""Lineage graph queries: one suite, run against every graph backend (``sql`` and the ``neo4j`` projection).

The neo4j runs talk to the real Neo4j test server (``scripts/services/neo4j.sh``; ``make test`` starts it) on
loopback, wiped before each test. Tests here use the ``db`` fixture, so after-commit work (the projection
sync) does not run by itself: the ``lineage`` fixture ingests and then syncs explicitly, and one test runs
the after-commit callbacks to show that ingestion queues the sync.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import StringIO
from typing import Any
from unittest import mock
from uuid import UUID

import pytest
from celery.exceptions import Retry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from neo4j import GraphDatabase

from catalog.services import dataset_classify
from lineage.graph import get_backend
from lineage.graph.base import Walk
from lineage.models import ColumnEdge, Edge, Job
from lineage.services.ingest import job_end_edges
from lineage.tasks import graph_sync_task
from steward.errors import BackendUnavailable
from tests.lineage.conftest import ds
from tests.lineage.events import NS, T0, at, complete, dataset, run_event

pytestmark = pytest.mark.django_db

URL = "/api/v1/lineage/graph"
UNREACHABLE = {"url": "bolt://127.0.0.1:1", "user": "", "password": ""}  # a closed loopback port


def neo4j_query(url: str, query: str) -> list[Any]:
    with GraphDatabase.driver(url, auth=None, connection_timeout=5) as driver:
        return driver.execute_query(query).records


@dataclass
class Graph:
    name: str
    url: str | None

    @property
    def backend(self) -> Any:
        return get_backend()

    def sync(self) -> None:
        """Project every job (what the after-commit task does in production); nothing to do for ``sql``."""
        self.backend.sync_jobs(Job.objects.values_list("pk", flat=True))

    def wipe(self) -> None:
        """Empty Neo4j in bounded transactions (a benchmark may have left a million edges behind)."""
        if self.url:
            for query in (
                "MATCH ()-[r]->() WITH r LIMIT 20000 DELETE r RETURN count(*) AS n",
                "MATCH (n) WITH n LIMIT 20000 DETACH DELETE n RETURN count(*) AS n",
            ):
                while neo4j_query(self.url, query)[0]["n"]:
                    pass

    def relationships(self) -> dict[str, int]:
        assert self.url
        rows = neo4j_query(self.url, "MATCH ()-[r]->() RETURN type(r) AS kind, count(*) AS n")
        return {row["kind"]: row["n"] for row in rows}


@pytest.fixture(params=["sql", "neo4j"])
def graph_backend(request) -> Any:
    if request.param == "sql":
        with override_settings(STEWARD_GRAPH_BACKEND="sql", STEWARD_GRAPH_OPTIONS={}):
            yield Graph("sql", None)
        return
    url = request.getfixturevalue("neo4j_url")
    graph = Graph("neo4j", url)
    graph.wipe()
    with override_settings(
        STEWARD_GRAPH_BACKEND="neo4j", STEWARD_GRAPH_OPTIONS={"url": url, "user": "", "password": ""}
    ):
        try:
            yield graph
        finally:
            graph.backend.close()


@pytest.fixture
def lineage(emit, graph_backend):
    """Ingest events (as the ``emit`` fixture does), then bring the graph backend up to date."""

    def send(*events: dict[str, Any]) -> None:
        emit(*events)
        graph_backend.sync()

    return send


@pytest.fixture
def api(client_for, data_steward):
    client = client_for(data_steward)

    def get(name: str, **params: Any) -> Any:
        return client.get(URL, {"namespace": NS, "name": name, **params})

    return get


def shape(body: dict[str, Any]) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Datasets → depth and edges as (label, label) pairs (dataset→job, job→dataset); a node's label is its
    name, or its node id when it is hidden from the caller (``hidden:1``, ``job:hidden:1``)."""
    labels = {n["id"]: n["id"] if n.get("hidden") else n["name"] for n in body["nodes"]}
    datasets = {labels[n["id"]]: n["depth"] for n in body["nodes"] if n["kind"] == "dataset"}
    links = {(labels[e["source"]], labels[e["target"]]) for e in body["edges"] if e["kind"] in ("input", "output")}
    return datasets, links


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    return response.json()


def walk(
    root: str,
    direction: str = "downstream",
    depth: int = 3,
    columns: bool = False,
    when: str | None = None,
    limit: int = 5000,
):
    return get_backend().walk(
        root=ds(root).pk,
        direction=direction,
        depth=depth,
        columns=columns,
        at=datetime.fromisoformat(when) if when else None,
        limit=limit,
    )


def named(w: Walk) -> tuple[dict[str, int], set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """A walk with names: datasets → depth, (source, job, target), (source.field, job, target.field)."""
    dnames = dict(ds_names())
    jnames = {j.pk: j.name for j in Job.objects.all()}
    return (
        {dnames[d]: depth for d, depth in w.datasets.items()},
        {(dnames[s], jnames[j], dnames[t]) for s, t, j in w.edges},
        {(f"{dnames[s]}.{sf}", jnames[j], f"{dnames[t]}.{tf}") for s, sf, t, tf, j in w.column_edges},
    )


def ds_names() -> list[tuple[UUID, str]]:
    from catalog.models import Dataset

    return list(Dataset.objects.values_list("pk", "name"))


# --- direction and depth -------------------------------------------------------------------------------


@pytest.fixture
def pipeline(lineage):
    """raw ─load→ clean ─report→ summary, and lookup ─load→ clean."""
    lineage(complete("load", ["raw", "lookup"], ["clean"]), complete("report", ["clean"], ["summary"], when=at(1)))


def test_downstream_upstream_and_both(pipeline, api):
    datasets, links = shape(ok(api("clean", direction="downstream")))
    assert datasets == {"clean": 0, "summary": 1}
    assert links == {("clean", "report"), ("report", "summary")}

    datasets, links = shape(ok(api("clean", direction="upstream")))
    assert datasets == {"clean": 0, "raw": 1, "lookup": 1}
    assert links == {("raw", "load"), ("lookup", "load"), ("load", "clean")}

    body = ok(api("clean", direction="both"))
    datasets, links = shape(body)
    assert datasets == {"clean": 0, "raw": 1, "lookup": 1, "summary": 1}
    assert len(links) == 5
    assert body["root"] == f"dataset:{ds('clean').pk}" and body["direction"] == "both"
    assert {n["name"] for n in body["nodes"] if n["kind"] == "job"} == {"load", "report"}


def test_walk_returns_datasets_edges_and_jobs(pipeline, graph_backend):
    assert named(walk("raw")) == (
        {"raw": 0, "clean": 1, "summary": 2},
        {("raw", "load", "clean"), ("clean", "report", "summary")},
        set(),
    )
    assert named(walk("summary", "upstream")) == (
        {"summary": 0, "clean": 1, "raw": 2, "lookup": 2},
        {("raw", "load", "clean"), ("lookup", "load", "clean"), ("clean", "report", "summary")},
        set(),
    )
    w = walk("lookup", "both")
    assert w.root == ds("lookup").pk
    assert named(w)[0] == {"lookup": 0, "clean": 1, "summary": 2}


def test_depth_limits_the_walk(lineage, api):
    lineage(complete("ab", ["a"], ["b"]), complete("bc", ["b"], ["c"]), complete("cd", ["c"], ["d"]))
    assert shape(ok(api("a", direction="downstream", depth=1))) == ({"a": 0, "b": 1}, {("a", "ab"), ("ab", "b")})
    datasets, links = shape(ok(api("a", direction="downstream", depth=2)))
    assert datasets == {"a": 0, "b": 1, "c": 2}
    assert links == {("a", "ab"), ("ab", "b"), ("b", "bc"), ("bc", "c")}
    assert shape(ok(api("a", direction="downstream", depth=0))) == ({"a": 0}, set())
    assert shape(ok(api("d", direction="upstream", depth=3)))[0] == {"d": 0, "c": 1, "b": 2, "a": 3}
    # The default depth is 3.
    assert shape(ok(api("a", direction="downstream")))[0] == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_a_dataset_reached_two_ways_takes_its_least_depth(lineage, graph_backend):
    lineage(complete("ab", ["a"], ["b"]), complete("bc", ["b"], ["c"]), complete("ac", ["a"], ["c"]))
    datasets, edges, _ = named(walk("a", depth=2))
    assert datasets == {"a": 0, "b": 1, "c": 1}
    assert edges == {("a", "ab", "b"), ("b", "bc", "c"), ("a", "ac", "c")}
    # depth 1: the edge b→c starts at depth 1, so it is beyond the limit even though c is reached.
    assert named(walk("a", depth=1))[1] == {("a", "ab", "b"), ("a", "ac", "c")}


def test_a_cycle_terminates_with_least_depths(lineage, api, graph_backend):
    lineage(complete("ab", ["a"], ["b"]), complete("bc", ["b"], ["c"]), complete("ca", ["c"], ["a"]))
    datasets, edges, _ = named(walk("a", depth=10))
    assert datasets == {"a": 0, "b": 1, "c": 2}
    assert edges == {("a", "ab", "b"), ("b", "bc", "c"), ("c", "ca", "a")}
    assert named(walk("a", "upstream", depth=10))[0] == {"a": 0, "c": 1, "b": 2}
    assert named(walk("a", "both", depth=10))[0] == {"a": 0, "b": 1, "c": 1}
    # At depth 2, c (depth 2) is not expanded: the edge back to a is not part of the answer.
    assert named(walk("a", depth=2))[1] == {("a", "ab", "b"), ("b", "bc", "c")}
    datasets, links = shape(ok(api("b", direction="both", depth=10)))
    assert datasets == {"b": 0, "a": 1, "c": 1}
    assert len(links) == 6


# --- columns ---------------------------------------------------------------------------------------------


def test_columns_add_column_nodes_and_edges(lineage, api):
    lineage(
        complete(
            "load", ["users"], ["clean"], columns={"clean": {"mail": [("users", "email")], "uid": [("users", "id")]}}
        ),
        complete("report", ["clean"], ["summary"], columns={"summary": {"contact": [("clean", "mail")]}}, when=at(1)),
        complete("audit", ["users"], ["log"]),  # dataset lineage only
    )
    body = ok(api("users", direction="downstream", columns="true"))
    columns = {n["id"]: n for n in body["nodes"] if n["kind"] == "column"}
    users, clean, summary = ds("users").pk, ds("clean").pk, ds("summary").pk
    assert set(columns) == {
        f"column:{users}:email",
        f"column:{users}:id",
        f"column:{clean}:mail",
        f"column:{clean}:uid",
        f"column:{summary}:contact",
    }
    assert columns[f"column:{clean}:mail"] == {
        "id": f"column:{clean}:mail",
        "kind": "column",
        "dataset": f"dataset:{clean}",
        "name": "mail",
    }
    load, report = Job.objects.get(name="load").pk, Job.objects.get(name="report").pk
    column_edges = {(e["source"], e["target"], e["job"]) for e in body["edges"] if e["kind"] == "column"}
    assert column_edges == {
        (f"column:{users}:email", f"column:{clean}:mail", f"job:{load}"),
        (f"column:{users}:id", f"column:{clean}:uid", f"job:{load}"),
        (f"column:{clean}:mail", f"column:{summary}:contact", f"job:{report}"),
    }
    # Without columns=true there are none; at depth 1 only the first job's.
    assert not [n for n in ok(api("users", direction="downstream"))["nodes"] if n["kind"] == "column"]
    assert named(walk("users", depth=1, columns=True))[2] == {
        ("users.email", "load", "clean.mail"),
        ("users.id", "load", "clean.uid"),
    }


# --- as of a time ----------------------------------------------------------------------------------------


@pytest.fixture
def rerouted(lineage):
    """``load`` read raw from at(0), then (its run completed at at(5)) other instead; the column edge too."""
    lineage(
        complete("load", ["raw"], ["clean"], columns={"clean": {"x": [("raw", "x")]}}),
        complete("report", ["clean"], ["summary"], when=at(1)),
    )
    lineage(complete("load", ["other"], ["clean"], columns={"clean": {"x": [("other", "y")]}}, when=at(5)))


def test_at_a_past_time_shows_an_edge_a_later_run_ended(rerouted, api):
    edge = Edge.objects.get(source=ds("raw"))
    assert edge.valid_to == T0 + timedelta(minutes=5)
    assert shape(ok(api("clean", direction="upstream")))[0] == {"clean": 0, "other": 1}
    past = ok(api("clean", direction="upstream", at=at(2)))
    assert past["at"] == "2026-01-01T12:02:00+00:00"
    assert shape(past)[0] == {"clean": 0, "raw": 1}
    # The same instant with another UTC offset.
    assert shape(ok(api("clean", direction="upstream", at="2026-01-01T13:02:00+01:00")))[0] == {"clean": 0, "raw": 1}
    # The interval is [valid_from, valid_to): at the very time the later run completed, the new edge holds.
    assert shape(ok(api("clean", direction="upstream", at=at(5))))[0] == {"clean": 0, "other": 1}
    assert shape(ok(api("clean", direction="upstream", at=at(0))))[0] == {"clean": 0, "raw": 1}
    # Before any run there was no lineage.
    assert shape(ok(api("clean", direction="both", at=at(-1))))[0] == {"clean": 0}
    # downstream of raw, as of then: the whole chain (report completed at at(1)).
    assert shape(ok(api("raw", direction="downstream", at=at(1))))[0] == {"raw": 0, "clean": 1, "summary": 2}
    assert shape(ok(api("raw", direction="downstream", at=at(0))))[0] == {"raw": 0, "clean": 1}
    assert shape(ok(api("raw", direction="downstream")))[0] == {"raw": 0}


def test_at_a_past_time_shows_the_column_edges_of_then(rerouted, graph_backend):
    assert named(walk("clean", "upstream", columns=True))[2] == {("other.y", "load", "clean.x")}
    assert named(walk("clean", "upstream", columns=True, when=at(3)))[2] == {("raw.x", "load", "clean.x")}


def test_ending_a_job_s_lineage_ends_its_edges_now(lineage, graph_backend, producer):
    lineage(complete("load", ["raw"], ["clean"]))
    job_end_edges(actor=producer, job_id=Job.objects.get(name="load").pk)
    graph_backend.sync()
    assert named(walk("raw"))[0] == {"raw": 0}
    assert named(walk("raw", when=at(1)))[0] == {"raw": 0, "clean": 1}


# --- visibility and validation --------------------------------------------------------------------------


def test_at_a_past_time_nodes_carry_the_classification_of_then(lineage, api, tags, tag, untag):
    from django.utils import timezone

    lineage(complete("load", ["raw"], ["clean"]))
    tag("raw", "email")
    while_tagged = timezone.now()
    untag("raw", "email")

    def levels(**params: Any) -> dict[str, str]:
        body = ok(api("clean", direction="upstream", **params))
        return {n["name"]: n["classification"] for n in body["nodes"] if n["kind"] == "dataset"}

    assert levels() == {"raw": "C1", "clean": "C1"}
    assert levels(at=while_tagged.isoformat()) == {"raw": "C3", "clean": "C3"}


def test_a_c4_dataset_is_anonymous_for_a_data_scientist(pipeline, client_for, data_scientist, data_steward):
    dataset_classify(actor=data_steward, dataset=ds("clean"), level="C4")
    scientist = client_for(data_scientist)
    body = ok(scientist.get(URL, {"namespace": NS, "name": "raw", "direction": "downstream"}))
    datasets, links = shape(body)
    # The path through it stays, but neither it nor the jobs next to it are named.
    assert datasets == {"raw": 0, "hidden:1": 1, "summary": 2}
    assert links == {
        ("raw", "job:hidden:1"),
        ("job:hidden:1", "hidden:1"),
        ("hidden:1", "job:hidden:2"),
        ("job:hidden:2", "summary"),
    } or links == {
        ("raw", "job:hidden:2"),
        ("job:hidden:2", "hidden:1"),
        ("hidden:1", "job:hidden:1"),
        ("job:hidden:1", "summary"),
    }
    text = str(body)
    assert "clean" not in text and str(ds("clean").pk) not in text and "C4" not in text
    for job in Job.objects.all():
        assert str(job.pk) not in text and job.name not in text
    # As the root it does not exist for them.
    assert scientist.get(URL, {"namespace": NS, "name": "clean"}).status_code == 404
    # A steward sees it, with its classification.
    body = ok(client_for(data_steward).get(URL, {"namespace": NS, "name": "raw", "direction": "downstream"}))
    assert shape(body)[0] == {"raw": 0, "clean": 1, "summary": 2}
    assert {n["name"]: n["classification"] for n in body["nodes"] if n["kind"] == "dataset"}["clean"] == "C4"


def test_column_edges_do_not_name_a_job_next_to_a_hidden_dataset(lineage, client_for, data_scientist, data_steward):
    lineage(complete("mix", ["users", "vault"], ["report"], columns={"report": {"a": [("users", "a")]}}))
    dataset_classify(actor=data_steward, dataset=ds("vault"), level="C4")
    body = ok(
        client_for(data_scientist).get(
            URL, {"namespace": NS, "name": "report", "direction": "upstream", "columns": "true"}
        )
    )
    assert shape(body)[0] == {"report": 0, "users": 1, "hidden:1": 1}
    [column_edge] = [e for e in body["edges"] if e["kind"] == "column"]
    assert column_edge["job"] == "job:hidden:1"
    assert str(Job.objects.get(name="mix").pk) not in str(body) and "mix" not in str(body)


def test_bad_requests_name_the_parameter(pipeline, api, settings):
    def problem(response: Any, status: int) -> str | None:
        assert response.status_code == status, response.content
        errors = response.json()["errors"]
        return errors[0]["field"] if errors else None

    limit = settings.STEWARD_LINEAGE_MAX_DEPTH
    assert problem(api("clean", depth=limit + 1), 400) == "depth"
    assert problem(api("clean", depth=-1), 400) == "depth"
    assert problem(api("clean", depth="three"), 400) == "depth"
    assert ok(api("clean", depth=limit))["depth"] == limit
    assert problem(api("nowhere"), 404) is None
    assert problem(api("clean", at="2026-01-01T12:00:00"), 400) == "at"  # naive: no UTC offset
    assert problem(api("clean", at="yesterday"), 400) == "at"
    assert problem(api("clean", direction="sideways"), 400) == "direction"
    assert problem(api("clean", columns="maybe"), 400) == "columns"
    assert problem(api("clean", limit=0), 400) == "limit"
    assert problem(api("clean", limit=settings.STEWARD_LINEAGE_MAX_NODES + 1), 400) == "limit"


# --- the node limit ---------------------------------------------------------------------------------------


@pytest.fixture
def fan(lineage):
    """hub ─f→ m1..m4 ─g→ leaf: six datasets within depth 2."""
    mids = [f"m{i}" for i in range(1, 5)]
    lineage(complete("f", ["hub"], mids), complete("g", mids, ["leaf"], when=at(1)))
    return mids


def test_a_limit_keeps_the_nearest_datasets_and_says_it_cut(fan, api, graph_backend):
    whole = ok(api("hub", direction="downstream", depth=2, limit=6))
    assert whole["truncated"] is False and whole["limit"] == 6
    assert shape(whole)[0] == {"hub": 0, "m1": 1, "m2": 1, "m3": 1, "m4": 1, "leaf": 2}
    cut = ok(api("hub", direction="downstream", depth=2, limit=3))
    assert cut["truncated"] is True
    datasets, links = shape(cut)
    kept = sorted(ds(m).pk for m in fan)[:2]  # nearest first; within a hop, in id order (the same every time)
    assert datasets == {"hub": 0, **{name: 1 for name in fan if ds(name).pk in kept}}
    assert all(set(link) <= {*datasets, "f"} for link in links)  # no edge to a dataset left out
    assert ok(api("hub", direction="downstream", depth=2, limit=3)) == cut
    # The limit counts both directions together.
    assert len(shape(ok(api("m1", direction="both", depth=2, limit=2)))[0]) == 2


def test_a_walk_at_its_limit_still_links_the_datasets_it_holds(lineage, graph_backend):
    # a → b, a → c, and b → c: with limit 3 everything fits, and the b → c edge at depth 2 is kept.
    lineage(complete("ab", ["a"], ["b"]), complete("ac", ["a"], ["c"]), complete("bc", ["b"], ["c"], when=at(1)))
    w = walk("a", depth=2, limit=3)
    assert not w.truncated
    assert named(w)[1] == {("a", "ab", "b"), ("a", "ac", "c"), ("b", "bc", "c")}
    w = walk("a", depth=2, limit=2)
    assert w.truncated and len(w.datasets) == 2


def test_a_walk_from_several_roots_is_the_walks_from_each_put_together(lineage, graph_backend):
    """``walk_from`` (a reconstruction walks upstream from every training input at once), on every backend: same
    datasets, each at its least hops from any root, and same edges as the walks from each root; cut by a shared
    limit, it says so (the caller then walks from each root)."""
    lineage(
        complete("load", ["raw", "lookup"], ["clean"]),
        complete("load2", ["raw2"], ["clean2"], when=at(1)),
        complete("join", ["clean", "clean2"], ["features"], when=at(2)),
        complete("score", ["features", "lookup"], ["scores"], when=at(3)),
    )
    backend = graph_backend.backend
    for names in (["features", "clean2"], ["scores", "clean", "raw"], ["clean", "clean2"], ["scores"]):
        roots = [ds(n).pk for n in names]
        for depth in (0, 1, 2, 3):
            whole = backend.walk_from(roots=roots, direction="upstream", depth=depth, at=None, limit=100)
            assert not whole.truncated
            datasets: dict[UUID, int] = {}
            edges: set[tuple[UUID, UUID, UUID]] = set()
            for root in roots:
                one = backend.walk(root=root, direction="upstream", depth=depth, columns=False, at=None, limit=100)
                for d, hop in one.datasets.items():
                    datasets[d] = min(hop, datasets.get(d, hop))
                edges |= one.edges
            assert (whole.datasets, whole.edges) == (datasets, edges), (names, depth)
    assert named(
        backend.walk_from(roots=[ds("features").pk, ds("clean2").pk], direction="upstream", depth=1, at=None, limit=100)
    )[1] == {
        ("clean", "join", "features"),
        ("clean2", "join", "features"),
        ("raw2", "load2", "clean2"),
    }
    cut = backend.walk_from(roots=[ds("features").pk, ds("clean2").pk], direction="upstream", depth=3, at=None, limit=4)
    assert cut.truncated and len(cut.datasets) == 4


# --- the projection: kept in step, rebuilt, and an outage -------------------------------------------------


def test_ingestion_queues_the_projection(emit, graph_backend, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        emit(complete("load", ["raw"], ["clean"]), complete("report", ["clean"], ["summary"], when=at(1)))
    # No explicit sync: the after-commit callback queued lineage.graph_sync (run eagerly in tests).
    assert named(walk("raw")) == (
        {"raw": 0, "clean": 1, "summary": 2},
        {("raw", "load", "clean"), ("clean", "report", "summary")},
        set(),
    )
    with django_capture_on_commit_callbacks(execute=True):
        emit(complete("load", ["other"], ["clean"], when=at(5)))
    assert named(walk("clean", "upstream"))[0] == {"clean": 0, "other": 1}
    if graph_backend.name == "neo4j":
        assert graph_backend.relationships() == {"FLOWS": 3}


def test_sync_is_idempotent_and_replaces_a_job_s_edges(lineage, graph_backend):
    lineage(complete("load", ["raw"], ["clean"], columns={"clean": {"x": [("raw", "x")]}}))
    lineage(complete("load", ["other"], ["clean"], when=at(5)))
    graph_backend.sync()
    graph_backend.sync()
    assert named(walk("clean", "upstream", columns=True)) == (
        {"clean": 0, "other": 1},
        {("other", "load", "clean")},
        set(),
    )
    assert named(walk("clean", "upstream", columns=True, when=at(1)))[2] == {("raw.x", "load", "clean.x")}
    if graph_backend.name == "neo4j":
        # Every interval, once: raw→clean (ended), other→clean (open), raw.x→clean.x (ended).
        assert graph_backend.relationships() == {"FLOWS": Edge.objects.count(), "COLUMN_FLOWS": 1}
        assert Edge.objects.count() == 2
        # Syncing a job the database no longer has removes its relationships.
        job = Job.objects.get(name="load").pk
        Job.objects.filter(pk=job).delete()
        graph_backend.backend.sync_jobs([job])
        assert graph_backend.relationships() == {}
    graph_backend.backend.sync_jobs([])


def test_graph_rebuild_reprojects_everything(lineage, graph_backend):
    lineage(
        complete("load", ["raw"], ["clean"], columns={"clean": {"x": [("raw", "x")]}}),
        complete("report", ["clean"], ["summary"], when=at(1)),
    )
    expected = named(walk("raw", columns=True))
    assert expected[0] == {"raw": 0, "clean": 1, "summary": 2}
    out, err = StringIO(), StringIO()
    if graph_backend.name == "sql":
        call_command("graph_rebuild", stdout=out, stderr=err)
        assert "nothing to rebuild" in out.getvalue() or "no projection" in out.getvalue()
        assert graph_backend.backend.rebuild() == 0
        return
    graph_backend.wipe()
    assert named(walk("raw", columns=True)) == ({"raw": 0}, set(), set())
    call_command("graph_rebuild", stdout=out, stderr=err)
    assert "Projected 2 edge(s) of 2 job(s)" in out.getvalue()
    assert "job" in err.getvalue()  # the progress bar
    assert named(walk("raw", columns=True)) == expected
    # Rebuilding again (over a full projection) changes nothing; progress is reported per batch.
    calls: list[tuple[int, int]] = []
    assert graph_backend.backend.rebuild(progress=lambda done, total: calls.append((done, total))) == 2
    assert calls[0] == (0, 2) and calls[-1] == (2, 2)
    assert graph_backend.relationships() == {"FLOWS": 2, "COLUMN_FLOWS": 1}


def test_when_neo4j_is_down_ingestion_succeeds_and_the_sync_retries(emit, django_capture_on_commit_callbacks):
    with override_settings(STEWARD_GRAPH_BACKEND="neo4j", STEWARD_GRAPH_OPTIONS=UNREACHABLE):
        backend = get_backend()
        # Ingestion commits and queues the sync (the broker is mocked: eager retries would spin in-process).
        with mock.patch.object(graph_sync_task, "delay") as delay:
            with django_capture_on_commit_callbacks(execute=True):
                results = emit(complete("load", ["raw"], ["clean"]))
        assert [r.status for r in results] == ["applied"]
        assert Edge.objects.filter(source=ds("raw"), target=ds("clean"), valid_to__isnull=True).exists()
        job_ids = [str(Job.objects.get(name="load").pk)]
        delay.assert_called_once_with(job_ids)
        # Run as a worker would (not eager, third retry): the task asks Celery to retry later, backing off.
        graph_sync_task.push_request(is_eager=False, retries=3)
        try:
            with mock.patch.object(graph_sync_task, "retry", return_value=Retry("retry", when=8)) as retry:
                with pytest.raises(Retry):
                    graph_sync_task.run(job_ids)
        finally:
            graph_sync_task.pop_request()
        assert isinstance(retry.call_args.kwargs["exc"], BackendUnavailable)
        assert retry.call_args.kwargs["countdown"] == 8
        # In-process (eager) runs cannot wait: they log what to do instead of spinning.
        with mock.patch("lineage.tasks.logger") as log:
            assert graph_sync_task.apply(args=[job_ids]).get() == 0
        assert "graph_rebuild" in log.warning.call_args.args[0]
        # Called directly, it raises.
        with pytest.raises(BackendUnavailable, match="127.0.0.1:1"):
            graph_sync_task(job_ids)
        with pytest.raises(BackendUnavailable):
            backend.ping()
        with pytest.raises(BackendUnavailable):
            walk("raw")
        with pytest.raises(BackendUnavailable):
            backend.rebuild()
        with pytest.raises(CommandError, match=r"(?s)unreachable at bolt://127.0.0.1:1.*neo4j.sh start"):
            call_command("graph_rebuild", stdout=StringIO(), stderr=StringIO())
        backend.close()


def test_ping_answers_when_neo4j_is_up(graph_backend):
    graph_backend.backend.ping()


# --- both backends agree with a plain breadth-first reading of the rule ---------------------------------


def reference_walk(root: UUID, direction: str, depth: int, at_time: datetime | None) -> Walk:
    """The rule, straight from the tables: from each dataset at hop < depth, its edges active at ``at``."""

    def active(valid_from: datetime, valid_to: datetime | None) -> bool:
        if at_time is None:
            return valid_to is None
        return valid_from <= at_time and (valid_to is None or at_time < valid_to)

    rows = Edge.objects.values_list("source_id", "target_id", "job_id", "valid_from", "valid_to")
    edges = [(s, t, j) for s, t, j, vf, vt in rows if active(vf, vt)]
    result = Walk(root=root, datasets={root: 0})
    for way in ("downstream", "upstream") if direction == "both" else (direction,):
        out = defaultdict(list)
        for s, t, j in edges:
            out[s if way == "downstream" else t].append((t if way == "downstream" else s, (s, t, j)))
        hops, frontier = {root: 0}, [root]
        for level in range(depth):
            following = []
            for near in frontier:
                for far, edge in out[near]:
                    result.edges.add(edge)
                    if far not in hops:
                        hops[far] = level + 1
                        following.append(far)
            frontier = following
        for d, hop in hops.items():
            result.datasets[d] = min(hop, result.datasets.get(d, hop))
    for s, sf, t, tf, j, vf, vt in ColumnEdge.objects.values_list(
        "source_dataset_id", "source_field", "target_dataset_id", "target_field", "job_id", "valid_from", "valid_to"
    ):
        if active(vf, vt) and (s, t, j) in result.edges:
            result.column_edges.add((s, sf, t, tf, j))
    return result


@pytest.mark.parametrize("seed", [1, 2])
def test_walks_match_the_rule_on_a_random_graph(lineage, graph_backend, seed):
    rng = random.Random(seed)
    names = [f"d{i}" for i in range(12)]
    events, minutes = [], set()
    for j in range(10):
        for _ in range(rng.randint(1, 3)):
            minute = rng.randint(0, 30)
            minutes.add(minute)
            inputs = rng.sample(names, rng.randint(1, 3))
            outputs = rng.sample(names, rng.randint(1, 2))  # may include an input: a self-loop
            columns = {
                o: {"c0": [(rng.choice(inputs), f"c{rng.randint(0, 2)}")]} for o in outputs if rng.random() < 0.6
            }
            if rng.random() < 0.15:  # a run reading nothing ends the job's edges
                events.append(run_event(f"job{j}", "COMPLETE", outputs=[dataset(outputs[0])], when=at(minute)))
            else:
                events.append(complete(f"job{j}", inputs, outputs, when=at(minute), columns=columns))
    rng.shuffle(events)  # out of order: jobs' histories are rebuilt
    lineage(*events)
    assert Edge.objects.exclude(valid_to=None).exists() and ColumnEdge.objects.exists()
    times = [None, T0 - timedelta(minutes=1)] + [T0 + timedelta(minutes=m) for m in sorted(minutes)[::4]]
    times.append(T0 + timedelta(minutes=7.5))
    backend = get_backend()
    roots = dict(ds_names())
    checked = 0
    for root in sorted(roots, key=roots.get):
        for direction in ("downstream", "upstream", "both"):
            for depth in (0, 1, 3):
                for when in times:
                    got = backend.walk(root=root, direction=direction, depth=depth, columns=True, at=when, limit=100)
                    want = reference_walk(root, direction, depth, when)
                    where = (roots[root], direction, depth, when)
                    assert got.root == root, where
                    assert got.datasets == want.datasets, where
                    assert got.edges == want.edges, where
                    assert got.column_edges == want.column_edges, where
                    assert not got.truncated, where
                    checked += bool(want.edges)
                    if direction == "both" or len(want.datasets) < 3:
                        continue
                    # With a limit: the nearest datasets, their depths, and only edges between them.
                    cut = backend.walk(root=root, direction=direction, depth=depth, columns=False, at=when, limit=3)
                    assert cut.truncated == (len(want.datasets) > 3), where
                    assert len(cut.datasets) == 3, where
                    assert all(want.datasets[d] == hop for d, hop in cut.datasets.items()), where
                    left_out = set(want.datasets) - set(cut.datasets)
                    assert max(cut.datasets.values()) <= min((want.datasets[d] for d in left_out), default=9), where
                    assert cut.edges == {e for e in want.edges if {e[0], e[1]} <= set(cut.datasets)}, where
    assert checked > 100
