"""Property-based: the incremental propagation engine agrees with an obviously-correct reference.

Random sequences of operations (dataset edges, column edges, direct tags on datasets and columns,
declassifications, a tag's ``propagates`` flag and implied level, direct classification) run against the
real engine (ingestion, catalog services, ``drain``) and against a reference that recomputes everything
from scratch with networkx: per tag, plain reachability over a graph of *slots* (a dataset, or one of its
columns) built from the rules of docs/architecture.md §4:

- along an active edge u→v of job j that does not block the tag: if j has column edges from u to v, each
  column edge c→c' links slot (u, c) to (v, c') and (u, "") links to (v, ""); without column edges every
  slot of u links to (v, "");
- a slot carries its direct tags and every propagating tag reachable from a direct assignment of it;
- effective classification = max(direct level, implied levels of every tag in any of its slots), else C1.

The universe is tiny (4 datasets, 2 columns each, 2 jobs per ordered pair) so cycles, diamonds, self-loops
and parallel jobs are frequent.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import networkx as nx
import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import services as catalog
from catalog.classification import max_level
from catalog.models import Dataset, Tag, TagAssignment
from lineage import propagation
from lineage.models import (
    ColumnEdge,
    DatasetVersion,
    Declassification,
    Edge,
    Job,
    LineageEvent,
    PropagatedTag,
    PropagationChange,
    Run,
)
from lineage.propagation import drain, note_change, recompute
from lineage.selectors import dataset_explain
from lineage.services.declassify import declassification_decide, declassification_request, declassification_revoke
from lineage.services.ingest import ingest, job_end_edges
from tests.conftest import make_producer
from tests.lineage.events import NS, PRODUCER, dataset, run_event

pytestmark = pytest.mark.django_db

DATASETS = ("p0", "p1", "p2", "p3")
COLUMNS = ("a", "b")
SLOT_FIELDS = ("", *COLUMNS)
# key -> (implied level, propagates)
TAGS = {"t-email": ("C3", True), "t-secret": ("C4", True), "t-note": ("C2", False)}
LEVELS = ("C1", "C2", "C3", "C4")

Slot = tuple[str, str]  # (dataset name, field or "")
JobKey = tuple[str, str, int]  # (source, target, parallel job number)


def job_name(key: JobKey) -> str:
    return f"e_{key[0]}_{key[1]}_{key[2]}"


# --- the reference ------------------------------------------------------------------------------------


@dataclass
class Decl:
    job: JobKey
    tags: frozenset[str]
    pk: UUID
    active: bool  # approved and not revoked


@dataclass
class Reference:
    direct: set[tuple[str, str, str]] = field(default_factory=set)  # (dataset, field or "", tag)
    level: dict[str, str] = field(default_factory=dict)  # direct dataset classification
    # A job's current lineage: None (no edge) or its column edges {(input column, output column)} (may be empty).
    jobs: dict[JobKey, frozenset[tuple[str, str]] | None] = field(default_factory=dict)
    decls: list[Decl] = field(default_factory=list)
    propagates: dict[str, bool] = field(default_factory=lambda: {k: p for k, (_, p) in TAGS.items()})
    implied: dict[str, str] = field(default_factory=lambda: {k: lvl for k, (lvl, _) in TAGS.items()})

    def blocked(self, job: JobKey) -> set[str]:
        return {t for d in self.decls if d.active and d.job == job for t in d.tags}

    def graph(self, tag: str) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from((d, f) for d in DATASETS for f in SLOT_FIELDS)
        for (u, v, k), cols in self.jobs.items():
            if cols is None or tag in self.blocked((u, v, k)):
                continue
            g.add_edge((u, ""), (v, ""))
            if cols:
                g.add_edges_from(((u, c), (v, c2)) for c, c2 in cols)
            else:
                g.add_edges_from(((u, c), (v, "")) for c in COLUMNS)
        return g

    def slot_tags(self) -> dict[Slot, set[str]]:
        out: dict[Slot, set[str]] = defaultdict(set)
        for d, f, t in self.direct:
            out[(d, f)].add(t)
        for tag in TAGS:
            if not self.propagates[tag]:
                continue
            g = self.graph(tag)
            for d, f, t in self.direct:
                if t == tag:
                    for slot in nx.descendants(g, (d, f)):
                        out[slot].add(tag)
        return {slot: tags for slot, tags in out.items() if tags}

    def crossing(self) -> list[tuple[JobKey, str]]:
        """(job, tag) pairs where a declassification would bite: the tag crosses the job now, and blocking it
        there changes some slot's tags (else every pair where it crosses)."""
        carried = self.slot_tags()
        pairs = []
        for key, cols in sorted(self.jobs.items()):
            if cols is None:
                continue
            mapped = ({""} | {c for c, _ in cols}) if cols else set(SLOT_FIELDS)
            tags = {t for f in mapped for t in carried.get((key[0], f), ()) if self.propagates[t]}
            pairs += [(key, t) for t in sorted(tags - self.blocked(key))]
        biting = []
        for key, tag in pairs:
            self.decls.append(Decl(key, frozenset({tag}), UUID(int=0), True))
            if self.slot_tags() != carried:
                biting.append((key, tag))
            self.decls.pop()
        return biting or pairs

    def effective(self) -> dict[str, str]:
        carried: dict[str, set[str]] = defaultdict(set)
        for (d, _), tags in self.slot_tags().items():
            carried[d] |= tags
        return {d: max_level([self.level.get(d, ""), *(self.implied[t] for t in carried[d])]) for d in DATASETS}


