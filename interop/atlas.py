"""Apache Atlas interop with pyapacheatlas: Steward's catalog and lineage as Atlas type definitions and entities,
and Atlas entities, processes and classifications back into Steward.

The document (``build_export`` writes it, ``import_document`` reads it) is what Atlas's REST API takes:
``typeDefs`` is the body of ``POST /api/atlas/v2/types/typedefs`` and ``entities`` that of
``POST /api/atlas/v2/entity/bulk`` (references between entities by negative placeholder guids), plus a
``steward`` header. Mapping:

- dataset → ``steward_dataset`` (a ``DataSet``; attributes ``namespace``, ``description``, ``properties``);
  its schema fields → ``steward_column`` entities (``type``, ``position``) linked by the
  ``steward_dataset_columns`` relationship (``table``/``columns``);
- job → ``steward_process`` (a ``Process``) with the current dataset lineage as ``inputs``/``outputs``;
  column lineage → one ``steward_column_lineage`` (a ``Process`` over columns) per output column, linked to its
  process by ``query``;
- classification levels (C1..C4) and tags → Atlas classifications with ``propagate: false`` (Steward computes
  propagation along lineage and stays the source of truth); only *direct* levels and tags are exported.

Import accepts these types and also Atlas-native documents: any entity with ``inputs``/``outputs`` is a process
(``*column_lineage`` ones are column lineage), an entity with ``columns`` (or referred to by a column's
``table``) is a dataset; without a ``namespace`` attribute, ``name@cluster`` qualified names give
``atlas://cluster``. Importing the same document twice changes nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pyapacheatlas.auth import BasicAuthentication
from pyapacheatlas.core import AtlasClient
from pyapacheatlas.core.entity import AtlasClassification, AtlasEntity, AtlasProcess
from pyapacheatlas.core.typedef import (
    AtlasAttributeDef,
    AtlasRelationshipEndDef,
    Cardinality,
    ClassificationTypeDef,
    EntityTypeDef,
    RelationshipTypeDef,
)

from catalog.classification import levels
from catalog.models import Dataset, SchemaField, Tag, TagAssignment
from catalog.services import dataset_bulk_upsert, tag_create
from catalog.validation import ProblemCollector, parse_dataset
from lineage.models import ColumnEdge, Edge, Job
from lineage.services.ingest import ingest
from steward.errors import ValidationFailed
from steward.identity import Actor

__all__ = [
    "FORMAT",
    "ImportResult",
    "build_export",
    "build_typedefs",
    "import_document",
    "push_document",
    "validate_document",
]

FORMAT = "steward-atlas/1"
DATASET, COLUMN, PROCESS, COLUMN_LINEAGE = (
    "steward_dataset",
    "steward_column",
    "steward_process",
    "steward_column_lineage",
)
COLUMNS_REL, QUERY_REL = "steward_dataset_columns", "steward_process_column_lineages"
# Atlas's rule for type names (AtlasTypeUtil): a letter, then letters, digits, '_' or ' '.
TYPE_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9_ ]*$")
BUILTIN_TYPES = {"Referenceable": set(), "Asset": {"name", "description", "owner"}}
BUILTIN_TYPES["DataSet"] = BUILTIN_TYPES["Asset"] | {"qualifiedName"}
BUILTIN_TYPES["Process"] = BUILTIN_TYPES["DataSet"] | {"inputs", "outputs"}
EPOCH = "1970-01-01T00:00:00+00:00"


# --- Names -----------------------------------------------------------------------------------------------------


def dataset_qn(namespace: str, name: str) -> str:
    return f"{name}@{namespace}"


def column_qn(namespace: str, name: str, column: str) -> str:
    return f"{name}#{column}@{namespace}"


def process_qn(namespace: str, name: str) -> str:
    return f"{name}@{namespace}"


def tag_type_name(key: str) -> str:
    """An Atlas classification name for a tag key (dots and dashes become '_'; the key is kept in options)."""
    return "tag_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def _tag_key_from_atlas(name: str) -> str:
    key = re.sub(r"[^a-z0-9._-]", "_", name.strip().lower()).strip("_.-") or "atlas"
    return key[:100]


# --- Type definitions -------------------------------------------------------------------------------------------


def build_typedefs(tags: Iterable[Tag]) -> dict[str, Any]:
    """Steward's entity, relationship and classification types for Atlas."""
    string = {"typeName": "string", "isOptional": True}
    dataset = EntityTypeDef(
        DATASET,
        superTypes=["DataSet"],
        description="A Steward dataset (OpenLineage namespace and name).",
        attributeDefs=[
            AtlasAttributeDef("namespace", **{**string, "isOptional": False}),
            AtlasAttributeDef("properties", **string),
        ],
        serviceType="steward",
    )
    column = EntityTypeDef(
        COLUMN,
        superTypes=["DataSet"],
        description="A field of a Steward dataset's schema.",
        attributeDefs=[
            AtlasAttributeDef("type", **string),
            AtlasAttributeDef("position", typeName="int", isOptional=True),
            AtlasAttributeDef("inSchema", typeName="boolean", isOptional=True),
        ],
        serviceType="steward",
    )
    process = EntityTypeDef(
        PROCESS,
        superTypes=["Process"],
        description="A Steward lineage job (its current inputs and outputs).",
        attributeDefs=[AtlasAttributeDef("namespace", **{**string, "isOptional": False})],
        serviceType="steward",
    )
    column_lineage = EntityTypeDef(
        COLUMN_LINEAGE,
        superTypes=["Process"],
        description="Columns one output column of a Steward job is derived from.",
        serviceType="steward",
    )
    columns_rel = RelationshipTypeDef(
        COLUMNS_REL,
        endDef1=AtlasRelationshipEndDef("columns", DATASET, cardinality=Cardinality.SET, isContainer=True),
        endDef2=AtlasRelationshipEndDef("table", COLUMN, cardinality=Cardinality.SINGLE),
        relationshipCategory="COMPOSITION",
        serviceType="steward",
    )
    query_rel = RelationshipTypeDef(
        QUERY_REL,
        endDef1=AtlasRelationshipEndDef("columnLineages", PROCESS, cardinality=Cardinality.SET, isContainer=True),
        endDef2=AtlasRelationshipEndDef("query", COLUMN_LINEAGE, cardinality=Cardinality.SINGLE),
        relationshipCategory="COMPOSITION",
        serviceType="steward",
    )
    targets = [DATASET, COLUMN]
    classifications = [
        ClassificationTypeDef(
            lvl.code,
            entityTypes=targets,
            description=f"Steward classification level {lvl.code} ({lvl.name}).",
            options={"steward.level": lvl.code},
        )
        for lvl in levels()
    ]
    for tag in tags:
        classifications.append(
            ClassificationTypeDef(
                tag_type_name(tag.key),
                entityTypes=targets,
                description=tag.description or f"Steward tag {tag.key}.",
                options={
                    "steward.tag": tag.key,
                    "steward.impliedLevel": tag.implied_level,
                    "steward.propagates": "true" if tag.propagates else "false",
                },
            )
        )
    return {
        "enumDefs": [],
        "structDefs": [],
        "classificationDefs": [c.to_json() for c in classifications],
        "entityDefs": [t.to_json() for t in (dataset, column, process, column_lineage)],
        "relationshipDefs": [r.to_json() for r in (columns_rel, query_rel)],
    }


