"""Apply what a reader saw (``connectors.sources.base.SourceSnapshot``) to the catalog and lineage.

- Incremental: each dataset's snapshot is digested; one whose digest the source stored last time is skipped
  without a write, so a second crawl of an unchanged source writes nothing (no row, no history, no audit event).
- Every source's say is kept, per source: ``Dataset.producer_facts["sources"][<source id>]`` (the source's name
  and kind, the dataset's kind, description, columns' nullability and descriptions, properties: row estimate,
  primary and foreign keys, view definition), so a PostgreSQL crawl and a dbt crawl of one warehouse never take
  each other's values for their own.
- People win, then documentation, then comments: a description (dataset or column) that is neither empty nor
  what some source or producer said is a person's and is never replaced. Otherwise it is the non-empty value of
  the source ranked highest (``description_rank`` of its reader: dbt's documentation 20 over a warehouse's
  comment 10; an OpenLineage producer's documentation facet counts as documentation); an empty comment never
  erases what another source said. Owners and tags (dbt's ``meta.owner`` and tags) go through
  ``catalog.services.dataset_producer_facts_apply``, the rule lineage producers follow.
- The schema is the source's: columns gone from it are removed from the dataset (kept in its history).
- Datasets gone from a complete snapshot are marked removed (``Dataset.removed_at``), never deleted; the job of a
  view that is gone gets a COMPLETE event with no inputs, so its edges end.
- Lineage events go through ``lineage.services.ingest.ingest`` as a producer's would, only for jobs whose event
  (minus its run id and time) changed since the last crawl.
- Atomic: the caller holds one transaction; a failure leaves everything as it was.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from catalog.actions import DATASET_UPDATE
from catalog.classification import lowest
from catalog.models import Dataset, SchemaField
from catalog.services.datasets import dataset_producer_facts_apply, datasets_changed
from catalog.services.datasets.common import CHUNK, DATASET_COLUMNS, FIELD_COLUMNS, datasets_by_identity
from catalog.signals import tags_changed
from catalog.validation import platform_of
from connectors.sources.base import DatasetSnapshot, Progress, SourceError, SourceSnapshot
from ledger import audit
from ledger.audit import AuditEntry
from lineage.models import NamespaceProducer
from lineage.services.ingest import MAX_BATCH, ingest
from sources.actions import SOURCE_DATASET_REMOVED
from sources.models import Source, SourceDataset
from sources.readers import reader_for
from steward.bulk import insert_new_rows, insert_rows, update_objects
from steward.identity import Actor, authenticated_user

__all__ = ["ApplyResult", "snapshot_apply"]


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    events: int = 0
    warnings: list[str] = field(default_factory=list)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def _snapshot_digest(snap: DatasetSnapshot) -> str:
    """The digest of everything a dataset snapshot says (``dataclasses.asdict`` is ten times slower)."""
    columns = [[c.name, c.type, c.ordinal, c.nullable, c.description, list(c.tags)] for c in snap.columns]
    return _digest([snap.kind, snap.description, columns, list(snap.owners), list(snap.tags), snap.properties])


DOCUMENTATION_RANK = 20  # an OpenLineage producer's documentation facet weighs like dbt's documentation
_DEFAULT_RANK = 10


@cache
def description_rank(kind: str) -> int:
    """How much a source kind's descriptions weigh (its reader's ``description_rank``; 10 when it says none)."""
    try:
        return int(getattr(reader_for(kind), "description_rank", _DEFAULT_RANK))
    except SourceError:
        return _DEFAULT_RANK


def _best(current: str, candidates: list[tuple[str, int]]) -> str:
    """The description machines agree on: the non-empty candidate ranked highest; among equals, the current
    value if it is one of them, else the first given (the crawling source's own). ``""`` when none says one."""
    said = [(text, rank) for text, rank in candidates if text]
    if not said:
        return ""
    top = max(rank for _, rank in said)
    best = [text for text, rank in said if rank == top]
    return current if current in best else best[0]


def _sources_said(facts: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(facts.get("sources") or {})


def _said(snap: DatasetSnapshot, source: Source) -> dict[str, Any]:
    """What the source says about one dataset, as kept in ``producer_facts["sources"][<source id>]``."""
    return {
        "name": source.name,
        "source_kind": source.kind,
        "kind": snap.kind,
        "description": snap.description,
        "columns": {c.name: {"nullable": c.nullable, "description": c.description} for c in snap.columns},
        "properties": snap.properties,
    }


def snapshot_apply(
    *, actor: Actor, source: Source, snapshot: SourceSnapshot, progress: Progress | None = None
) -> ApplyResult:
    """Write ``snapshot`` (what ``source``'s reader saw) in one transaction; see the module's description."""
    report = progress or (lambda done, total, what: None)
    with transaction.atomic():
        locked = Source.objects.select_for_update().get(pk=source.pk)  # one crawl of a source applies at a time
        result = ApplyResult(warnings=list(snapshot.warnings))
        now = timezone.now()
        snaps: dict[tuple[str, str], DatasetSnapshot] = {}
        for snap in snapshot.datasets:
            snaps[(snap.namespace, snap.name)] = snap
        digests = {key: _snapshot_digest(snap) for key, snap in snaps.items()}
        known: dict[tuple[str, str], tuple[UUID, str, datetime | None]] = {}
        for ds_id, digest, removed_at, ns, name in SourceDataset.objects.filter(source=locked).values_list(
            "dataset_id", "digest", "removed_at", "dataset__namespace", "dataset__name"
        ):
            known[(ns, name)] = (ds_id, digest, removed_at)
        todo = [key for key in snaps if key not in known or known[key][1] != digests[key] or known[key][2] is not None]
        result.unchanged = len(snaps) - len(todo)
        report(0, len(todo), "datasets")
        changed_ids = _apply_datasets(actor, locked, [snaps[k] for k in todo], digests, now, result)
        report(len(todo), len(todo), "datasets")
        gone = [entry[0] for key, entry in known.items() if key not in snaps and entry[2] is None]
        if snapshot.complete and gone:
            _mark_removed(actor, locked, gone, now, result)
        result.events = _apply_lineage(actor, locked, snapshot, complete=snapshot.complete, report=report)
        if changed_ids:
            report(len(todo), len(todo), "history")
        locked.save(update_fields=["lineage_state"])
        return result


def _apply_datasets(
    actor: Actor,
    source: Source,
    snaps: list[DatasetSnapshot],
    digests: dict[tuple[str, str], str],
    now: datetime,
    result: ApplyResult,
) -> list[UUID]:
    if not snaps:
        return []
    existing = datasets_by_identity([(s.namespace, s.name) for s in snaps])
    level = lowest().code
    new_rows: list[Dataset] = []
    for snap in snaps:
        if (snap.namespace, snap.name) not in existing:
            new_rows.append(
                Dataset(
                    namespace=snap.namespace,
                    name=snap.name,
                    platform=platform_of(snap.namespace),
                    description=snap.description,
                    effective_classification=level,
                    producer_facts={"sources": {str(source.pk): _said(snap, source)}},
                    created_at=now,
                    updated_at=now,
                )
            )
    # A concurrent writer (a lineage producer) may create some of them first: those are updated as existing.
    inserted = insert_new_rows(
        Dataset,
        DATASET_COLUMNS,
        [[getattr(ds, c) for c in DATASET_COLUMNS] for ds in new_rows],
        order_by=("namespace", "name"),
    )
    created = {(ds.namespace, ds.name): ds for ds in new_rows if ds.pk in inserted}
    lost = [(ds.namespace, ds.name) for ds in new_rows if ds.pk not in inserted]
    if lost:
        existing.update(datasets_by_identity(lost))
    # Existing datasets: lock them in one order, then apply the people-win rule.
    existing_ids = sorted(ds.pk for ds in existing.values())
    locked: dict[UUID, Dataset] = {}
    for start in range(0, len(existing_ids), CHUNK):
        for ds in Dataset.objects.select_for_update().filter(pk__in=existing_ids[start : start + CHUNK]).order_by("pk"):
            locked[ds.pk] = ds
    updated_rows: list[Dataset] = []
    changes: dict[UUID, list[str]] = {}
    others_said: dict[UUID, _OthersSaid] = {}
    me, my_rank = str(source.pk), description_rank(source.kind)
    for snap in snaps:
        key = (snap.namespace, snap.name)
        if key in created:
            continue
        ds = locked[existing[key].pk]
        facts = dict(ds.producer_facts or {})
        by_source = _sources_said(facts)
        before = by_source.get(me) or {}
        others = [
            (entry, description_rank(str(entry.get("source_kind") or ""))) for k, entry in by_source.items() if k != me
        ]
        others_said[ds.pk] = _OthersSaid(before.get("columns") or {}, others)
        said = _said(snap, source)
        what: list[str] = []
        machine = {"", before.get("description", ""), *(e.get("description", "") for e, _ in others)}
        producer = str(facts.get("description") or "")
        if ds.description in machine | {producer}:  # no person's: the best a machine says
            wanted = _best(
                ds.description,
                [(snap.description, my_rank), *((e.get("description", ""), r) for e, r in others)]
                + [(producer, DOCUMENTATION_RANK)],
            )
            if wanted != ds.description:
                ds.description = wanted
                what.append("description")
        if before != said:
            by_source[me] = said
            facts["sources"] = by_source
            ds.producer_facts = facts
            what.append("source")
        if ds.removed_at is not None:
            ds.removed_at = None
            what.append("restored")
        if what:
            ds.updated_at = now
            updated_rows.append(ds)
            changes[ds.pk] = what
    update_objects(Dataset, updated_rows, ["description", "producer_facts", "removed_at", "updated_at"])

    ids = {key: ds.pk for key, ds in created.items()} | {key: ds.pk for key, ds in existing.items()}
    new_ids = {ds.pk for ds in created.values()}
    # Columns of new datasets: copied in; of existing ones: made the source's, people's descriptions kept.
    insert_rows(
        SchemaField,
        FIELD_COLUMNS,
        (
            (ids[(s.namespace, s.name)], c.name, c.type[:100], ordinal, c.description, "")
            for s in snaps
            if ids[(s.namespace, s.name)] in new_ids
            for ordinal, c in enumerate(sorted(s.columns, key=lambda c: c.ordinal))
        ),
    )
    fields_touched, tags_lost = _write_fields(
        [s for s in snaps if ids[(s.namespace, s.name)] not in new_ids], ids, others_said, my_rank
    )
    for ds_id in fields_touched:
        changes.setdefault(ds_id, []).append("fields")
    _facts_apply(actor, snaps, ids)

    SourceDataset.objects.bulk_create(
        [
            SourceDataset(
                source=source,
                dataset_id=ids[(s.namespace, s.name)],
                digest=digests[(s.namespace, s.name)],
                seen_at=now,
                removed_at=None,
            )
            for s in snaps
        ],
        update_conflicts=True,
        unique_fields=["source", "dataset"],
        update_fields=["digest", "seen_at", "removed_at"],
        batch_size=2000,
    )
    entries = [
        AuditEntry(
            "catalog.dataset.create",
            "catalog.dataset",
            str(ds.pk),
            str(ds),
            after={"namespace": ds.namespace, "name": ds.name, "source": source.name},
        )
        for ds in created.values()
    ]
    for ds_id, what in changes.items():
        ds = locked[ds_id]
        entries.append(
            AuditEntry(
                DATASET_UPDATE, "catalog.dataset", str(ds_id), str(ds), after={"source": source.name, "changed": what}
            )
        )
    audit.record_many(actor=actor, entries=entries, at=now)
    if tags_lost:
        tags_changed.send(sender=Dataset, datasets=sorted(tags_lost), tags=[])
    result.created = len(created)
    result.updated = len(changes)
    changed = [*new_ids, *changes]
    stamped = {ds.pk for ds in updated_rows}
    datasets_changed(changed, recompute=list(changes), stamp=[pk for pk in changes if pk not in stamped], now=now)
    return changed


@dataclass
class _OthersSaid:
    """For one existing dataset: the columns this source said last, and each other source's say with its rank."""

    previous_columns: dict[str, Any]
    others: list[tuple[dict[str, Any], int]]


def _write_fields(
    snaps: list[DatasetSnapshot], ids: dict[tuple[str, str], UUID], said_by: dict[UUID, _OthersSaid], my_rank: int
) -> tuple[set[UUID], set[UUID]]:
    """Make existing datasets' fields the source's columns; a description a person set is kept, otherwise the
    best any source says (``_best``). Returns the datasets whose fields changed and those that lost a field (and
    so maybe a field's tags)."""
    wanted = {ids[(s.namespace, s.name)]: sorted(s.columns, key=lambda c: c.ordinal) for s in snaps}
    current: dict[UUID, dict[str, tuple]] = {}
    keys = list(wanted)
    for start in range(0, len(keys), CHUNK):
        for row in SchemaField.objects.filter(dataset_id__in=keys[start : start + CHUNK]).values_list(
            "id", "dataset_id", "name", "type", "ordinal", "description"
        ):
            current.setdefault(row[1], {})[row[2]] = row
    touched: set[UUID] = set()
    lost: set[UUID] = set()
    to_delete: list[int] = []
    to_write: list[SchemaField] = []
    for ds_id, columns in wanted.items():
        have = current.get(ds_id, {})
        names = {c.name for c in columns}
        gone = [row[0] for name, row in have.items() if name not in names]
        if gone:
            to_delete += gone
            touched.add(ds_id)
            lost.add(ds_id)
        known = said_by[ds_id]
        for ordinal, c in enumerate(columns):
            stored = have.get(c.name)
            others = [(((e.get("columns") or {}).get(c.name) or {}).get("description", ""), r) for e, r in known.others]
            mine = (known.previous_columns.get(c.name) or {}).get("description", "")
            shown = stored[5] if stored is not None else ""
            if shown not in {"", mine, *(text for text, _ in others)}:
                description = shown  # a person's
            else:
                description = _best(shown, [(c.description, my_rank), *others])
            if stored is None or stored[3:] != (c.type[:100], ordinal, description):
                to_write.append(
                    SchemaField(
                        dataset_id=ds_id, name=c.name, type=c.type[:100], ordinal=ordinal, description=description
                    )
                )
                touched.add(ds_id)
    for start in range(0, len(to_delete), CHUNK):
        SchemaField.objects.filter(pk__in=to_delete[start : start + CHUNK]).delete()
    to_write.sort(key=lambda f: (str(f.dataset_id), f.name))  # one lock order for concurrent writers
    SchemaField.objects.bulk_create(
        to_write,
        update_conflicts=True,
        unique_fields=["dataset", "name"],
        update_fields=["type", "ordinal", "description"],
        batch_size=2000,
    )
    return touched, lost


def _facts_apply(actor: Actor, snaps: list[DatasetSnapshot], ids: dict[tuple[str, str], UUID]) -> None:
    """Owners and tags the source names (dbt), under the rule lineage producers follow (people win)."""
    facts: dict[UUID, dict[str, Any]] = {}
    for s in snaps:
        meaning: dict[str, Any] = {}
        if s.owners:
            meaning["owners"] = list(s.owners)
        tags = [(key, "", None) for key in s.tags] + [(key, "", c.name) for c in s.columns for key in c.tags]
        if tags:
            meaning["tags"] = tags
        if meaning:
            facts[ids[(s.namespace, s.name)]] = meaning
    if facts:
        dataset_producer_facts_apply(actor=actor, facts=facts)


def _mark_removed(actor: Actor, source: Source, gone: list[UUID], now: datetime, result: ApplyResult) -> None:
    """Datasets gone from the source: marked removed (unless another source still has them), never deleted."""
    SourceDataset.objects.filter(source=source, dataset_id__in=gone).update(removed_at=now)
    still = set(
        SourceDataset.objects.filter(dataset_id__in=gone, removed_at__isnull=True)
        .exclude(source=source)
        .values_list("dataset_id", flat=True)
    )
    ids = [pk for pk in gone if pk not in still]
    rows = list(Dataset.objects.filter(pk__in=ids, removed_at__isnull=True).only("id", "namespace", "name"))
    Dataset.objects.filter(pk__in=[ds.pk for ds in rows]).update(removed_at=now)
    audit.record_many(
        actor=actor,
        entries=[
            AuditEntry(
                SOURCE_DATASET_REMOVED,
                "catalog.dataset",
                str(ds.pk),
                str(ds),
                after={"removed_at": now.isoformat(), "source": source.name},
            )
            for ds in rows
        ],
        at=now,
    )
    result.removed = len(rows)
    if rows:
        datasets_changed([ds.pk for ds in rows], recompute=(), now=now)


def _event_digest(event: dict[str, Any]) -> str:
    stripped = {k: v for k, v in event.items() if k != "eventTime"}
    stripped["run"] = {k: v for k, v in (event.get("run") or {}).items() if k != "runId"}
    return _digest(stripped)


def _apply_lineage(actor: Actor, source: Source, snapshot: SourceSnapshot, *, complete: bool, report: Progress) -> int:
    """Send the events of jobs whose lineage changed (and an empty COMPLETE for jobs gone); returns how many."""
    state: dict[str, str] = dict(source.lineage_state or {})
    at = timezone.now().isoformat().replace("+00:00", "Z")
    to_send: list[dict[str, Any]] = []
    seen: set[str] = set()
    for event in snapshot.lineage_events:
        job = event.get("job") or {}
        key = f"{job.get('namespace')} {job.get('name')}"
        seen.add(key)
        digest = _event_digest(event)
        if state.get(key) == digest:
            continue
        sent = copy.deepcopy(event)
        sent["eventTime"] = at
        sent.setdefault("run", {})["runId"] = str(uuid.uuid4())
        to_send.append(sent)
        state[key] = digest
    if complete:
        for key in [k for k in state if k not in seen]:
            namespace, _, name = key.partition(" ")
            to_send.append(_ended_event(namespace, name, at))
            del state[key]
    source.lineage_state = state
    if not to_send:
        return 0
    _claim_namespaces(actor, to_send)
    for start in range(0, len(to_send), MAX_BATCH):
        ingest(actor=actor, events=to_send[start : start + MAX_BATCH], batch=True)
        report(min(start + MAX_BATCH, len(to_send)), len(to_send), "lineage")
    return len(to_send)


def _ended_event(namespace: str, name: str, at: str) -> dict[str, Any]:
    """A job gone from the source (a dropped view): a COMPLETE run with no inputs or outputs ends its edges."""
    return {
        "eventType": "COMPLETE",
        "eventTime": at,
        "producer": "https://github.com/steward/steward/tree/main/sources",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": name, "facets": {}},
        "inputs": [],
        "outputs": [],
    }


def _claim_namespaces(actor: Actor, events: Iterable[dict[str, Any]]) -> None:
    """The crawler produces the lineage of its sources' namespaces (job namespaces and outputs): it is made their
    producer (``lineage.NamespaceProducer``), as an admin would assign it."""
    wanted: set[str] = set()
    for event in events:
        wanted.add(str((event.get("job") or {}).get("namespace")))
        wanted |= {str(o.get("namespace")) for o in event.get("outputs") or []}
    user = authenticated_user(actor)
    NamespaceProducer.objects.bulk_create(
        [NamespaceProducer(namespace=ns, producer=user) for ns in sorted(wanted)], ignore_conflicts=True
    )