# --- the engine's state ---------------------------------------------------------------------------------


def observed() -> tuple[dict[Slot, set[str]], dict[str, str]]:
    names = dict(Dataset.objects.filter(namespace=NS).values_list("pk", "name"))
    out: dict[Slot, set[str]] = defaultdict(set)
    for d, f, key in TagAssignment.objects.filter(dataset_id__in=names).values_list(
        "dataset_id", "field__name", "tag__key"
    ):
        out[(names[d], f or "")].add(key)
    for d, f, key in PropagatedTag.objects.filter(valid_to__isnull=True, dataset_id__in=names).values_list(
        "dataset_id", "field", "tag__key"
    ):
        out[(names[d], f)].add(key)
    levels = {
        name: level
        for name, level in Dataset.objects.filter(namespace=NS).values_list("name", "effective_classification")
    }
    return dict(out), levels


def check_provenance(ref: Reference) -> None:
    """Every open propagated row came over a current, unblocked hop from a slot carrying the tag, and following
    ``via`` reaches its origin, a direct assignment (what ``explain`` walks)."""
    names = dict(Dataset.objects.filter(namespace=NS).values_list("pk", "name"))
    jobs = dict(Job.objects.values_list("pk", "name"))
    rows = {}
    for d, f, tag, od, of, vd, vf, job in PropagatedTag.objects.filter(valid_to__isnull=True).values_list(
        "dataset_id", "field", "tag__key", "origin_dataset_id", "origin_field", "via_dataset_id", "via_field", "job_id"
    ):
        rows[(names[d], f, tag)] = ((names[od], of), (names[vd], vf), jobs[job])
    for (d, f, tag), (origin, (vd, vf), job) in rows.items():
        key = next(k for k in ref.jobs if job_name(k) == job)
        cols = ref.jobs[key]
        assert cols is not None, f"{tag}@{d}.{f} came through {job}, which has no current edge"
        assert (key[0], key[1]) == (vd, d), f"{tag}@{d}.{f} via {vd} through {job}"
        assert tag not in ref.blocked(key), f"{tag}@{d}.{f} crossed {job}, which blocks it"
        if cols:
            assert (vf, f) in cols or (vf, f) == ("", ""), f"{tag}@{d}.{f} from {vd}.{vf} through {job}: {cols}"
        else:
            assert f == "", f"{tag}@{d}.{f} through {job}, which has no column edges"
        slot, hops = (d, f), 0
        while (slot[0], slot[1]) != origin:
            assert (slot[0], slot[1], tag) in rows, f"{tag}: the path from {d}.{f} breaks at {slot}"
            slot = rows[(slot[0], slot[1], tag)][1]
            hops += 1
            assert hops <= len(rows), f"{tag}: the path from {d}.{f} loops"
        assert (origin[0], origin[1], tag) in ref.direct, f"{tag}@{d}.{f}: origin {origin} is no direct assignment"


