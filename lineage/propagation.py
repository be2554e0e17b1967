"""Classification propagation along lineage: the least fixed point of docs/architecture.md §4, incrementally.

How it works
------------
Writes that can change propagated tags (a direct tag, an edge, a column edge, a declassification, a tag's
``propagates`` flag) add a ``PropagationChange`` naming root datasets, in their own transaction. ``drain``
claims pending changes under one lock, recomputes the *region* — every dataset downstream of a root over
current edges — from scratch, writes the difference, and deletes the changes in the same transaction. So a
worker killed mid-run leaves the changes pending and the next drain converges (at-least-once, idempotent).

Why a region from scratch is exact: tags only flow downstream, so nothing outside the downstream closure of
the changed inputs can change; inside it, the tags entering from outside are stable. A breadth-first search
from the region's direct assignments and those inflows reaches exactly the (slot, tag) pairs that have a
path, so cycles never keep a tag alive. Each reached pair records the hop it came by (``via``), a tree whose
root is a direct assignment, which ``explain`` follows. On PostgreSQL a region without column lineage runs the
same search set-based in the database (``_recompute_sql``); see the comment above it.

A slot is a dataset (``field == ""``) or one of its columns. Along an active edge u→v through job j, tag T
of u flows unless j blocks T: if the edge has column edges, a column's tags follow its column edges and u's
dataset-level tags go to v's dataset level; otherwise all of u's tags go to v's dataset level.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import connection, models, transaction
from django.utils import timezone

from catalog.models import Dataset, SchemaField, Tag, TagAssignment
from catalog.search import index_later
from catalog.services.classification import dataset_recompute_effective
from lineage.models import ColumnEdge, ColumnTransformation, Declassification, Edge, PropagatedTag, PropagationChange
from steward import metrics
from steward.bulk import insert_rows
from steward.lookups import UUIDs
from steward.tasks import enqueue_coalesced_on_commit

__all__ = ["DrainResult", "drain", "note_change", "recompute"]


_BATCH = 20_000  # datasets per query (one uuid[] parameter on PostgreSQL)
_LOCK_KEY = 0x57E3A4D  # pg_advisory_xact_lock key for the propagation engine

Slot = tuple[UUID, str]  # (dataset id, field name or "")
# (origin dataset, origin field, via dataset, via field, job id)
Provenance = tuple[UUID, str, UUID, str, UUID]


def note_change(datasets: Iterable[UUID | str], tags: Iterable[int] = ()) -> None:
    """Record, in the caller's transaction, that the regions downstream of ``datasets`` need recomputing.

    Queues a drain after commit, unless one is queued and not started yet (with a Redis broker: it will take
    this change too). ``tags`` limits the work to those tags (empty: every tag).
    """
    ids = sorted({str(d) for d in datasets})
    if not ids:
        return
    PropagationChange.objects.create(datasets=ids, tags=sorted(set(tags)))

    from lineage.tasks import propagation_drain_task

    enqueue_coalesced_on_commit(
        propagation_drain_task, "propagation_drain", recovery="the periodic drain will apply the change."
    )


@dataclass
class DrainResult:
    changes: int = 0
    region: int = 0
    added: int = 0
    ended: int = 0
    reclassified: int = 0


def drain(*, max_changes: int = 5_000) -> DrainResult:
    """Apply every pending change (in groups of up to ``max_changes``); returns what was done."""
    with metrics.PROPAGATION_DRAIN_SECONDS.time():
        return _drain(max_changes)


def _drain(max_changes: int) -> DrainResult:
    total = DrainResult()
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            claimed = list(PropagationChange.objects.order_by("id")[:max_changes])
            if not claimed:
                return total
            roots: set[UUID] = set()
            tags: set[int] | None = set()
            for change in claimed:
                roots.update(UUID(d) for d in change.datasets)
                if not change.tags:
                    tags = None
                elif tags is not None:
                    tags.update(change.tags)
            result = recompute(roots, tags)
            PropagationChange.objects.filter(pk__in=[c.pk for c in claimed]).delete()
        total.changes += len(claimed)
        total.region += result.region
        total.added += result.added
        total.ended += result.ended
        total.reclassified += result.reclassified


def _chunks(items: list, size: int = _BATCH) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _closure(roots: set[UUID]) -> tuple[set[UUID], dict[UUID, list[tuple[UUID, UUID]]]]:
    """Datasets downstream of ``roots`` (inclusive) over current edges, and their out-edges."""
    existing = set(Dataset.objects.filter(pk__any_of=UUIDs(roots)).values_list("pk", flat=True)) if roots else set()
    region = set(existing)
    out: dict[UUID, list[tuple[UUID, UUID]]] = defaultdict(list)
    frontier = list(existing)
    while frontier:
        nxt: list[UUID] = []
        for chunk in _chunks(frontier):
            for source, target, job in Edge.objects.filter(
                valid_to__isnull=True, source_id__any_of=UUIDs(chunk)
            ).values_list("source_id", "target_id", "job_id"):
                out[source].append((target, job))
                if target not in region:
                    region.add(target)
                    nxt.append(target)
        frontier = nxt
    return region, out


def _blocked() -> dict[UUID, set[int]]:
    blocked: dict[UUID, set[int]] = defaultdict(set)
    for job, tag in Declassification.objects.filter(state="approved", valid_to__isnull=True).values_list(
        "job_id", "tags__id"
    ):
        if tag is not None:
            blocked[job].add(tag)
    return blocked


def _column_map(sources: list[UUID]) -> dict[tuple[UUID, UUID, UUID], dict[str, list[str]]]:
    """(source dataset, target dataset, job) -> {source field: [target fields]} for current column edges."""
    cols: dict[tuple[UUID, UUID, UUID], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for chunk in _chunks(sources):
        for s, sf, t, tf, job in ColumnEdge.objects.filter(
            valid_to__isnull=True, source_dataset_id__any_of=UUIDs(chunk), transformation=ColumnTransformation.DIRECT
        ).values_list("source_dataset_id", "source_field", "target_dataset_id", "target_field", "job_id"):
            cols[(s, t, job)][sf].append(tf)
    return cols


def _direct(datasets: list[UUID], tags: set[int] | None) -> dict[UUID, list[tuple[str, int]]]:
    """Propagating direct tags per dataset: [(field or "", tag id)]."""
    found: dict[UUID, list[tuple[str, int]]] = defaultdict(list)
    for chunk in _chunks(datasets):
        qs = TagAssignment.objects.filter(dataset_id__any_of=UUIDs(chunk), tag__propagates=True)
        if tags is not None:
            qs = qs.filter(tag_id__in=tags)
        for ds, field, tag in qs.values_list("dataset_id", "field__name", "tag_id"):
            found[ds].append((field or "", tag))
    return found


def _current(datasets: list[UUID], tags: set[int] | None) -> dict[tuple[UUID, str, int], tuple[int, Provenance]]:
    rows: dict[tuple[UUID, str, int], tuple[int, Provenance]] = {}
    for chunk in _chunks(datasets):
        qs = PropagatedTag.objects.filter(dataset_id__any_of=UUIDs(chunk), valid_to__isnull=True)
        if tags is not None:
            qs = qs.filter(tag_id__in=tags)
        for pk, ds, field, tag, od, of, vd, vf, job in qs.values_list(
            "pk",
            "dataset_id",
            "field",
            "tag_id",
            "origin_dataset_id",
            "origin_field",
            "via_dataset_id",
            "via_field",
            "job_id",
        ):
            rows[(ds, field, tag)] = (pk, (od, of, vd, vf, job))
    return rows


def recompute(roots: set[UUID], tags: set[int] | None = None) -> DrainResult:
    """Recompute propagated tags downstream of ``roots`` (only ``tags`` when given). Call in a transaction.

    On PostgreSQL a region without column lineage is computed set-based, in the database (``_recompute_sql``);
    a region with column edges, or another database, takes the slot-by-slot walk in Python.
    """
    if connection.vendor == "postgresql" and roots:
        result = _recompute_sql(roots, tags)
        if result is not None:
            return result
    return _recompute_python(roots, tags)


def _recompute_python(roots: set[UUID], tags: set[int] | None) -> DrainResult:
    region, out = _closure(roots)
    if not region:
        return DrainResult()
    region_list = list(region)
    blocked = _blocked()
    cols = _column_map(region_list)

    # Seeds: direct assignments in the region, then everything flowing in across the region's boundary.
    has: dict[tuple[UUID, str, int], Provenance | None] = {}  # None: a direct assignment
    queue: deque[tuple[UUID, str, int]] = deque()
    for ds, assigned in _direct(region_list, tags).items():
        for field, tag in assigned:
            key = (ds, field, tag)
            if key not in has:
                has[key] = None
                queue.append(key)

    inflow: list[tuple[UUID, UUID, UUID]] = []  # (outside source, region target, job)
    for chunk in _chunks(region_list):
        inflow += (
            Edge.objects.filter(valid_to__isnull=True, target_id__any_of=UUIDs(chunk))
            .exclude(source_id__any_of=UUIDs(region_list))  # one hashed array on PostgreSQL, however large
            .values_list("source_id", "target_id", "job_id")
        )
    new: dict[tuple[UUID, str, int], Provenance] = {}

    def reach(u: UUID, field: str, tag: int, origin: tuple[UUID, str], v: UUID, job: UUID) -> None:
        """Tag ``tag`` at slot (u, field) crosses edge u→v through ``job``."""
        if blocked and tag in blocked.get(job, ()):
            return
        mapping = cols.get((u, v, job)) if cols else None
        if mapping:
            targets = [""] if field == "" else mapping.get(field, [])
        else:
            targets = [""]
        for target_field in targets:
            key = (v, target_field, tag)
            if key not in has:
                prov = (origin[0], origin[1], u, field, job)
                has[key] = prov
                new[key] = prov
                queue.append(key)

    if inflow:
        sources = sorted({s for s, _, _ in inflow})
        outside_direct = _direct(sources, tags)
        outside_prop = _current(sources, tags)
        outside_tags: dict[UUID, list[tuple[str, int, tuple[UUID, str]]]] = defaultdict(list)
        for ds, assigned in outside_direct.items():
            for field, tag in assigned:
                outside_tags[ds].append((field, tag, (ds, field)))
        for (ds, field, tag), (_, prov) in outside_prop.items():
            outside_tags[ds].append((field, tag, (prov[0], prov[1])))
        cols.update(_column_map(sources))
        for s, t, job in inflow:
            for field, tag, origin in outside_tags.get(s, ()):
                reach(s, field, tag, origin, t, job)

    while queue:
        u, field, tag = queue.popleft()
        reached_by = has[(u, field, tag)]
        origin = (u, field) if reached_by is None else (reached_by[0], reached_by[1])
        for v, job in out.get(u, ()):
            reach(u, field, tag, origin, v, job)

    # Write the difference: end rows that disappeared or changed provenance, insert the new ones.
    now = timezone.now()
    old = _current(region_list, tags)
    to_end = [pk for key, (pk, prov) in old.items() if new.get(key) != prov]
    to_add = [(key, prov) for key, prov in new.items() if key not in old or old[key][1] != prov]
    for chunk in _chunks(to_end, 5_000):
        PropagatedTag.objects.filter(pk__in=chunk).update(valid_to=now)
    insert_rows(
        PropagatedTag,
        [
            "dataset",
            "field",
            "tag",
            "origin_dataset",
            "origin_field",
            "via_dataset",
            "via_field",
            "job",
            "valid_from",
            "valid_to",
        ],
        ((ds, field, tag, od, of, vd, vf, job, now, None) for (ds, field, tag), (od, of, vd, vf, job) in to_add),
    )
    ended_keys = [key for key in old if old[key][1] != new.get(key)]
    return _after_write(roots, ended_keys, [key for key, _ in to_add], region=len(region))


def _after_write(
    roots: set[UUID],
    ended: list[tuple[UUID, str, int]],
    added: list[tuple[UUID, str, int]],
    *,
    region: int,
) -> DrainResult:
    """Effective classifications, search and model versions of the datasets whose propagated tags changed.

    ``ended`` and ``added`` are the (dataset, field, tag) of the rows ended and written. A row ended and written
    again for the same key only changed its provenance: the dataset's tags, hence its level and its search
    document, stay the same, so only datasets that gained or lost a tag are reclassified and re-indexed.
    """
    ended_keys, added_keys = set(ended), set(added)
    touched = {key[0] for key in ended_keys} | {key[0] for key in added_keys}
    changed = {key[0] for key in ended_keys ^ added_keys}
    reclassified = dataset_recompute_effective(changed)
    index_later("dataset", changed)
    if touched:
        from lineage.services.models import model_versions_reading, model_versions_refresh

        model_versions_refresh(model_versions_reading(touched | roots))
    return DrainResult(region=region, added=len(added), ended=len(ended), reclassified=len(reclassified))


# --- the set-based path (PostgreSQL, regions without column lineage) ---------------------------------------
#
# The same least fixed point, level by level in the database: the region is one recursive query; the reached
# (dataset, field, tag) triples live in a temporary table with the hop they came by, and each level is one
# INSERT … SELECT joining the previous level to the current edges (unblocked, not yet reached). Without column
# lineage every hop lands at dataset level, so a level needs no per-slot mapping. The difference with the
# open rows is written by one UPDATE and one INSERT. Ties within a level are broken by (via dataset, via field,
# job), so recomputing an unchanged region writes nothing.


def _t(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


#: How ``_recompute_sql`` finds the tags flowing into a region: "auto" (the cheaper way), "edges" (from the
#: region's in-edges) or "holders" (from the tags' holders outside the region). Both give the same rows.
INFLOW = "auto"


def _inflow_by_holders(cur: Any, params: dict, region: int, held: str) -> bool:
    """Whether to find the inflow from the holders of the tags concerned rather than from the region's in-edges:
    yes when the holders (counted up to the number of in-edges the region is expected to have) are fewer."""
    if INFLOW != "auto":
        return INFLOW == "holders"
    cur.execute(
        f"""SELECT GREATEST(e.reltuples, 0) / GREATEST(d.reltuples, 1) FROM pg_class e, pg_class d
        WHERE e.oid = '{_t(Edge)}'::regclass AND d.oid = '{_t(Dataset)}'::regclass"""
    )
    per_dataset = float(cur.fetchone()[0] or 0) or 5.0  # never analysed: assume a few in-edges each
    cap = max(1_000, int(region * per_dataset))
    cur.execute(f"SELECT count(*) FROM (SELECT 1 FROM ({held}) h LIMIT %(cap)s) x", {**params, "cap": cap})
    return cur.fetchone()[0] < cap


def _recompute_sql(roots: set[UUID], tags: set[int] | None) -> DrainResult | None:
    """``recompute`` in SQL; returns None (having changed nothing) when the region has column lineage."""
    edge, col, prop, ds_t = _t(Edge), _t(ColumnEdge), _t(PropagatedTag), _t(Dataset)
    assign, tag_t, field_t = _t(TagAssignment), _t(Tag), _t(SchemaField)
    decl, decl_tags = _t(Declassification), connection.ops.quote_name(Declassification.tags.through._meta.db_table)
    tag_list = sorted(tags) if tags is not None else None
    assign_tag = "" if tag_list is None else "AND a.tag_id = ANY(%(tags)s)"
    prop_tag = "" if tag_list is None else "AND p.tag_id = ANY(%(tags)s)"
    params: dict = {"roots": list(roots), "tags": tag_list, "direct": ColumnTransformation.DIRECT}
    with connection.cursor() as cur:

        def run(sql: str, extra: dict | None = None) -> int:
            cur.execute(sql, {**params, **(extra or {})})
            return cur.rowcount

        run("DROP TABLE IF EXISTS prop_region, prop_blocked, prop_reach, prop_held")
        run(
            f"""CREATE TEMPORARY TABLE prop_region ON COMMIT DROP AS
            WITH RECURSIVE r(id) AS (
                SELECT id FROM {ds_t} WHERE id = ANY(%(roots)s::uuid[])
                UNION
                SELECT e.target_id FROM r JOIN {edge} e ON e.source_id = r.id WHERE e.valid_to IS NULL
            ) SELECT id FROM r"""
        )
        region = cur.rowcount
        if not region:
            run("DROP TABLE prop_region")
            return DrainResult()
        run("ALTER TABLE prop_region ADD PRIMARY KEY (id)")
        run("ANALYZE prop_region")
        cur.execute(
            f"""SELECT EXISTS (SELECT 1 FROM {col} c JOIN prop_region r ON r.id = c.target_dataset_id
            WHERE c.valid_to IS NULL AND c.transformation = %(direct)s)""",
            params,
        )
        if cur.fetchone()[0]:
            run("DROP TABLE prop_region")
            return None
        run(
            f"""CREATE TEMPORARY TABLE prop_blocked ON COMMIT DROP AS
            SELECT DISTINCT d.job_id, dt.tag_id FROM {decl} d JOIN {decl_tags} dt ON dt.declassification_id = d.id
            WHERE d.state = 'approved' AND d.valid_to IS NULL"""
        )
        # reached (dataset, field, tag): origin (od, of), the hop it came by (vd, vf, job; vd NULL for a direct
        # assignment, whose origin is itself) and its level.
        run(
            """CREATE TEMPORARY TABLE prop_reach (
                ds uuid NOT NULL, field varchar NOT NULL, tag integer NOT NULL, od uuid NOT NULL,
                of varchar NOT NULL, vd uuid, vf varchar NOT NULL, job uuid, lvl integer NOT NULL
            ) ON COMMIT DROP"""
        )
        run("CREATE UNIQUE INDEX ON prop_reach (ds, field, tag)")
        run("CREATE INDEX ON prop_reach (lvl)")
        direct_tags = f"""SELECT a.dataset_id AS ds, COALESCE(f.name, '') AS field, a.tag_id AS tag
            FROM {assign} a JOIN {tag_t} t ON t.id = a.tag_id AND t.propagates
            LEFT JOIN {field_t} f ON f.id = a.field_id"""
        run(
            f"""INSERT INTO prop_reach
            SELECT d.ds, d.field, d.tag, d.ds, d.field, NULL, '', NULL, 0
            FROM ({direct_tags} JOIN prop_region r ON r.id = a.dataset_id WHERE true {assign_tag}) d
            ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING"""
        )
        # Tags entering across the region's boundary, from datasets outside it (direct or propagated there).
        # Two ways to the same rows; the cheaper one is taken (``_inflow_by_holders``): from the region's
        # in-edges, keeping those whose source lies outside (in a region downstream of a hub, hundreds of
        # thousands of in-edges, nearly all from inside), or from the datasets outside the region holding a
        # tag concerned, following their out-edges into the region (usually few: one tag's holders).
        run("SET LOCAL enable_seqscan = off")  # index probes, whatever the statistics say (see the writes)
        held = f"""SELECT d.ds, d.field, d.tag, d.ds AS od, d.field AS of
                FROM ({direct_tags} WHERE true {assign_tag}) d
                UNION ALL
                SELECT p.dataset_id, p.field, p.tag_id, p.origin_dataset_id, p.origin_field
                FROM {prop} p WHERE p.valid_to IS NULL {prop_tag}"""
        if _inflow_by_holders(cur, params, region, held):
            # In a table of their own, analysed: the planner then drives the edges from the (few) holders
            # instead of hashing the region's in-edges against them.
            run(
                f"""CREATE TEMPORARY TABLE prop_held ON COMMIT DROP AS
                SELECT h.* FROM ({held}) h WHERE NOT EXISTS (SELECT 1 FROM prop_region o WHERE o.id = h.ds)"""
            )
            run("ANALYZE prop_held")
            inflow = f"""held AS (SELECT * FROM prop_held), inflow AS (
                SELECT e.source_id, e.target_id, e.job_id FROM (SELECT DISTINCT ds FROM prop_held) s
                JOIN {edge} e ON e.source_id = s.ds AND e.valid_to IS NULL JOIN prop_region r ON r.id = e.target_id
            )"""
        else:
            inflow = f"""inflow AS (
                SELECT e.source_id, e.target_id, e.job_id FROM {edge} e JOIN prop_region r ON r.id = e.target_id
                WHERE e.valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM prop_region o WHERE o.id = e.source_id)
            ), outside AS (SELECT DISTINCT source_id AS id FROM inflow),
            held AS (SELECT h.* FROM ({held}) h JOIN outside o ON o.id = h.ds)"""
        run(
            f"""INSERT INTO prop_reach
            WITH {inflow}
            SELECT DISTINCT ON (i.target_id, h.tag) i.target_id, '', h.tag, h.od, h.of, i.source_id, h.field,
                i.job_id, 0
            FROM inflow i JOIN held h ON h.ds = i.source_id
            WHERE NOT EXISTS (SELECT 1 FROM prop_blocked b WHERE b.job_id = i.job_id AND b.tag_id = h.tag)
            ORDER BY i.target_id, h.tag, i.source_id, h.field, i.job_id
            ON CONFLICT DO NOTHING"""
        )
        run("RESET enable_seqscan")
        level = 0
        while True:
            run("ANALYZE prop_reach")
            level += 1
            if not run(
                f"""INSERT INTO prop_reach
                SELECT DISTINCT ON (e.target_id, r.tag) e.target_id, '', r.tag, r.od, r.of, r.ds, r.field,
                    e.job_id, %(level)s
                FROM prop_reach r JOIN {edge} e ON e.source_id = r.ds AND e.valid_to IS NULL
                WHERE r.lvl = %(level)s - 1
                  AND NOT EXISTS (SELECT 1 FROM prop_blocked b WHERE b.job_id = e.job_id AND b.tag_id = r.tag)
                  AND NOT EXISTS (SELECT 1 FROM prop_reach x WHERE x.ds = e.target_id AND x.field = ''
                                  AND x.tag = r.tag)
                ORDER BY e.target_id, r.tag, r.ds, r.field, e.job_id
                ON CONFLICT DO NOTHING""",
                {"level": level},
            ):
                break
        # The writes probe the open rows through their indexes: right after a big region was written or
        # withdrawn, the table's statistics can say "empty" while it holds (or is filling with) 100k rows,
        # and a sequential scan per reached row would be quadratic.
        run("SET LOCAL enable_seqscan = off")
        now = timezone.now()
        cur.execute(
            f"""UPDATE {prop} p SET valid_to = %(now)s FROM prop_region r
            WHERE p.dataset_id = r.id AND p.valid_to IS NULL {prop_tag}
              AND NOT EXISTS (
                SELECT 1 FROM prop_reach x WHERE x.vd IS NOT NULL AND x.ds = p.dataset_id AND x.field = p.field
                AND x.tag = p.tag_id AND x.od = p.origin_dataset_id AND x.of = p.origin_field
                AND x.vd = p.via_dataset_id AND x.vf = p.via_field AND x.job = p.job_id)
            RETURNING p.dataset_id, p.field, p.tag_id""",
            {**params, "now": now},
        )
        ended_rows = cur.fetchall()
        cur.execute(
            f"""INSERT INTO {prop} (dataset_id, field, tag_id, origin_dataset_id, origin_field, via_dataset_id,
                via_field, job_id, valid_from, valid_to)
            SELECT x.ds, x.field, x.tag, x.od, x.of, x.vd, x.vf, x.job, %(now)s, NULL FROM prop_reach x
            WHERE x.vd IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM {prop} p WHERE p.valid_to IS NULL AND p.dataset_id = x.ds AND p.field = x.field
                AND p.tag_id = x.tag)
            RETURNING dataset_id, field, tag_id""",
            {"now": now},
        )
        added_rows = cur.fetchall()
        run("RESET enable_seqscan")
        run("DROP TABLE IF EXISTS prop_region, prop_blocked, prop_reach, prop_held")
    return _after_write(roots, [tuple(r) for r in ended_rows], [tuple(r) for r in added_rows], region=region)
