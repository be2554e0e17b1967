"""Parse and validate OpenLineage events (RunEvent, DatasetEvent, JobEvent) into plain values.

Every problem names its JSON path (``run.runId``, ``outputs[0].facets.schema.fields[2].name``) so a
producer can fix it. Unknown facets are kept as they are; only the facets Steward uses are checked.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.validation import CONTROL_RE, MAX_FIELD_NAME, MAX_NAME, MAX_NAMESPACE, MAX_TYPE
from steward.errors import ProblemCollector
from steward.times import TimeProblem, parse_aware_time

__all__ = ["EVENT_TYPES", "DatasetRef", "ParsedEvent", "parse_event"]

EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")


@dataclass
class DatasetRef:
    namespace: str
    name: str
    fields: list[dict[str, str]] | None = None  # from the schema facet: [{name, type, description}]
    version: str | None = None  # from the version facet
    # output field -> [(input namespace, input name, input field, DIRECT|INDIRECT)] from the columnLineage
    # facet; the output field "" holds its dataset-level inputs (the facet's ``dataset`` list, INDIRECT).
    column_lineage: dict[str, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    # What the facets that carry meaning say (``_meaning``): description, owners, tags, aliases, platform;
    # a key is present only when its facet was sent.
    meaning: dict[str, Any] = field(default_factory=dict)

    @property
    def identity(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass
class ParsedEvent:
    kind: str  # run | dataset | job
    event_time: datetime
    event_type: str = ""
    run_id: uuid.UUID | None = None
    run_facets: dict[str, Any] = field(default_factory=dict)
    job_namespace: str = ""
    job_name: str = ""
    job_facets: dict[str, Any] = field(default_factory=dict)
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    dataset: DatasetRef | None = None


def _time(value: Any, path: str, problems: ProblemCollector) -> datetime | None:
    if not isinstance(value, str) or not value:
        problems.add(path, "Required: an ISO 8601 time with a UTC offset, e.g. 2026-01-31T12:00:00Z.", "required")
        return None
    try:
        return parse_aware_time(value)
    except TimeProblem as problem:
        problems.add(path, problem.message, problem.code)
        return None


def _text(data: dict, key: str, path: str, problems: ProblemCollector, max_length: int) -> str | None:
    value = data.get(key)
    where = f"{path}.{key}" if path else key
    if not isinstance(value, str) or not value.strip():
        problems.add(where, "Required: a non-blank string.", "required")
        return None
    if len(value) > max_length:
        problems.add(where, f"Too long: {len(value)} characters, at most {max_length}.", "max_length")
        return None
    if CONTROL_RE.search(value):  # as the catalog API refuses them
        problems.add(where, "Contains control characters.", "invalid")
        return None
    return value


# Any control character, tab and newline included: a namespace is an identifier.
_NAMESPACE_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _namespace(value: Any, path: str, problems: ProblemCollector) -> str | None:
    """Every form the OpenLineage naming spec and its clients produce (``postgres://h:5432``,
    ``arn:aws:glue:us-east-1:123456789012``, ``file:/data``, ``duckdb:///abs/x.duckdb``, bare names such as
    ``SnowflakeOpenLineage``); refused only when unusable: blank, over-long, or holding control characters."""
    if not isinstance(value, str) or not value.strip():
        problems.add(path, "A namespace is required, e.g. postgres://warehouse:5432.", "required")
        return None
    if len(value) > MAX_NAMESPACE:
        problems.add(path, f"Too long: {len(value)} characters, at most {MAX_NAMESPACE}.", "max_length")
        return None
    if _NAMESPACE_CONTROL_RE.search(value):
        problems.add(path, "Contains control characters.", "invalid")
        return None
    return value


def _object(data: Any, path: str, problems: ProblemCollector, *, required: bool = True) -> dict | None:
    if data is None and not required:
        return {}
    if not isinstance(data, dict):
        problems.add(path, "Required: a JSON object." if data is None else "Must be a JSON object.", "invalid_type")
        return None
    return data


def _job(data: dict, problems: ProblemCollector) -> tuple[str, str, dict]:
    job = _object(data.get("job"), "job", problems)
    if job is None:
        return "", "", {}
    namespace = _text(job, "namespace", "job", problems, MAX_NAMESPACE) or ""
    name = _text(job, "name", "job", problems, MAX_NAME) or ""
    facets = _object(job.get("facets"), "job.facets", problems, required=False) or {}
    return namespace, name, facets


def _dataset(data: Any, path: str, problems: ProblemCollector) -> DatasetRef | None:
    obj = _object(data, path, problems)
    if obj is None:
        return None
    namespace = _namespace(obj.get("namespace"), f"{path}.namespace", problems)
    name = _text(obj, "name", path, problems, MAX_NAME)
    facets = _object(obj.get("facets"), f"{path}.facets", problems, required=False) or {}
    if namespace is None or name is None:
        return None
    ref = DatasetRef(namespace=namespace, name=name)
    schema = facets.get("schema")
    if schema is not None:
        ref.fields = _schema_fields(schema, f"{path}.facets.schema", problems)
    version = facets.get("version")
    if isinstance(version, dict) and version.get("datasetVersion") is not None:
        ref.version = str(version["datasetVersion"])[:255]
    columns = facets.get("columnLineage")
    if columns is not None:
        ref.column_lineage = _column_lineage(columns, f"{path}.facets.columnLineage", problems)
    ref.meaning = _meaning(facets, f"{path}.facets", problems)
    return ref


def _facet_list(facets: dict, name: str, key: str, path: str, problems: ProblemCollector) -> list[dict] | None:
    """The list ``facets[name][key]`` of objects, or None when the facet is absent (a problem when malformed)."""
    facet = facets.get(name)
    if facet is None:
        return None
    items = facet.get(key) if isinstance(facet, dict) else None
    if items is None and isinstance(facet, dict):
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        problems.add(f"{path}.{name}.{key}", "Must be a list of objects.", "invalid_type")
        return None
    return items


def _short(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) and not CONTROL_RE.search(value) else ""


def _meaning(facets: dict, path: str, problems: ProblemCollector) -> dict[str, Any]:
    """The facets that carry meaning for the catalog: ``documentation`` (description), ``ownership`` (owner
    names, resolved later), ``tags`` (TagsDatasetFacet: dataset tags, and column tags by their ``field``),
    ``symlinks`` (aliases) and ``dataSource`` (platform)."""
    out: dict[str, Any] = {}
    doc = facets.get("documentation")
    if doc is not None:
        if not isinstance(doc, dict) or not isinstance(doc.get("description"), str):
            problems.add(f"{path}.documentation.description", "Required: a string.", "invalid_type")
        else:
            out["description"] = doc["description"][:20_000]
    owners = _facet_list(facets, "ownership", "owners", path, problems)
    if owners is not None:
        out["owners"] = [n for n in (_short(o.get("name"), 255) for o in owners) if n]
    tags = _facet_list(facets, "tags", "tags", path, problems)
    if tags is not None:
        out["tags"] = [
            (key, _short(t.get("value"), 255), _short(t.get("field"), MAX_FIELD_NAME) or None)
            for t in tags
            if (key := _short(t.get("key"), 100))
        ]
    links = _facet_list(facets, "symlinks", "identifiers", path, problems)
    if links is not None:
        aliases = []
        for i, item in enumerate(links):
            where = f"{path}.symlinks.identifiers[{i}]"
            namespace = _namespace(item.get("namespace"), f"{where}.namespace", problems)
            name = _text(item, "name", where, problems, MAX_NAME)
            if namespace and name:
                aliases.append((namespace, name, _short(item.get("type"), 64)))
        out["aliases"] = aliases
    source = facets.get("dataSource")
    if isinstance(source, dict):
        uri, name = _short(source.get("uri"), 2000), _short(source.get("name"), 255)
        if uri or name:
            out["platform"] = {"uri": uri, "name": name}
    return out


def _schema_fields(schema: Any, path: str, problems: ProblemCollector) -> list[dict[str, str]] | None:
    if not isinstance(schema, dict) or not isinstance(schema.get("fields", []), list):
        problems.add(f"{path}.fields", "Must be a list of {name, type} objects.", "invalid_type")
        return None
    items = schema.get("fields", [])
    flat = _flat_fields(items)
    if flat is not None:
        return flat
    out: list[dict[str, str]] = []
    _collect_fields(items, f"{path}.fields", "", out, set(), problems)
    return out


def _flat_fields(items: list) -> list[dict[str, str]] | None:
    """The common case, checked at once: a flat list of objects with distinct valid names and no nested
    ``fields``; what ``_collect_fields`` gives for it. ``None`` for anything else (``_collect_fields`` then names
    each problem)."""
    names = []
    for item in items:
        if type(item) is not dict or "fields" in item:
            return None
        name = item.get("name")
        if type(name) is not str or len(name) > MAX_FIELD_NAME or not name.strip():
            return None
        names.append(name)
    if len(set(names)) != len(names) or CONTROL_RE.search("\t".join(names)):  # a tab is allowed in a name
        return None
    return [
        {
            "name": name,
            "type": str(item.get("type") or "")[:MAX_TYPE],
            "description": str(item.get("description") or "")[:20_000],
        }
        for name, item in zip(names, items, strict=True)
    ]


def _collect_fields(
    items: list, path: str, prefix: str, out: list[dict[str, str]], seen: set[str], problems: ProblemCollector
) -> None:
    """Flatten a schema facet's fields; a struct's nested ``fields`` become dotted names (``address.city``),
    after the struct itself."""
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            problems.add(where, "Must be an object with a name.", "invalid_type")
            continue
        name = _text(item, "name", where, problems, MAX_FIELD_NAME)
        if name is None:
            continue
        name = f"{prefix}{name}"
        if len(name) > MAX_FIELD_NAME:
            problems.add(
                f"{where}.name", f"Too long with its parents: at most {MAX_FIELD_NAME} characters.", "max_length"
            )
            continue
        if name in seen:
            problems.add(f"{where}.name", f"Duplicate field {name!r}.", "duplicate")
            continue
        seen.add(name)
        out.append(
            {
                "name": name,
                "type": str(item.get("type") or "")[:MAX_TYPE],
                "description": str(item.get("description") or "")[:20_000],
            }
        )
        nested = item.get("fields")
        if isinstance(nested, list):
            _collect_fields(nested, f"{where}.fields", f"{name}.", out, seen, problems)
        elif nested is not None:
            problems.add(f"{where}.fields", "Must be a list of {name, type} objects.", "invalid_type")


def _transformation(item: dict) -> str:
    """INDIRECT when every transformation the input field lists is INDIRECT; else DIRECT (also when none is
    listed, as producers before transformations were added meant)."""
    kinds = [t.get("type") for t in item.get("transformations") or [] if isinstance(t, dict)]
    return "INDIRECT" if kinds and all(k == "INDIRECT" for k in kinds) else "DIRECT"


def _input_fields(items: list, where: str, problems: ProblemCollector, kind: str | None) -> list[tuple]:
    sources: dict[tuple[str, str, str], str] = {}
    for j, item in enumerate(items):
        item_path = f"{where}[{j}]"
        if not isinstance(item, dict):
            problems.add(item_path, "Must be an object {namespace, name, field}.", "invalid_type")
            continue
        namespace = _namespace(item.get("namespace"), f"{item_path}.namespace", problems)
        name = _text(item, "name", item_path, problems, MAX_NAME)
        column = _text(item, "field", item_path, problems, MAX_FIELD_NAME)
        if namespace and name and column:
            key = (namespace, name, column)
            found = kind or _transformation(item)
            sources[key] = "DIRECT" if sources.get(key) == "DIRECT" else found  # DIRECT wins a duplicate
    return [(*key, found) for key, found in sources.items()]


def _column_lineage(facet: Any, path: str, problems: ProblemCollector) -> dict[str, list[tuple[str, str, str, str]]]:
    fields = facet.get("fields") if isinstance(facet, dict) else None
    if not isinstance(fields, dict):
        problems.add(f"{path}.fields", "Must be an object mapping output fields to their inputFields.", "invalid_type")
        return {}
    out: dict[str, list[tuple[str, str, str, str]]] = {}
    dataset_level = facet.get("dataset")
    if dataset_level is not None:
        if not isinstance(dataset_level, list):
            problems.add(f"{path}.dataset", "Must be a list of {namespace, name, field}.", "invalid_type")
        elif dataset_level:
            out[""] = _input_fields(dataset_level, f"{path}.dataset", problems, "INDIRECT")
    for out_field, spec in fields.items():
        where = f"{path}.fields.{out_field}"
        if not out_field or len(out_field) > MAX_FIELD_NAME or CONTROL_RE.search(out_field):
            problems.add(
                where, f"An output field name of 1 to {MAX_FIELD_NAME} characters, no control characters.", "invalid"
            )
            continue
        inputs = spec.get("inputFields") if isinstance(spec, dict) else None
        if not isinstance(inputs, list):
            problems.add(f"{where}.inputFields", "Must be a list of {namespace, name, field}.", "invalid_type")
            continue
        out[out_field] = _input_fields(inputs, f"{where}.inputFields", problems, None)
    return out


def _datasets(data: dict, key: str, problems: ProblemCollector) -> list[DatasetRef]:
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.add(key, "Must be a list of datasets.", "invalid_type")
        return []
    refs = [_dataset(item, f"{key}[{i}]", problems) for i, item in enumerate(items)]
    return [r for r in refs if r is not None]


def parse_event(data: Any, problems: ProblemCollector) -> ParsedEvent | None:
    """Classify and validate one event; problems are added to ``problems`` (the caller raises)."""
    if not isinstance(data, dict):
        problems.add(None, "An OpenLineage event must be a JSON object.", "invalid_type")
        return None
    event_time = _time(data.get("eventTime"), "eventTime", problems)
    if "run" in data or "eventType" in data:
        event_type = data.get("eventType", "OTHER") or "OTHER"
        if event_type not in EVENT_TYPES:
            problems.add(
                "eventType", f"Unknown eventType {event_type!r}; use one of {', '.join(EVENT_TYPES)}.", "invalid_choice"
            )
        run = _object(data.get("run"), "run", problems)
        run_id = None
        run_facets: dict = {}
        if run is not None:
            raw_id = run.get("runId")
            if not raw_id:
                problems.add("run.runId", "Required: the run's UUID.", "required")
            else:
                try:
                    run_id = uuid.UUID(str(raw_id))
                except ValueError:
                    problems.add("run.runId", f"Not a UUID: {str(raw_id)[:64]!r}.", "invalid_uuid")
            run_facets = _object(run.get("facets"), "run.facets", problems, required=False) or {}
        job_ns, job_name, job_facets = _job(data, problems)
        inputs, outputs = _datasets(data, "inputs", problems), _datasets(data, "outputs", problems)
        if problems.problems or event_time is None:
            return None
        return ParsedEvent(
            kind="run",
            event_time=event_time,
            event_type=event_type,
            run_id=run_id,
            run_facets=run_facets,
            job_namespace=job_ns,
            job_name=job_name,
            job_facets=job_facets,
            inputs=inputs,
            outputs=outputs,
        )
    if "dataset" in data:
        dataset = _dataset(data.get("dataset"), "dataset", problems)
        if problems.problems or event_time is None or dataset is None:
            return None
        return ParsedEvent(kind="dataset", event_time=event_time, dataset=dataset)
    if "job" in data:
        job_ns, job_name, job_facets = _job(data, problems)
        inputs, outputs = _datasets(data, "inputs", problems), _datasets(data, "outputs", problems)
        if problems.problems or event_time is None:
            return None
        return ParsedEvent(
            kind="job",
            event_time=event_time,
            job_namespace=job_ns,
            job_name=job_name,
            job_facets=job_facets,
            inputs=inputs,
            outputs=outputs,
        )
    problems.add(
        "run",
        "Not an OpenLineage event: expected a RunEvent (run, job), a DatasetEvent (dataset) or a JobEvent (job).",
        "required",
    )
    return None