def assert_agrees(ref: Reference, context: object = "") -> None:
    slots, levels = observed()
    expected = ref.slot_tags()
    if slots != expected:
        diff = {
            s: {"engine": sorted(slots.get(s, ())), "reference": sorted(expected.get(s, ()))}
            for s in sorted(set(slots) | set(expected))
            if slots.get(s, set()) != expected.get(s, set())
        }
        pytest.fail(f"tag sets differ after {context}: {diff}\nreference: {ref}")
    assert levels == ref.effective(), f"effective classification differs after {context}\nreference: {ref}"
    assert not PropagationChange.objects.exists()
    check_provenance(ref)


# --- operations -----------------------------------------------------------------------------------------

ds_st = st.sampled_from(DATASETS)
col_st = st.sampled_from(COLUMNS)
k_st = st.integers(0, 1)
tag_st = st.sampled_from(sorted(TAGS))
index_st = st.integers(0, 50)
job_st = st.tuples(ds_st, ds_st, k_st)
cols_st = st.frozensets(st.tuples(col_st, col_st), max_size=2)
field_st = st.sampled_from(("", "", *COLUMNS))  # dataset level twice as likely as either column
direct_st = st.tuples(ds_st, field_st, tag_st)

# A starting state built in one go (one batch of events, a few tags), so that operations meet structure.
initial_states = st.fixed_dictionaries(
    {
        "jobs": st.dictionaries(job_st, cols_st, min_size=2, max_size=7),
        "tags": st.sets(direct_st, min_size=1, max_size=4),
    }
)

approve_st = st.sampled_from([True, True, False])
decl_tags_st = st.frozensets(tag_st, min_size=1, max_size=2)

operations = st.one_of(
    # structure (weighted up, so that tags have somewhere to go)
    *[st.tuples(st.just("edge"), ds_st, ds_st, k_st)] * 2,
    st.tuples(st.just("extend"), index_st, ds_st, k_st),  # an edge out of a dataset that carries a tag
    *[st.tuples(st.just("col"), ds_st, col_st, ds_st, col_st, k_st)] * 2,
    st.tuples(st.just("unedge"), index_st, st.booleans()),
    st.tuples(st.just("uncol"), index_st),
    *[st.tuples(st.just("tag"), ds_st, field_st, tag_st)] * 2,
    st.tuples(st.just("untag"), index_st),
    # a declassification of a tag crossing a job now (by index), or of any tags on any job (run it first
    # without lineage when it never ran)
    *[st.tuples(st.just("declassify"), index_st, approve_st)] * 2,
    st.tuples(st.just("declassify"), job_st, decl_tags_st, approve_st),
    st.tuples(st.just("revoke"), index_st),
    st.tuples(st.just("classify"), ds_st, st.sampled_from([None, *LEVELS])),
    st.tuples(st.just("flip"), tag_st),
    st.tuples(st.just("relevel"), tag_st, st.sampled_from(["", "C2", "C3", "C4"])),
)


