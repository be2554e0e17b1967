"""OpenLineage ingestion: events → jobs, runs, catalog datasets, dataset versions and lineage edges.

Idempotent (an event is keyed by the SHA-256 of its canonical JSON), order-independent (a run's state is
set by its latest event, whatever the arrival order; a job's edges are those of its latest completed run),
and atomic (a call writes all of its events or none).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Dataset, ModelVersion
from catalog.services import dataset_producer_facts_apply, datasets_ensure
from catalog.services.popularity import popularity_record
from ledger import audit
from lineage import permissions
from lineage.actions import JOB_END_EDGES
from lineage.facets import event_trim
from lineage.graph import sync_later
from lineage.models import (
    TERMINAL_STATES,
    ColumnEdge,
    DatasetVersion,
    Edge,
    Job,
    LineageEvent,
    Run,
    RunState,
)
from lineage.openlineage import ParsedEvent, SchemaCache, parse_event
from lineage.propagation import note_change
from lineage.services.models import model_versions_refresh
from lineage.services.producers import Authorization, lineage_authorize, lineage_right_check, namespace_claims_write
from steward import metrics
from steward.bulk import insert_rows, pipelined, update_column, update_rows
from steward.canonical import canonical_text, digest_text, legacy_digest
from steward.errors import NotFound, PermissionDenied, ProblemCollector, ValidationFailed
from steward.identity import Actor
from steward.retry import retry_races

__all__ = ["Checked", "IngestResult", "MAX_BATCH", "check", "ingest", "job_end_edges"]

MAX_BATCH = 1_000
# Calls of at most this many new events send their final writes in one round trip (``steward.bulk.pipelined``);
# bigger ones write by COPY, which cannot be pipelined.
PIPELINE_EVENTS = 20
# What an event changes on its run.
_RUN_STATE = [
    "state",
    "state_at",
    "started_at",
    "ended_at",
    "facets",
    "inputs",
    "outputs",
    "column_edges",
    "edges_from",
]
# At equal event times, a terminal state wins over RUNNING, which wins over START.
_STATE_RANK = {"START": 0, "OTHER": 0, "RUNNING": 1, "COMPLETE": 2, "ABORT": 2, "FAIL": 2}


@dataclass
class IngestResult:
    index: int
    status: str  # "applied" | "duplicate" | "queued" (queued ingestion: applied later by the inbox drain)
    kind: str
    run_id: str | None = None
    # Facets Steward does not use, dropped from the stored event because it was too big (paths in the event).
    dropped_facets: list[str] = field(default_factory=list)


def _digests(
    events: list[Any], known: list[tuple[str, str]] | None = None
) -> tuple[list[str], dict[str, str], list[str]]:
    """Each event's key (``steward.canonical.digest``), for events with non-ASCII text the key it was stored
    under before ``steward.canonical`` (non-ASCII escaped) -> its key now (a resent old event is still a
    duplicate), and each event's canonical text (stored as is when the event needs no trimming). ``known``: each
    event's key and canonical text, computed when it was received (the inbox keeps both), not computed again."""
    keys: list[str] = []
    legacy: dict[str, str] = {}
    texts: list[str] = []
    for i, data in enumerate(events):
        if known is not None:
            current, text = known[i]
        else:
            text = canonical_text(data)
            current = digest_text(text)
        older = legacy_digest(data, text)
        keys.append(current)
        texts.append(text)
        if older is not None:
            legacy[older] = current
    return keys, legacy, texts


def _trim(data: Any, text: str, limit: int) -> tuple[Any, list[str]]:
    """``facets.event_trim``, measuring the event by its canonical text (the same bytes) when it fits."""
    if not isinstance(data, dict) or len(text.encode()) <= limit:
        return data, []
    return event_trim(data, limit)


@dataclass
class Checked:
    """Events that passed ``check``: their keys, canonical texts, what is stored of each and the parsed events."""

    digests: list[str]
    legacy: dict[str, str]
    texts: list[str]
    stored: list[str]
    dropped: list[list[str]]
    parsed: list[ParsedEvent]
    auth: Authorization