# --- Export -----------------------------------------------------------------------------------------------------


def _classifications(level: str, tag_keys: Iterable[str]) -> list[dict[str, Any]]:
    names = ([level] if level else []) + [tag_type_name(k) for k in sorted(tag_keys)]
    # propagate off: Atlas must not spread Steward's labels on its own.
    return [AtlasClassification(n, propagate=False, removePropagationsOnEntityDelete=False).to_json() for n in names]


def _ref(entity: AtlasEntity) -> dict[str, Any]:
    return {
        "guid": entity.guid,
        "typeName": entity.typeName,
        "uniqueAttributes": {"qualifiedName": entity.qualifiedName},
    }


def build_export(*, since: datetime | None = None, progress: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """The Atlas document for the whole catalog (or what changed since ``since``: datasets and jobs updated
    then, plus the datasets their lineage refers to). ``progress(n)`` is called as entities are built."""
    guids = iter(range(-1, -(10**9), -1))
    datasets = Dataset.objects.all().order_by("namespace", "name")
    jobs = Job.objects.all().order_by("namespace", "name")
    if since is not None:
        datasets = datasets.filter(updated_at__gte=since)
        jobs = jobs.filter(updated_at__gte=since)
    edges = list(Edge.objects.filter(valid_to__isnull=True, job__in=jobs).select_related("source", "target"))
    col_edges = list(
        ColumnEdge.objects.filter(valid_to__isnull=True, job__in=jobs, transformation="DIRECT").select_related(
            "source_dataset", "target_dataset"
        )
    )
    wanted = {d.pk: d for d in datasets}
    for e in edges:
        wanted.setdefault(e.source_id, e.source)
        wanted.setdefault(e.target_id, e.target)
    for c in col_edges:
        wanted.setdefault(c.source_dataset_id, c.source_dataset)
        wanted.setdefault(c.target_dataset_id, c.target_dataset)
    ds_tags: dict[Any, list[str]] = defaultdict(list)
    field_tags: dict[Any, list[str]] = defaultdict(list)
    for a in TagAssignment.objects.filter(dataset_id__in=list(wanted)).select_related("tag"):
        (field_tags[a.field_id] if a.field_id else ds_tags[a.dataset_id]).append(a.tag.key)
    fields: dict[Any, list[SchemaField]] = defaultdict(list)
    for f in SchemaField.objects.filter(dataset_id__in=list(wanted)).order_by("ordinal"):
        fields[f.dataset_id].append(f)

    entities: list[dict[str, Any]] = []
    ds_entity: dict[Any, AtlasEntity] = {}
    col_entity: dict[tuple[Any, str], AtlasEntity] = {}

    def column(ds: Dataset, name: str, f: SchemaField | None = None) -> AtlasEntity:
        key = (ds.pk, name)
        if key not in col_entity:
            attrs: dict[str, Any] = {"type": f.type if f else "", "position": f.ordinal if f else -1}
            attrs["inSchema"] = f is not None
            col = AtlasEntity(
                name, COLUMN, column_qn(ds.namespace, ds.name, name), guid=str(next(guids)), attributes=attrs
            )
            if f is not None and f.description:
                col.attributes["description"] = f.description
            col.relationshipAttributes = {"table": _ref(ds_entity[ds.pk])}
            col.classifications = _classifications(f.classification if f else "", field_tags.get(f.pk, []) if f else [])
            col_entity[key] = col
        return col_entity[key]

    for ds in sorted(wanted.values(), key=lambda d: (d.namespace, d.name)):
        entity = AtlasEntity(
            ds.name,
            DATASET,
            dataset_qn(ds.namespace, ds.name),
            guid=str(next(guids)),
            attributes={"namespace": ds.namespace, "properties": json.dumps(ds.properties or {}, sort_keys=True)},
        )
        entity.attributes["description"] = ds.description
        entity.classifications = _classifications(ds.classification, ds_tags.get(ds.pk, []))
        ds_entity[ds.pk] = entity
        for f in fields.get(ds.pk, []):
            column(ds, f.name, f)
        progress(1)

    by_job: dict[Any, tuple[set, set]] = defaultdict(lambda: (set(), set()))
    for e in edges:
        by_job[e.job_id][0].add(e.source_id)
        by_job[e.job_id][1].add(e.target_id)
    col_by_target: dict[tuple[Any, Any, str], list[ColumnEdge]] = defaultdict(list)
    for c in col_edges:
        col_by_target[(c.job_id, c.target_dataset_id, c.target_field)].append(c)
    lineage_entities: list[AtlasEntity] = []
    for job in jobs:
        if job.pk not in by_job and not any(k[0] == job.pk for k in col_by_target):
            continue
        ins, outs = by_job[job.pk]
        proc = AtlasProcess(
            job.name,
            PROCESS,
            process_qn(job.namespace, job.name),
            inputs=[],
            outputs=[],
            guid=str(next(guids)),
            attributes={"namespace": job.namespace},
        )
        proc.attributes["inputs"] = [_ref(ds_entity[i]) for i in sorted(ins, key=str)]
        proc.attributes["outputs"] = [_ref(ds_entity[o]) for o in sorted(outs, key=str)]
        lineage_entities.append(proc)
        for (job_id, target_id, target_field), sources in sorted(col_by_target.items(), key=lambda kv: str(kv[0])):
            if job_id != job.pk:
                continue
            target_ds = wanted[target_id]
            target_col = column(target_ds, target_field, _field_named(fields, target_id, target_field))
            inputs = [
                column(c.source_dataset, c.source_field, _field_named(fields, c.source_dataset_id, c.source_field))
                for c in sorted(sources, key=lambda c: (str(c.source_dataset_id), c.source_field))
            ]
            cl = AtlasProcess(
                f"{job.name}:{target_ds.name}#{target_field}",
                COLUMN_LINEAGE,
                f"{process_qn(job.namespace, job.name)}:{target_col.qualifiedName}",
                inputs=[],
                outputs=[],
                guid=str(next(guids)),
            )
            cl.attributes["inputs"] = [_ref(i) for i in inputs]
            cl.attributes["outputs"] = [_ref(target_col)]
            cl.relationshipAttributes = {"query": _ref(proc)}
            lineage_entities.append(cl)
        progress(1)

    for e in [*ds_entity.values(), *col_entity.values(), *lineage_entities]:
        entities.append(e.to_json())
    tag_keys = set(TagAssignment.objects.filter(dataset_id__in=list(wanted)).values_list("tag__key", flat=True))
    return {
        "steward": {
            "format": FORMAT,
            "exportedAt": datetime.now(UTC).isoformat(),
            "since": since and since.isoformat(),
        },
        "typeDefs": build_typedefs(Tag.objects.filter(key__in=tag_keys).order_by("key")),
        "entities": entities,
    }


def _field_named(fields: dict[Any, list[SchemaField]], dataset_id: Any, name: str) -> SchemaField | None:
    return next((f for f in fields.get(dataset_id, []) if f.name == name), None)


# --- Validation (Atlas's type-definition rules, as far as a document can be checked without a server) ------------


def validate_document(doc: Any) -> None:
    """Raise ``ValidationFailed`` naming each problem: the document's shape, type names, super types, attributes
    used by entities, classification names and their entity types, references between entities."""
    problems = ProblemCollector()
    if not isinstance(doc, dict) or not isinstance(doc.get("entities"), list):
        problems.add("entities", "An Atlas document needs an 'entities' list.", "invalid_type")
        problems.raise_if_any()
    typedefs = doc.get("typeDefs") or {}
    entity_defs = {d["name"]: d for d in typedefs.get("entityDefs", [])}
    class_defs = {d["name"]: d for d in typedefs.get("classificationDefs", [])}
    for i, d in enumerate([*entity_defs.values(), *class_defs.values(), *typedefs.get("relationshipDefs", [])]):
        if not TYPE_NAME_RE.match(d.get("name", "")):
            problems.add(f"typeDefs[{i}].name", f"{d.get('name')!r} is not a valid Atlas type name.", "invalid")
    for name, d in entity_defs.items():
        for sup in d.get("superTypes", []):
            if sup not in entity_defs and sup not in BUILTIN_TYPES:
                problems.add(f"typeDefs.entityDefs.{name}", f"Unknown super type {sup!r}.", "unknown_type")
    for r in typedefs.get("relationshipDefs", []):
        for end in ("endDef1", "endDef2"):
            if r[end]["type"] not in entity_defs:
                problems.add(f"typeDefs.relationshipDefs.{r['name']}", f"{end} names an unknown type.", "unknown_type")

    def attrs_of(type_name: str) -> set[str] | None:
        if type_name in BUILTIN_TYPES:
            return BUILTIN_TYPES[type_name]
        d = entity_defs.get(type_name)
        if d is None:
            return None
        out = {a["name"] for a in d.get("attributeDefs", [])}
        for sup in d.get("superTypes", []):
            out |= attrs_of(sup) or set()
        return out

    guids = {str(e.get("guid")) for e in doc["entities"] if isinstance(e, dict)}
    for i, e in enumerate(doc["entities"]):
        path = f"entities[{i}]"
        if not isinstance(e, dict) or not e.get("typeName"):
            problems.add(path, "Each entity needs a typeName.", "invalid")
            continue
        attrs = e.get("attributes") or {}
        if not attrs.get("qualifiedName"):
            problems.add(f"{path}.attributes.qualifiedName", "Required (Atlas's unique attribute).", "required")
        known = attrs_of(e["typeName"]) if entity_defs else None
        if known is not None:
            for a in attrs:
                if a not in known:
                    problems.add(f"{path}.attributes.{a}", f"Not an attribute of {e['typeName']}.", "unknown_field")
        elif entity_defs and e["typeName"] not in entity_defs:
            problems.add(f"{path}.typeName", f"Type {e['typeName']!r} is not defined in typeDefs.", "unknown_type")
        for j, c in enumerate(e.get("classifications") or []):
            cdef = class_defs.get(c.get("typeName"))
            if class_defs and cdef is None:
                problems.add(
                    f"{path}.classifications[{j}]", f"Unknown classification {c.get('typeName')!r}.", "unknown"
                )
            elif cdef and cdef.get("entityTypes") and e["typeName"] not in cdef["entityTypes"]:
                problems.add(f"{path}.classifications[{j}]", f"Not allowed on {e['typeName']}.", "invalid")
        for ref in _refs_in(e):
            if "guid" in ref and str(ref["guid"]).startswith("-") and str(ref["guid"]) not in guids:
                problems.add(path, f"Refers to guid {ref['guid']} that is not in the document.", "unknown_reference")
    problems.raise_if_any()


def _refs_in(entity: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for bag in (entity.get("attributes") or {}, entity.get("relationshipAttributes") or {}):
        for value in bag.values():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, dict) and ("guid" in v or "uniqueAttributes" in v):
                    out.append(v)
    return out


# --- Import -----------------------------------------------------------------------------------------------------


@dataclass
class ImportResult:
    tags_created: list[str] = field(default_factory=list)
    datasets_created: int = 0
    datasets_updated: int = 0
    datasets_unchanged: int = 0
    processes: int = 0
    lineage_events_new: int = 0


def _known(code: str, codes: set[str]) -> str:
    return code if code in codes else ""


def _identity(entity: dict[str, Any]) -> tuple[str, str]:
    attrs = entity.get("attributes") or {}
    qn = str(attrs.get("qualifiedName") or "")
    if attrs.get("namespace"):
        name = attrs.get("name") or qn.split("@", 1)[0]
        return str(attrs["namespace"]), str(name)
    name, _, cluster = qn.rpartition("@")
    return f"atlas://{cluster or 'default'}", name or qn


@transaction.atomic
def import_document(
    doc: dict[str, Any], *, actor: Actor, progress: Callable[[int], None] = lambda n: None
) -> ImportResult:
    """Bring an Atlas document into Steward, all or nothing: tags for its classifications, datasets with their
    schemas, direct levels and tags (one bulk upsert), processes as OpenLineage events (deduplicated by content)."""
    validate_document(doc)
    result = ImportResult()
    level_codes = {lvl.code for lvl in levels()}
    class_defs = {d["name"]: d for d in (doc.get("typeDefs") or {}).get("classificationDefs", [])}

    def tag_of(type_name: str) -> tuple[str, str] | None:
        """('level', code) or ('tag', key) for an Atlas classification name."""
        opts = (class_defs.get(type_name) or {}).get("options") or {}
        if opts.get("steward.level") in level_codes:
            return "level", opts["steward.level"]
        if type_name in level_codes:
            return "level", type_name
        return "tag", opts.get("steward.tag") or _tag_key_from_atlas(type_name)

    by_guid = {str(e.get("guid")): e for e in doc["entities"]}
    by_qn = {(e["typeName"], (e.get("attributes") or {}).get("qualifiedName")): e for e in doc["entities"]}

    def resolve(ref: dict[str, Any]) -> dict[str, Any] | None:
        if str(ref.get("guid")) in by_guid:
            return by_guid[str(ref["guid"])]
        qn = (ref.get("uniqueAttributes") or {}).get("qualifiedName")
        return by_qn.get((ref.get("typeName"), qn))

    def is_process(e: dict[str, Any]) -> bool:
        attrs = e.get("attributes") or {}
        return e["typeName"] in (PROCESS, COLUMN_LINEAGE) or ("inputs" in attrs and "outputs" in attrs)

    def is_column_lineage(e: dict[str, Any]) -> bool:
        return e["typeName"] == COLUMN_LINEAGE or e["typeName"].endswith("column_lineage")

    # Columns belong to the dataset their `table` names (or that lists them in `columns`).
    columns_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    table_of: dict[str, dict[str, Any]] = {}
    for e in doc["entities"]:
        for key in ("columns",):
            for bag in (e.get("attributes") or {}, e.get("relationshipAttributes") or {}):
                for ref in bag.get(key) or []:
                    col = resolve(ref)
                    if col is not None and id(col) not in {id(c) for c in columns_of[str(e.get("guid"))]}:
                        columns_of[str(e.get("guid"))].append(col)
                        table_of[str(col.get("guid"))] = e
    for e in doc["entities"]:
        for bag in (e.get("attributes") or {}, e.get("relationshipAttributes") or {}):
            table = resolve(bag["table"]) if isinstance(bag.get("table"), dict) else None
            if table is not None and str(e.get("guid")) not in table_of:
                table_of[str(e.get("guid"))] = table
                columns_of[str(table.get("guid"))].append(e)
    datasets = [
        e
        for e in doc["entities"]
        if not is_process(e) and str(e.get("guid")) not in table_of and e["typeName"] != COLUMN
    ]

    # Tag vocabulary first (creating a tag needs the tag curator's role, like the API).
    wanted_tags: dict[str, dict[str, str]] = {}
    for e in doc["entities"]:
        for c in e.get("classifications") or []:
            kind, value = tag_of(c["typeName"]) or ("", "")
            if kind == "tag":
                wanted_tags[value] = (class_defs.get(c["typeName"]) or {}).get("options") or {}
    existing = set(Tag.objects.filter(key__in=list(wanted_tags)).values_list("key", flat=True))
    for key, opts in sorted(wanted_tags.items()):
        if key not in existing:
            tag_create(
                actor=actor,
                key=key,
                description=(class_defs.get(tag_type_name(key)) or {}).get("description", ""),
                implied_level=_known(opts.get("steward.impliedLevel", ""), level_codes),
                propagates=opts.get("steward.propagates", "true") != "false",
            )
            result.tags_created.append(key)

    def labels(e: dict[str, Any]) -> tuple[str, list[str]]:
        level, tags = "", []
        for c in e.get("classifications") or []:
            kind, value = tag_of(c["typeName"]) or ("", "")
            if kind == "level":
                level = value
            elif kind == "tag":
                tags.append(value)
        return level, sorted(set(tags))

    problems = ProblemCollector()
    specs = []
    for e in datasets:
        namespace, name = _identity(e)
        attrs = e.get("attributes") or {}
        level, tags = labels(e)
        cols = [c for c in columns_of.get(str(e.get("guid")), []) if (c.get("attributes") or {}).get("inSchema", True)]
        cols.sort(key=lambda c: ((c.get("attributes") or {}).get("position") or 0, c["attributes"].get("name", "")))
        fields = []
        for c in cols:
            clevel, ctags = labels(c)
            ca = c.get("attributes") or {}
            fields.append(
                {
                    "name": ca.get("name") or str(ca.get("qualifiedName")),
                    "type": str(ca.get("type") or ca.get("data_type") or ""),
                    "description": ca.get("description") or "",
                    "classification": clevel,
                    "tags": ctags,
                }
            )
        try:
            props = json.loads(attrs["properties"]) if isinstance(attrs.get("properties"), str) else None
        except ValueError:
            props = None
        data: dict[str, Any] = {
            "namespace": namespace,
            "name": name,
            "description": attrs.get("description") or "",
            "classification": level,
            "fields": fields,
            "tags": tags,
        }
        if isinstance(props, dict):
            data["properties"] = props
        spec = parse_dataset(data, f"entities[{doc['entities'].index(e)}]", problems)
        if spec is not None:
            specs.append(spec)
        progress(1)
    problems.raise_if_any()
    if specs:
        upsert = dataset_bulk_upsert(actor=actor, specs=specs)
        result.datasets_created = len(upsert.created)
        result.datasets_updated = len(upsert.updated)
        result.datasets_unchanged = len(upsert.unchanged)
    events = _lineage_events(doc, resolve, is_process, is_column_lineage, table_of)
    result.processes = len(events)
    if events:
        outcomes = ingest(actor=actor, events=events, batch=True)
        result.lineage_events_new = sum(1 for o in outcomes if o.status == "applied")
    progress(len(events))
    return result


def _lineage_events(
    doc: dict[str, Any],
    resolve: Callable[[dict[str, Any]], dict[str, Any] | None],
    is_process: Callable[[dict[str, Any]], bool],
    is_column_lineage: Callable[[dict[str, Any]], bool],
    table_of: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """One OpenLineage COMPLETE event per process, with its column lineage as a facet on the outputs. The run
    id and time come from the process (the same document gives the same events, which ingestion dedupes)."""
    processes = [e for e in doc["entities"] if is_process(e) and not is_column_lineage(e)]
    column_lineage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in doc["entities"]:
        if is_column_lineage(e):
            query = (e.get("relationshipAttributes") or {}).get("query") or (e.get("attributes") or {}).get("query")
            proc = resolve(query) if isinstance(query, dict) else None
            if proc is not None:
                column_lineage[str(proc.get("guid"))].append(e)
    when = (doc.get("steward") or {}).get("exportedAt") or EPOCH
    events = []
    for p in processes:
        attrs = p.get("attributes") or {}
        namespace, name = _identity(p)
        ins = [d for d in (resolve(r) for r in attrs.get("inputs") or []) if d is not None]
        outs = [d for d in (resolve(r) for r in attrs.get("outputs") or []) if d is not None]
        facets: dict[str, dict[str, Any]] = defaultdict(dict)
        for cl in column_lineage.get(str(p.get("guid")), []):
            ca = cl.get("attributes") or {}
            for target_ref in ca.get("outputs") or []:
                target = resolve(target_ref)
                table = table_of.get(str(target.get("guid"))) if target else None
                if target is None or table is None:
                    continue
                sources = []
                for src_ref in ca.get("inputs") or []:
                    src = resolve(src_ref)
                    src_table = table_of.get(str(src.get("guid"))) if src else None
                    if src is not None and src_table is not None:
                        sns, sname = _identity(src_table)
                        sources.append({"namespace": sns, "name": sname, "field": src["attributes"]["name"]})
                facets[str(table.get("guid"))][target["attributes"]["name"]] = {"inputFields": sources}
                if table not in outs:
                    outs.append(table)

        def ds(
            e: dict[str, Any], facets: dict[str, dict[str, Any]] = facets, with_columns: bool = False
        ) -> dict[str, Any]:
            ns, nm = _identity(e)
            out: dict[str, Any] = {"namespace": ns, "name": nm, "facets": {}}
            if with_columns and facets.get(str(e.get("guid"))):
                out["facets"]["columnLineage"] = {
                    "_producer": "https://steward/atlas-import",
                    "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
                    "fields": facets[str(e.get("guid"))],
                }
            return out

        run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"atlas:{attrs.get('qualifiedName')}"))
        events.append(
            {
                "eventType": "COMPLETE",
                "eventTime": when,
                "run": {"runId": run_id, "facets": {}},
                "job": {"namespace": namespace, "name": name, "facets": {}},
                "inputs": [ds(d) for d in ins],
                "outputs": [ds(d, with_columns=True) for d in outs],
                "producer": "https://steward/atlas-import",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            }
        )
    return events