class World:
    """Applies operations to the engine and to the reference."""

    def __init__(self, steward, privacy_officer, admin) -> None:  # noqa: ANN001
        self.steward, self.privacy_officer, self.admin = make_producer(steward, NS, "etl"), privacy_officer, admin
        self.ref = Reference()
        self.clock = timezone.now()
        self.reset()

    def when(self) -> str:
        """Event times: real time, strictly increasing (so a job's later run is also later than its end)."""
        self.clock = max(timezone.now(), self.clock + timedelta(microseconds=1))
        return self.clock.isoformat()

    def reset(self) -> None:
        PropagationChange.objects.all().delete()
        PropagatedTag.objects.all().delete()
        ColumnEdge.objects.all().delete()
        Edge.objects.all().delete()
        Declassification.objects.all().delete()
        DatasetVersion.objects.all().delete()
        LineageEvent.objects.all().delete()
        Run.objects.all().delete()
        Job.objects.all().delete()
        Dataset.objects.filter(namespace=NS).delete()
        for key, (implied, propagates) in TAGS.items():
            Tag.objects.filter(key=key).update(implied_level=implied, propagates=propagates)
        when = self.when()
        ingest(
            actor=self.steward,
            events=[
                {"eventTime": when, "producer": PRODUCER, "dataset": dataset(name, fields=list(COLUMNS))}
                for name in DATASETS
            ],
            batch=True,
        )

    def setup(self, initial: dict) -> None:
        """Several jobs in one batch of events, then a few direct tags, then one drain."""
        events = []
        for key, cols in sorted(initial["jobs"].items()):
            self.ref.jobs[key] = cols
            events.append(self.job_event(key, cols))
        if events:
            ingest(actor=self.steward, events=events, batch=True)
        for name, f, tag in sorted(initial["tags"]):
            self.apply(("tag", name, f, tag))
        drain()

    def ds(self, name: str) -> Dataset:
        return Dataset.objects.get(namespace=NS, name=name)

    def job_event(self, key: JobKey, cols: frozenset[tuple[str, str]] | None) -> dict:
        """A COMPLETE run of the job: u→v (with these column edges), or no edge at all for ``None``."""
        u, v, _ = key
        if cols is None:
            return run_event(job_name(key), "COMPLETE", inputs=[], outputs=[dataset(v)], when=self.when())
        columns: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for c, c2 in sorted(cols):
            columns[c2].append((u, c))
        return run_event(
            job_name(key),
            "COMPLETE",
            inputs=[dataset(u)],
            outputs=[dataset(v, columns=dict(columns))],
            when=self.when(),
        )

    def emit_job(self, key: JobKey, cols: frozenset[tuple[str, str]] | None) -> None:
        ingest(actor=self.steward, events=[self.job_event(key, cols)])

    def apply(self, op: tuple) -> bool:
        """Apply ``op``; False when it does not apply to the current state (nothing happened)."""
        ref = self.ref
        kind = op[0]
        if kind == "edge":
            key = (op[1], op[2], op[3])
            ref.jobs[key] = frozenset()
            self.emit_job(key, frozenset())
        elif kind == "extend":  # prefer a dataset that carries a tag through lineage, not directly
            carried = ref.slot_tags()
            direct = {(d, f, t) for d, f, t in ref.direct}
            through = sorted({d for (d, f), tags in carried.items() for t in tags if (d, f, t) not in direct})
            carriers = through or sorted({d for (d, _), tags in carried.items() if tags})
            if not carriers:
                return False
            return self.apply(("edge", carriers[op[1] % len(carriers)], op[2], op[3]))
        elif kind == "unedge":
            live = sorted(k for k, cols in ref.jobs.items() if cols is not None)
            if not live:
                return False
            key = live[op[1] % len(live)]
            ref.jobs[key] = None
            if op[2]:
                job = Job.objects.get(namespace="etl", name=job_name(key))
                job_end_edges(actor=self.steward, job_id=job.pk)
            else:
                self.emit_job(key, None)
        elif kind == "col":
            _, u, c, v, c2, k = op
            key = (u, v, k)
            ref.jobs[key] = (ref.jobs.get(key) or frozenset()) | {(c, c2)}
            self.emit_job(key, ref.jobs[key])
        elif kind == "uncol":
            live = sorted((k, col) for k, cols in ref.jobs.items() if cols for col in cols)
            if not live:
                return False
            key, col = live[op[1] % len(live)]
            ref.jobs[key] = ref.jobs[key] - {col}
            self.emit_job(key, ref.jobs[key])
        elif kind == "tag":
            _, name, f, tag = op
            ref.direct.add((name, f, tag))
            catalog.dataset_tag_add(actor=self.steward, dataset=self.ds(name), key=tag, field_name=f or None)
        elif kind == "untag":
            if not ref.direct:
                return False
            name, f, tag = sorted(ref.direct)[op[1] % len(ref.direct)]
            ref.direct.discard((name, f, tag))
            catalog.dataset_tag_remove(actor=self.steward, dataset=self.ds(name), key=tag, field_name=f or None)
        elif kind == "declassify":
            if len(op) == 3:
                crossing = ref.crossing()
                if not crossing:
                    return False
                key, tag = crossing[op[1] % len(crossing)]
                tags, approve = frozenset({tag}), op[2]
            else:
                _, key, tags, approve = op
            job = Job.objects.filter(namespace="etl", name=job_name(key)).first()
            if job is None:  # a job is known once it has run: run it without lineage first
                ref.jobs[key] = None
                self.emit_job(key, None)
                job = Job.objects.get(namespace="etl", name=job_name(key))
            decl = declassification_request(
                actor=self.privacy_officer, job_id=job.pk, tag_keys=sorted(tags), justification="aggregated"
            )
            declassification_decide(actor=self.steward, pk=decl.pk, approve=approve, reason="ok")
            ref.decls.append(Decl(key, tags, decl.pk, approve))
        elif kind == "revoke":
            active = [d for d in ref.decls if d.active]
            if not active:
                return False
            decl = active[op[1] % len(active)]
            decl.active = False
            declassification_revoke(actor=self.steward, pk=decl.pk, reason="the aggregation changed")
        elif kind == "classify":
            _, name, level = op
            ref.level[name] = level or ""
            catalog.dataset_classify(actor=self.steward, dataset=self.ds(name), level=level)
        elif kind == "flip":
            tag = op[1]
            ref.propagates[tag] = not ref.propagates[tag]
            catalog.tag_update(actor=self.admin, tag=Tag.objects.get(key=tag), propagates=ref.propagates[tag])
        elif kind == "relevel":
            _, tag, level = op
            ref.implied[tag] = level
            catalog.tag_update(actor=self.admin, tag=Tag.objects.get(key=tag), implied_level=level)
        else:  # pragma: no cover
            raise AssertionError(op)
        return True