def check(
    *, actor: Actor, events: list[Any], batch: bool = False, known: list[tuple[str, str]] | None = None
) -> Checked:
    """Check the caller may produce lineage, validate every event (a 400 naming each problem; one invalid event
    refuses the call) and check each against the caller's namespaces (``producers.lineage_authorize``).
    ``known``: as ``_digests`` takes it."""
    lineage_right_check(actor)
    if batch and len(events) > MAX_BATCH:
        raise ValidationFailed.one("events", f"At most {MAX_BATCH} events per call; got {len(events)}.", "max_items")
    if known is not None and len(known) != len(events):
        raise ValueError("known: one (digest, canonical text) per event")
    digests, legacy, texts = _digests(events, known)  # of the event as sent, so a retry is a duplicate
    limit = settings.STEWARD_LINEAGE_STORED_EVENT_BYTES
    trimmed = [_trim(data, text, limit) for data, text in zip(events, texts, strict=True)]
    events = [data for data, _ in trimmed]
    # What is stored: an untrimmed event's canonical text as it is (not serialised again), a trimmed one's kept part.
    stored = [
        text if not dropped else canonical_text(data) for (data, dropped), text in zip(trimmed, texts, strict=True)
    ]
    problems = ProblemCollector()
    parsed: list[ParsedEvent] = []
    schemas: SchemaCache = {}
    for i, data in enumerate(events):
        sub = ProblemCollector()
        event = parse_event(data, sub, schemas)
        for p in sub.problems:
            problems.add(_where(p.field, i, batch), p.message, p.code)
        if event is not None:
            parsed.append(event)
    if problems.problems:  # the call is all or nothing: every event in it is refused
        metrics.ingestion("openlineage", refused=len(events))
    problems.raise_if_any()
    try:
        auth = lineage_authorize(actor=actor, events=parsed, where=lambda path, i: _where(path, i, batch))
    except PermissionDenied:
        metrics.ingestion("openlineage", refused=len(events))
        raise
    return Checked(digests, legacy, texts, stored, [dropped for _, dropped in trimmed], parsed, auth)


def ingest(
    *, actor: Actor, events: list[Any], batch: bool = False, known: list[tuple[str, str]] | None = None
) -> list[IngestResult]:
    """``check`` the events, then apply them in order in one transaction (``known``: as ``check`` takes it)."""
    checked = check(actor=actor, events=events, batch=batch, known=known)
    results = _apply(actor, checked.stored, checked.parsed, checked.digests, batch, checked.auth, checked.legacy)
    for result, dropped in zip(results, checked.dropped, strict=True):
        result.dropped_facets = dropped
    metrics.ingestion("openlineage", accepted=len(results))
    return results


def _where(field: str | None, index: int, batch: bool) -> str | None:
    """A problem's field path; in a batch, prefixed with the event's place (``events[3].run.runId``)."""
    if not batch:
        return field
    return f"events[{index}].{field}" if field else f"events[{index}]"


