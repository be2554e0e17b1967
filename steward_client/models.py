"""Typed results of the API (the schemas of docs/openapi.yaml, the fields a client uses).

Every result keeps the whole JSON object it was read from in ``raw``: fields the server adds later are there
before this module names them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

__all__ = [
    "AccessRequest",
    "Approval",
    "ComplianceReport",
    "Dataset",
    "DatasetRef",
    "DatasetTags",
    "FacetValue",
    "Grant",
    "IngestResult",
    "Owner",
    "RequestDataset",
    "SchemaField",
    "SearchHit",
    "SearchResults",
    "Tag",
    "TagAssignment",
    "Workspace",
]


@dataclass
class Model:
    """Base of the results: ``from_json`` reads the declared fields, converting the nested ones in ``_nested``."""

    _nested: ClassVar[dict[str, type[Model]]] = {}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "raw" or f.name not in data:
                continue
            value = data[f.name]
            nested = cls._nested.get(f.name)
            if nested is not None and value is not None:
                if isinstance(value, list):
                    value = [nested.from_json(v) if isinstance(v, dict) else v for v in value]
                elif isinstance(value, dict):
                    value = nested.from_json(value)
            values[f.name] = value
        values["raw"] = data
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The JSON object the server sent."""
        raw: dict[str, Any] = getattr(self, "raw", {})
        return raw


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


@dataclass
class Owner(Model):
    type: str = ""
    name: str = ""
    raw: dict[str, Any] = _raw()

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"


@dataclass
class SchemaField(Model):
    name: str = ""
    type: str = ""
    ordinal: int = 0
    description: str = ""
    classification: str | None = None
    tags: list[str] = field(default_factory=list)
    raw: dict[str, Any] = _raw()


@dataclass
class Dataset(Model):
    """A dataset (``DatasetDetail``: ``fields`` is filled by ``get`` and ``lookup``, empty in lists)."""

    _nested: ClassVar[dict[str, type[Model]]] = {"owners": Owner, "fields": SchemaField}

    id: str = ""
    namespace: str = ""
    name: str = ""
    platform: str = ""
    description: str = ""
    classification: str | None = None
    effective_classification: str | None = None
    owners: list[Owner] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fields: list[SchemaField] = field(default_factory=list)
    properties: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class DatasetRef(Model):
    id: str = ""
    namespace: str | None = None
    name: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class SearchHit(Model):
    kind: str = ""
    id: str = ""
    name: str = ""
    qualified_name: str = ""
    namespace: str = ""
    platform: str = ""
    description: str = ""
    classification: str = ""
    tags: list[str] = field(default_factory=list)
    score: float = 0.0
    raw: dict[str, Any] = _raw()


@dataclass
class FacetValue(Model):
    value: str = ""
    count: int = 0
    raw: dict[str, Any] = _raw()


@dataclass
class SearchResults(Model):
    """One page of search results with the facet counts (``facets``: facet name -> values with counts)."""

    _nested: ClassVar[dict[str, type[Model]]] = {"results": SearchHit}

    total: int = 0
    total_is_exact: bool = True
    results: list[SearchHit] = field(default_factory=list)
    facets: dict[str, list[FacetValue]] = field(default_factory=dict)
    raw: dict[str, Any] = _raw()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        out = super().from_json(data)
        out.facets = {
            name: [FacetValue.from_json(v) for v in values if isinstance(v, dict)]
            for name, values in (data.get("facets") or {}).items()
        }
        return out


@dataclass
class Tag(Model):
    key: str = ""
    description: str = ""
    implied_level: str | None = None
    propagates: bool = True
    created_at: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class TagAssignment(Model):
    """A tag on a dataset or a column (``field``); propagated ones name their ``source`` and ``via``."""

    tag: str = ""
    field: str | None = None
    implied_level: str | None = None
    source: dict[str, Any] | None = None
    via: dict[str, Any] | None = None
    since: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class DatasetTags(Model):
    _nested: ClassVar[dict[str, type[Model]]] = {"direct": TagAssignment, "propagated": TagAssignment}

    dataset: str = ""
    at: str = ""
    effective_classification: str | None = None
    direct: list[TagAssignment] = field(default_factory=list)
    propagated: list[TagAssignment] = field(default_factory=list)
    field: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class IngestResult(Model):
    """What the server did with one lineage event: ``status`` is ``applied`` or ``duplicate``."""

    index: int = 0
    status: str = ""
    kind: str = ""
    run_id: str | None = None
    dropped_facets: list[str] = field(default_factory=list)
    raw: dict[str, Any] = _raw()


@dataclass
class RequestDataset(Model):
    id: str = ""
    namespace: str | None = None
    name: str | None = None
    level: str | None = None
    hidden: bool = False
    raw: dict[str, Any] = _raw()


@dataclass
class Approval(Model):
    role: str = ""
    dataset: str | None = None
    approver: str | None = None
    at: str | None = None
    comment: str = ""
    owner_fallback: bool = False
    raw: dict[str, Any] = _raw()


@dataclass
class AccessRequest(Model):
    _nested: ClassVar[dict[str, type[Model]]] = {
        "datasets": RequestDataset,
        "approvals": Approval,
        "awaiting": Approval,
    }

    id: str = ""
    requester: str = ""
    state: str = ""
    purpose: str = ""
    justification: str = ""
    duration: str = ""
    datasets: list[RequestDataset] = field(default_factory=list)
    created_at: str | None = None
    expires_at: str | None = None
    decided_at: str | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    approvals: list[Approval] = field(default_factory=list)
    awaiting: list[Approval] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    subject: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = _raw()


@dataclass
class Grant(Model):
    _nested: ClassVar[dict[str, type[Model]]] = {"dataset": DatasetRef}

    id: str = ""
    dataset: DatasetRef = field(default_factory=DatasetRef)
    privilege: str = ""
    state: str = ""
    valid_from: str | None = None
    valid_until: str | None = None
    approved_level: str | None = None
    request: str | None = None
    subject: dict[str, Any] = field(default_factory=dict)
    revoked_at: str | None = None
    revoke_reason: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class Workspace(Model):
    id: str = ""
    name: str = ""
    owner: str = ""
    project: str | None = None
    template: str = ""
    state: str = ""
    desired_state: str = ""
    url: str = ""
    message: str = ""
    connector: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    created_at: str | None = None
    updated_at: str | None = None
    raw: dict[str, Any] = _raw()


@dataclass
class ComplianceReport(Model):
    """A reconstruction: ``id`` is ``None`` when it was only looked at, not stored as a report."""

    id: str | None = None
    at: str = ""
    requested_by: str = ""
    requested_at: str = ""
    query: dict[str, Any] = field(default_factory=dict)
    digest: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    bundle: dict[str, Any] | None = None
    raw: dict[str, Any] = _raw()