@pytest.fixture
def prop_tags(admin_user):
    for key, (implied, propagates) in TAGS.items():
        catalog.tag_create(actor=admin_user, key=key, implied_level=implied, propagates=propagates)


PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(initial=initial_states, ops=st.lists(operations, min_size=6, max_size=16))
def test_engine_matches_reference_after_every_step(initial, ops, prop_tags, data_steward, privacy_officer, admin_user):
    world = World(data_steward, privacy_officer, admin_user)
    world.setup(initial)
    assert_agrees(world.ref, "the initial state")
    for i, op in enumerate(ops):
        if world.apply(op):
            drain()
            assert_agrees(world.ref, f"step {i}: {op}")
    # A drain with nothing to do changes nothing.
    rows = PropagatedTag.objects.count()
    assert drain().changes == 0
    assert PropagatedTag.objects.count() == rows


@settings(PROPERTY_SETTINGS, max_examples=50)
@given(initial=initial_states, ops=st.lists(operations, min_size=6, max_size=24), every=st.integers(2, 8))
def test_engine_matches_reference_when_changes_coalesce(
    initial, ops, every, prop_tags, data_steward, privacy_officer, admin_user
):
    """Several operations, then one drain over all their changes (``every`` operations, and at the end)."""
    world = World(data_steward, privacy_officer, admin_user)
    world.setup(initial)
    for i, op in enumerate(ops, start=1):
        world.apply(op)
        if i % every == 0 or i == len(ops):
            pending = PropagationChange.objects.count()
            assert drain().changes == pending
            assert_agrees(world.ref, f"operations {ops[max(0, i - every) : i]}")
    # Recomputing everything again from scratch keeps the same tags.
    before = observed()
    note_change(Dataset.objects.filter(namespace=NS).values_list("pk", flat=True))
    drain()
    assert observed() == before
    # Every propagated tag explains itself back to a direct assignment.
    for row in PropagatedTag.objects.filter(valid_to__isnull=True).select_related("dataset", "tag")[:10]:
        why = dataset_explain(user=admin_user, pk=row.dataset_id, tag=row.tag.key, field=row.field or None)
        assert why["path"], why
        assert (why["source"]["name"], why["source"]["field"] or "", row.tag.key) in world.ref.direct
        assert why["path"][-1]["to"]["name"] == row.dataset.name