@retry_races
def _apply(
    actor: Actor,
    raw: list[str],
    parsed: list[ParsedEvent],
    digests: list[str],
    batch: bool = False,
    auth: Authorization | None = None,
    legacy: dict[str, str] | None = None,
) -> list[IngestResult]:
    legacy = legacy or {}
    stored = LineageEvent.objects.filter(digest__in=[*digests, *legacy]).values_list("digest", flat=True)
    seen = {legacy.get(key, key) for key in stored}
    todo: list[int] = []
    results: list[IngestResult] = []
    for i, (event, digest) in enumerate(zip(parsed, digests, strict=True)):
        run_id = str(event.run_id) if event.run_id else None
        if digest in seen:
            results.append(IngestResult(i, "duplicate", event.kind, run_id))
            continue
        seen.add(digest)
        todo.append(i)
        results.append(IngestResult(i, "applied", event.kind, run_id))
    if not todo:
        return results

    # All datasets the new events mention, in one go.
    items: list[tuple[str, str, list[dict[str, str]] | None]] = []
    for i in todo:
        event = parsed[i]
        for ref in [*event.inputs, *event.outputs, *([event.dataset] if event.dataset else [])]:
            items.append((ref.namespace, ref.name, ref.fields))
            if not ref.column_lineage:
                continue
            # The columns each source dataset is named with, one item per dataset (in the order first named).
            named: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
            for sources in ref.column_lineage.values():
                for ns, name, column, _ in sources:
                    columns = named.setdefault((ns, name), {})
                    if column not in columns:
                        columns[column] = {"name": column, "type": ""}
            items.extend((ns, name, list(columns.values())) for (ns, name), columns in named.items())
            if set(ref.column_lineage) - {""}:  # "" holds dataset-level inputs: no output field
                items.append((ref.namespace, ref.name, [{"name": f, "type": ""} for f in ref.column_lineage if f]))
    if auth is not None:
        namespace_claims_write(actor=actor, claims=auth.claims)
        items = _without_foreign_schemas(items, auth)
    ids = datasets_ensure(actor=actor, items=items)
    dataset_producer_facts_apply(actor=actor, facts=_meanings([parsed[i] for i in todo], ids, auth))

    jobs = _jobs([parsed[i] for i in todo if parsed[i].kind in ("run", "job")])
    # With the jobs locked, events a concurrent call applied meanwhile are seen, and count as duplicates here.
    for i in todo:  # a JobEvent declaring inputs and outputs: static lineage, as if a run completed then
        event = parsed[i]
        if event.kind == "job" and event.inputs and event.outputs:
            event.run_id = uuid.uuid5(jobs[(event.job_namespace, event.job_name)].pk, digests[i])
            event.event_type = RunState.COMPLETE
    # In one round trip: the events a concurrent call applied meanwhile, and the model versions these runs trained.
    late, training = _late_and_trained([digests[i] for i in todo], {rid for i in todo if (rid := parsed[i].run_id)})
    if late:
        for i in [i for i in todo if digests[i] in late]:
            results[i] = IngestResult(i, "duplicate", results[i].kind, results[i].run_id)
        todo = [i for i in todo if digests[i] not in late]
    run_ids = {rid for i in todo if (rid := parsed[i].run_id)}
    runs = {r.pk: r for r in Run.objects.select_for_update().filter(pk__in=run_ids)}
    existing_runs = set(runs)
    id_texts = {key: str(pk) for key, pk in ids.items()}  # runs list dataset ids as text
    writer = _EdgeWriter({job.pk for job in jobs.values()})
    rebuild: set[UUID] = set()
    touched_jobs: set[UUID] = set()
    roots: set[UUID] = set()
    versions: dict[tuple[UUID, str], tuple[Any, ...]] = {}
    event_rows = []
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    now = timezone.now()
    for i in todo:
        event = parsed[i]
        run = None
        if event.kind in ("run", "job"):
            job = jobs[(event.job_namespace, event.job_name)]
            if event.run_id is not None:
                try:
                    run = _run(runs, job, event, event.run_id, id_texts)
                except ValidationFailed as exc:  # the whole call rolls back
                    problem = exc.problems[0]
                    raise ValidationFailed.one(_where(problem.field, i, batch), problem.message, problem.code) from None
            change = _edge_change(run, job, event) if run is not None and job.pk not in rebuild else None
            if change is not None and run is not None:  # a change comes only with a run
                at, edge_sets = change
                in_order = (job.latest_completed_at is None or at >= job.latest_completed_at) and (
                    job.edges_ended_at is None or at >= job.edges_ended_at
                )
                if edge_sets is None:
                    rebuild.add(job.pk)
                elif in_order:
                    changed = writer.step(job.pk, run.pk, at, *edge_sets)
                    if job.latest_completed_at is None or at > job.latest_completed_at:
                        job.latest_completed_at = at
                        job.dirty = True
                    if changed:
                        roots |= changed
                        touched_jobs.add(job.pk)
                else:
                    rebuild.add(job.pk)
        _versions(versions, event, ids, run)
        event_rows.append(
            (digests[i], event.event_type, event.kind, event.event_time, run.pk if run else None, raw[i], now, actor_id)
        )
    # Every write from here on goes in one round trip when the call is small (a rebuild reads and counts rows as it
    # goes: not pipelined).
    with pipelined(len(todo) <= PIPELINE_EVENTS and not rebuild):
        _write(actor_id, now, runs, existing_runs, jobs, writer, rebuild, roots, touched_jobs, versions, event_rows)
    if roots:
        note_change(roots)
    sync_later(touched_jobs)
    trained = [pk for pk, run_id in training if run_id in runs]
    if trained:
        model_versions_refresh(trained)
    return results