# --- Push to a live Atlas -----------------------------------------------------------------------------------------


def push_document(doc: dict[str, Any], *, url: str | None = None, batch_size: int = 500) -> dict[str, Any]:
    """Send the type definitions, then the entities, to Atlas's REST API (``STEWARD_ATLAS_URL``, basic auth
    from ``STEWARD_ATLAS_USERNAME``/``STEWARD_ATLAS_PASSWORD``) with pyapacheatlas's client."""
    base = (url or settings.STEWARD_ATLAS_URL).rstrip("/")
    if not base:
        raise ValidationFailed.one("STEWARD_ATLAS_URL", "No Atlas endpoint is configured.", "required")
    client = AtlasClient(
        endpoint_url=f"{base}/api/atlas/v2",
        authentication=BasicAuthentication(settings.STEWARD_ATLAS_USERNAME, settings.STEWARD_ATLAS_PASSWORD),
    )
    types = client.upload_typedefs(doc["typeDefs"], force_update=True)
    entities = client.upload_entities(doc["entities"], batch_size=batch_size) if doc["entities"] else []
    return {"typeDefs": types, "entities": entities}


def push_changes() -> int:
    """The scheduled, incremental push (Celery beat, ``STEWARD_ATLAS_PUSH_SECONDS``): what changed since the last
    successful push (everything the first time), typedefs included. Returns the number of entities sent."""
    marker = Path(settings.STATE_DIR) / "atlas-push-since"
    since = datetime.fromisoformat(marker.read_text().strip()) if marker.is_file() else None
    started = timezone.now()
    doc = build_export(since=since)
    if doc["entities"]:
        push_document(doc)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(started.isoformat())
    return len(doc["entities"])