# --- crashes and idempotency ----------------------------------------------------------------------------


def _pipeline(world: World) -> None:
    for op in [
        ("edge", "p0", "p1", 0),
        ("col", "p1", "a", "p2", "b", 0),
        ("edge", "p2", "p3", 0),
        ("edge", "p3", "p1", 1),  # a cycle p1 → p2 → p3 → p1
        ("tag", "p0", "", "t-secret"),
        ("tag", "p1", "a", "t-email"),
    ]:
        world.apply(op)


def test_a_crash_inside_recompute_leaves_the_changes_pending(prop_tags, data_steward, privacy_officer, admin_user):
    world = World(data_steward, privacy_officer, admin_user)
    _pipeline(world)
    pending = list(PropagationChange.objects.values_list("pk", flat=True))
    assert pending
    roots = {UUID(d) for c in PropagationChange.objects.all() for d in c.datasets}

    with pytest.raises(RuntimeError), transaction.atomic():
        result = recompute(roots)
        assert result.added > 0  # it did write rows ...
        raise RuntimeError("worker killed")  # ... but the transaction never committed
    assert list(PropagationChange.objects.values_list("pk", flat=True)) == pending
    assert not PropagatedTag.objects.exists()

    drain()
    assert_agrees(world.ref, "the drain after the crash")


def test_a_crash_inside_drain_rolls_back_and_a_later_drain_converges(
    prop_tags, data_steward, privacy_officer, admin_user, monkeypatch
):
    world = World(data_steward, privacy_officer, admin_user)
    _pipeline(world)
    drain()
    assert_agrees(world.ref, "the pipeline")
    rows_before = set(PropagatedTag.objects.values_list("pk", "valid_to"))

    world.apply(("untag", 0))  # removes one of the two direct tags
    world.apply(("edge", "p3", "p0", 0))
    world.apply(("tag", "p3", "b", "t-email"))
    pending = list(PropagationChange.objects.values_list("pk", flat=True))
    real = propagation.recompute

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("worker killed after recompute, before the changes were deleted")

    monkeypatch.setattr(propagation, "recompute", crash)
    with pytest.raises(RuntimeError):
        drain()
    assert list(PropagationChange.objects.values_list("pk", flat=True)) == pending
    assert set(PropagatedTag.objects.values_list("pk", "valid_to")) == rows_before

    monkeypatch.setattr(propagation, "recompute", real)
    assert drain().changes == len(pending)
    assert_agrees(world.ref, "the drain after the crash")


def test_draining_twice_or_replaying_a_change_writes_nothing_new(prop_tags, data_steward, privacy_officer, admin_user):
    world = World(data_steward, privacy_officer, admin_user)
    _pipeline(world)
    first = drain()
    assert first.added > 0
    rows = set(PropagatedTag.objects.values_list("pk", "valid_to"))

    again = drain()
    assert (again.changes, again.added, again.ended) == (0, 0, 0)
    assert set(PropagatedTag.objects.values_list("pk", "valid_to")) == rows

    # At-least-once delivery: the same change applied again finds nothing to do.
    note_change([world.ds("p0").pk, world.ds("p1").pk])
    replay = drain()
    assert (replay.changes, replay.added, replay.ended) == (1, 0, 0)
    assert set(PropagatedTag.objects.values_list("pk", "valid_to")) == rows
    assert_agrees(world.ref, "the replay")