def _write(
    actor_id: Any,
    now: datetime,
    runs: dict[UUID, Run],
    existing_runs: set[UUID],
    jobs: dict[tuple[str, str], Job],
    writer: _EdgeWriter,
    rebuild: set[UUID],
    roots: set[UUID],
    touched_jobs: set[UUID],
    versions: dict[tuple[UUID, str], tuple[Any, ...]],
    event_rows: list[tuple[Any, ...]],
) -> None:
    """The writes of ``_apply``: runs, jobs, edges (a job rebuilt from its runs adds to ``roots`` and
    ``touched_jobs``), dataset versions and the events themselves."""
    insert_rows(
        Run,
        ["id", "job", *_RUN_STATE, "created_at"],
        [
            [r.pk, r.job_id, *(getattr(r, c) for c in _RUN_STATE), now]
            for pk, r in runs.items()
            if pk not in existing_runs
        ],
    )
    update_rows(
        Run,
        _RUN_STATE,
        [[r.pk, *(getattr(r, c) for c in _RUN_STATE)] for pk, r in runs.items() if pk in existing_runs],
    )
    update_rows(
        Job,
        ["facets", "updated_at", "latest_completed_at"],
        [[j.pk, j.facets, j.updated_at, j.latest_completed_at] for j in jobs.values() if j.dirty],
    )
    writer.flush()
    for job_id in rebuild:
        roots |= _rebuild(Job.objects.get(pk=job_id))
        touched_jobs.add(job_id)
    insert_rows(
        DatasetVersion,
        ["dataset", "version", "run", "schema", "created_at"],
        list(versions.values()),
        ignore_conflicts=True,
    )
    # On PostgreSQL a run or job event cannot be stored already: its job is locked, and the late check under that
    # lock found the events a concurrent call stored (were it otherwise, the unique digest would fail the call and
    # ``retry_races`` run it again). So they go straight in (COPY, no conflict handling); a dataset event (no job to
    # lock) sent twice at once is recorded once. SQLite locks no rows: every event skips a conflict there.
    insert_rows(
        LineageEvent,
        ["digest", "event_type", "kind", "event_time", "run", "payload", "received_at", "received_by"],
        event_rows,
        ignore_conflicts=connection.vendor != "postgresql" or any(row[2] == "dataset" for row in event_rows),
    )


def _late_and_trained(digests: list[str], run_ids: set[UUID]) -> tuple[set[str], list[tuple[UUID, UUID]]]:
    """Which of ``digests`` are stored, and the model versions (id, training run) trained by ``run_ids``."""
    if connection.vendor != "postgresql":  # the embedded SQLite default: two plain queries
        stored = set(LineageEvent.objects.filter(digest__in=digests).values_list("digest", flat=True))
        models = ModelVersion.objects.filter(training_run_id__in=list(run_ids)).values_list("id", "training_run_id")
        return stored, [(pk, run) for pk, run in models if run is not None]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT digest, NULL::uuid, NULL::uuid FROM {LineageEvent._meta.db_table} WHERE digest = ANY(%s::text[]) "
            f"UNION ALL SELECT NULL, id, training_run_id FROM {ModelVersion._meta.db_table} "
            "WHERE training_run_id = ANY(%s::uuid[])",
            [digests, list(run_ids)],
        )
        rows = cursor.fetchall()
    return {d for d, _, _ in rows if d is not None}, [(pk, run) for d, pk, run in rows if d is None]


def _meanings(
    events: list[ParsedEvent], ids: dict[tuple[str, str], UUID], auth: Authorization | None
) -> dict[UUID, dict[str, Any]]:
    """What the facets that carry meaning say about each dataset, later events winning facet by facet; only
    for datasets in namespaces the caller is allowed on (an output elsewhere was refused by
    ``lineage_authorize``; an input's facts there are ignored, silently, like its schema)."""
    out: dict[UUID, dict[str, Any]] = {}
    for event in events:
        for ref in [*event.inputs, *event.outputs, *([event.dataset] if event.dataset else [])]:
            if ref.meaning and (auth is None or auth.allows(ref.namespace)):
                out.setdefault(ids[ref.identity], {}).update(ref.meaning)
    return out


def _without_foreign_schemas(
    items: list[tuple[str, str, list[dict[str, str]] | None]], auth: Authorization
) -> list[tuple[str, str, list[dict[str, str]] | None]]:
    """Inputs (and column-lineage sources) never change an existing dataset in a namespace the caller is not
    allowed on: their fields are dropped, silently, so the answer is the same whether the dataset exists."""
    foreign: dict[str, set[str]] = {}
    for ns, name, fields in items:
        if fields and not auth.allows(ns):
            foreign.setdefault(ns, set()).add(name)
    if not foreign:
        return items
    existing: set[tuple[str, str]] = set()
    for ns, names in foreign.items():
        existing |= set(Dataset.objects.filter(namespace=ns, name__in=names).values_list("namespace", "name"))
    return [(ns, name, None if (ns, name) in existing else fields) for ns, name, fields in items]


def _jobs(events: list[ParsedEvent]) -> dict[tuple[str, str], Job]:
    """The jobs these events name, created when missing, with their facets merged (in event order)."""
    keys = {(e.job_namespace, e.job_name) for e in events}
    found: dict[tuple[str, str], Job] = {}
    by_ns: dict[str, list[str]] = {}
    for ns, name in keys:
        by_ns.setdefault(ns, []).append(name)
    # Every job is locked, in one order, until commit: concurrent events of one job (and so of one run) apply one
    # after the other. A job created by a concurrent writer meanwhile is waited for, then locked here too.
    for ns, names in sorted(by_ns.items()):
        for job in Job.objects.select_for_update().filter(namespace=ns, name__in=names).order_by("name"):
            found[(job.namespace, job.name)] = job
    missing = sorted((ns, name) for ns, name in keys if (ns, name) not in found)
    Job.objects.bulk_create([Job(namespace=ns, name=name) for ns, name in missing], ignore_conflicts=True)
    for ns in sorted({ns for ns, _ in missing}):
        names = [name for n, name in missing if n == ns]
        for job in Job.objects.select_for_update().filter(namespace=ns, name__in=names).order_by("name"):
            found[(job.namespace, job.name)] = job
    now = timezone.now()
    for e in events:
        job = found[(e.job_namespace, e.job_name)]
        if e.job_facets and {**job.facets, **e.job_facets} != job.facets:
            job.facets = {**job.facets, **e.job_facets}
            job.updated_at = now
            job.dirty = True
    return found


class _EdgeWriter:
    """Steps jobs' current edges in memory for a whole batch, then writes the difference in a few queries."""

    def __init__(self, job_ids: set[UUID]) -> None:
        self.open: dict[UUID, dict[tuple[str, str], Any]] = {j: {} for j in job_ids}
        self.open_cols: dict[UUID, dict[tuple[str, str, str, str, str], Any]] = {j: {} for j in job_ids}
        # The open dataset and column edges of these jobs, in one round trip.
        rows: list[Any] = []
        if job_ids and connection.vendor != "postgresql":  # the embedded SQLite default: two plain queries
            open_edges = Edge.objects.filter(job_id__in=list(job_ids), valid_to__isnull=True)
            rows += [
                (False, pk, j, s, "", t, "", "")
                for pk, j, s, t in open_edges.values_list("id", "job_id", "source_id", "target_id")
            ]
            open_cols = ColumnEdge.objects.filter(job_id__in=list(job_ids), valid_to__isnull=True)
            rows += [
                (True, *r)
                for r in open_cols.values_list(
                    "id",
                    "job_id",
                    "source_dataset_id",
                    "source_field",
                    "target_dataset_id",
                    "target_field",
                    "transformation",
                )
            ]
        elif job_ids:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT false, id, job_id, source_id, '', target_id, '', '' FROM {Edge._meta.db_table} "
                    "WHERE job_id = ANY(%s::uuid[]) AND valid_to IS NULL UNION ALL "
                    "SELECT true, id, job_id, source_dataset_id, source_field, target_dataset_id, target_field, "
                    f"transformation FROM {ColumnEdge._meta.db_table} "
                    "WHERE job_id = ANY(%s::uuid[]) AND valid_to IS NULL",
                    [list(job_ids), list(job_ids)],
                )
                rows = cursor.fetchall()
        for column, pk, job, s, sf, t, tf, kind in rows:
            if column:
                self.open_cols[job][(str(s), sf, str(t), tf, kind)] = pk
            else:
                self.open[job][(str(s), str(t))] = pk
        self.new_edges: list[list[Any]] = []
        self.new_cols: list[list[Any]] = []
        self.ended: dict[int, datetime] = {}
        self.ended_cols: dict[int, datetime] = {}

    def step(self, job: UUID, run: UUID | None, at: datetime, edges: set, columns: set) -> set[UUID]:
        changed: set[UUID] = set()
        current, current_cols = self.open[job], self.open_cols[job]
        for key in [k for k in current if k not in edges]:
            ref = current.pop(key)
            if isinstance(ref, list):
                ref[5] = at  # opened earlier in this batch
            else:
                self.ended[ref] = at
            changed.add(UUID(key[1]))
        for col_key in [k for k in current_cols if k not in columns]:
            col_ref = current_cols.pop(col_key)
            if isinstance(col_ref, list):
                col_ref[7] = at
            else:
                self.ended_cols[col_ref] = at
            changed.add(UUID(col_key[2]))
        for s, t in edges:
            if (s, t) not in current:
                row = [job, s, t, run, at, None]
                self.new_edges.append(row)
                current[(s, t)] = row
                changed.add(UUID(t))
        for s, sf, t, tf, kind in columns:
            if (s, sf, t, tf, kind) not in current_cols:
                row = [job, s, sf, t, tf, kind, at, None]
                self.new_cols.append(row)
                current_cols[(s, sf, t, tf, kind)] = row
                changed.add(UUID(t))
        return changed

    def flush(self) -> None:
        update_column(Edge, "valid_to", self.ended)
        update_column(ColumnEdge, "valid_to", self.ended_cols)
        if self.new_edges:
            insert_rows(Edge, ["job", "source", "target", "run", "valid_from", "valid_to"], self.new_edges)
            # A job newly reading a dataset is a use of it (search ranks used datasets higher).
            popularity_record(kind="dataset", ids=[row[1] for row in self.new_edges], signal="lineage")
        if self.new_cols:
            insert_rows(
                ColumnEdge,
                [
                    "job",
                    "source_dataset",
                    "source_field",
                    "target_dataset",
                    "target_field",
                    "transformation",
                    "valid_from",
                    "valid_to",
                ],
                self.new_cols,
            )


def _key(item: Any) -> Any:
    """A hashable stand-in for a JSON value of a run's lists (ids, or lists of strings)."""
    return tuple(item) if isinstance(item, list) and all(isinstance(x, str) for x in item) else json.dumps(item)


def _union(current: list, extra: list) -> list:
    have = set(map(_key, current))
    out = list(current)
    for item in extra:
        key = _key(item)
        if key not in have:
            have.add(key)
            out.append(item)
    return out


def _run(runs: dict[UUID, Run], job: Job, event: ParsedEvent, run_id: UUID, ids: dict[tuple[str, str], str]) -> Run:
    """Merge ``event`` (whose run is ``run_id``) into its run (in ``runs``; written by the caller); ``ids``: the
    datasets' ids as text, by identity."""
    inputs = [ids[r.identity] for r in event.inputs]
    outputs = [ids[r.identity] for r in event.outputs]
    column_edges: list[list[str]] = []
    for ref in event.outputs:
        for out_field, sources in ref.column_lineage.items():
            for ns, name, in_field, kind in sources:
                source_id = ids[(ns, name)]
                column_edges.append([source_id, in_field, ids[ref.identity], out_field, kind])
                if source_id not in inputs:
                    inputs.append(source_id)  # column lineage implies dataset lineage
    run = runs.get(run_id)
    t = event.event_time
    if run is None:
        run = Run(id=run_id, job=job, state=event.event_type, state_at=t, facets=event.run_facets)
        run.inputs, run.outputs, run.column_edges = inputs, outputs, column_edges
        if event.event_type == RunState.START:
            run.started_at = t
        if event.event_type in TERMINAL_STATES:
            run.ended_at = t
        runs[run.pk] = run
        return run
    if run.job_id != job.pk:
        raise ValidationFailed.one("run.runId", f"Run {run.pk} belongs to job {run.job}, not {job}.", "conflict")
    run.inputs = _union(run.inputs, inputs)
    run.outputs = _union(run.outputs, outputs)
    run.column_edges = _union(run.column_edges, column_edges)
    run.facets = {**run.facets, **event.run_facets}
    if event.event_type == RunState.START:
        run.started_at = min(run.started_at, t) if run.started_at else t
    newer = (t, _STATE_RANK[event.event_type]) >= (run.state_at, _STATE_RANK[run.state])
    if newer:
        run.state, run.state_at = event.event_type, t
        if event.event_type in TERMINAL_STATES:
            run.ended_at = t
    return run


def _streaming(job: Job, event: ParsedEvent) -> bool:
    job_type = event.job_facets.get("jobType") or job.facets.get("jobType") or {}
    return isinstance(job_type, dict) and str(job_type.get("processingType", "")).upper() == "STREAMING"


def _edge_change(run: Run, job: Job, event: ParsedEvent) -> tuple[datetime, tuple[set[Any], set[Any]] | None] | None:
    """When and to what this event moves the job's edges, or ``None``.

    A completed run: to its edges at its end (as ever). A running one (RUNNING, or START of a STREAMING job,
    e.g. Flink, which never completes): to its edges at this event's time, recorded in ``run.edges_from``.
    A run whose edges were open and that then ends in ABORT or FAIL: to none, at its end. ``(t, None)``:
    only a rebuild of the job's history says (an opening event arriving after the run's end).
    """
    if run.state == RunState.COMPLETE:
        return _ended_at(run), _edge_sets(run)
    t = event.event_time
    opening = event.event_type == RunState.RUNNING or (event.event_type == RunState.START and _streaming(job, event))
    if opening and run.state in (RunState.ABORT, RunState.FAIL):
        # It ran before it ended (the events came out of order): open then, closed at its end.
        run.edges_from = min(run.edges_from, t) if run.edges_from else t
        return _ended_at(run), None
    if opening and run.state in (RunState.RUNNING, RunState.START):
        run.edges_from = min(run.edges_from, t) if run.edges_from else t
        return t, _edge_sets(run)
    if run.state in (RunState.ABORT, RunState.FAIL) and run.edges_from is not None:
        return _ended_at(run), (set(), set())
    return None


def _ended_at(run: Run) -> datetime:
    """The end of a run in a terminal state (``_run`` sets it with the state)."""
    if run.ended_at is None:
        raise RuntimeError(f"Run {run.pk} is {run.state} but has no end time.")
    return run.ended_at


def _edge_sets(run: Run) -> tuple[set[tuple[str, str]], set[tuple[str, str, str, str, str]]]:
    """A run's dataset edges and column edges ``(s, sf, t, tf, DIRECT|INDIRECT)``; a pair its events named
    both ways is DIRECT (older runs stored no transformation: DIRECT)."""
    edges = {(i, o) for i in run.inputs for o in run.outputs}
    kinds: dict[tuple[str, str, str, str], str] = {}
    for s, sf, t, tf, *rest in run.column_edges:
        kind = rest[0] if rest else "DIRECT"
        kinds[(s, sf, t, tf)] = "DIRECT" if kinds.get((s, sf, t, tf)) == "DIRECT" else kind
    return edges, {(*key, kind) for key, kind in kinds.items()}


def _step(job: Job, run: Run | None, at: datetime, edges: set, columns: set) -> set[UUID]:
    """From the job's open edges to ``edges``/``columns`` at time ``at``."""
    open_edges = {
        (str(s), str(t)): pk
        for pk, s, t in Edge.objects.filter(job=job, valid_to__isnull=True).values_list("pk", "source_id", "target_id")
    }
    open_cols = {
        (str(s), sf, str(t), tf, kind): pk
        for pk, s, sf, t, tf, kind in ColumnEdge.objects.filter(job=job, valid_to__isnull=True).values_list(
            "pk", "source_dataset_id", "source_field", "target_dataset_id", "target_field", "transformation"
        )
    }
    gone = [pk for key, pk in open_edges.items() if key not in edges]
    gone_cols = [pk for key, pk in open_cols.items() if key not in columns]
    Edge.objects.filter(pk__in=gone).update(valid_to=at)
    ColumnEdge.objects.filter(pk__in=gone_cols).update(valid_to=at)
    new = [key for key in edges if key not in open_edges]
    new_cols = [key for key in columns if key not in open_cols]
    insert_rows(
        Edge,
        ["job", "source", "target", "run", "valid_from", "valid_to"],
        ((job.pk, s, t, run.pk if run else None, at, None) for s, t in new),
    )
    insert_rows(
        ColumnEdge,
        [
            "job",
            "source_dataset",
            "source_field",
            "target_dataset",
            "target_field",
            "transformation",
            "valid_from",
            "valid_to",
        ],
        ((job.pk, s, sf, t, tf, kind, at, None) for s, sf, t, tf, kind in new_cols),
    )
    changed = {UUID(t) for (_, t), pk in open_edges.items() if pk in gone} | {UUID(t) for _, t in new}
    changed |= {UUID(key[2]) for key, pk in open_cols.items() if pk in gone_cols}
    changed |= {UUID(key[2]) for key in new_cols}
    return changed


def _rebuild(job: Job) -> set[UUID]:
    """Recompute all of a job's edge intervals from its completed runs (an out-of-order completion)."""
    before = set(Edge.objects.filter(job=job, valid_to__isnull=True).values_list("target_id", flat=True))
    before |= set(ColumnEdge.objects.filter(job=job, valid_to__isnull=True).values_list("target_dataset_id", flat=True))
    Edge.objects.filter(job=job).delete()
    ColumnEdge.objects.filter(job=job).delete()
    # (time, rank, run, whether the run's edges open then); a run's edges close again when it aborts or fails.
    points: list[tuple[datetime, int, Run | None, bool]] = [
        (r.ended_at, 1, r, True)
        for r in job.runs.filter(state=RunState.COMPLETE, ended_at__isnull=False)
        if r.ended_at is not None  # excluded by the filter; the type checker cannot tell
    ]
    for r in job.runs.filter(edges_from__isnull=False).exclude(state=RunState.COMPLETE):
        if r.edges_from is None:  # excluded by the filter
            continue
        points.append((r.edges_from, 1, r, True))
        if r.state in (RunState.ABORT, RunState.FAIL) and r.ended_at:
            points.append((r.ended_at, 1, r, False))
    if job.edges_ended_at:
        points.append((job.edges_ended_at, 0, None, False))
    points.sort(key=lambda p: (p[0], p[1], str(p[2].pk) if p[2] else "", p[3]))
    for at, _, run, opens in points:
        edges, columns = _edge_sets(run) if run and opens else (set(), set())
        _step(job, run, at, edges, columns)
    job.latest_completed_at = max((p[0] for p in points if p[2] is not None), default=None)
    job.save(update_fields=["latest_completed_at"])
    after = set(Edge.objects.filter(job=job, valid_to__isnull=True).values_list("target_id", flat=True))
    return before | after


def _versions(
    out: dict[tuple[UUID, str], tuple[Any, ...]], event: ParsedEvent, ids: dict[tuple[str, str], UUID], run: Run | None
) -> None:
    refs = list(event.inputs) + list(event.outputs) + ([event.dataset] if event.dataset else [])
    for ref in refs:
        is_output = ref in event.outputs
        version = ref.version
        if version is None and run is not None and is_output and event.event_type == RunState.COMPLETE:
            version = str(run.pk)
        if version is None:
            continue
        key = (ids[ref.identity], version)
        if key not in out:  # a DatasetVersion row
            out[key] = (key[0], version, run.pk if run and is_output else None, ref.fields or [], event.event_time)


@transaction.atomic
def job_end_edges(*, actor: Actor, job_id: UUID) -> Job:
    """End every current edge of a job now (it no longer runs, or its lineage was wrong)."""
    if not permissions.can_manage_lineage(actor):
        raise PermissionDenied("Only data stewards and admins end a job's lineage.")
    job = Job.objects.select_for_update().filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No job {job_id}.")
    now = timezone.now()
    changed = _step(job, None, now, set(), set())
    job.edges_ended_at = now
    job.save(update_fields=["edges_ended_at"])
    audit.record(actor=actor, action=JOB_END_EDGES, target=job, after={"ended_edges_into": len(changed)})
    note_change(changed)
    sync_later({job.pk})
    return job
