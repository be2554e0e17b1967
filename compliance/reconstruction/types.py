"""The shape of a reconstruction document, section by section (what the API returns and a bundle stores).

Every value is plain JSON (strings, numbers, lists, dicts), so the document is hashed and stored as built.
Keys that are Python keywords (``from``) use the functional ``TypedDict`` form.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "AccessSection",
    "AuditEventView",
    "AuditSection",
    "Change",
    "DatasetState",
    "GrantView",
    "InputItem",
    "LineageSection",
    "PolicyView",
    "Reconstruction",
]

JsonDict = dict[str, Any]


class DatasetVersionView(TypedDict):
    version: str
    run: str | None
    created_at: str | None


class DatasetTags(TypedDict):
    dataset: list[str]
    fields: dict[str, list[str]]
    propagated: list[JsonDict]


class DatasetState(TypedDict):
    """An input dataset as recorded at an instant: attributes, schema, levels, tags and version."""

    namespace: str
    name: str
    description: str
    owners: JsonDict
    classification: str | None
    effective_classification: str | None
    schema: list[JsonDict]
    tags: DatasetTags
    version: DatasetVersionView | None


class RequestView(TypedDict):
    id: str
    state_then: JsonDict | None


class GrantView(TypedDict):
    id: str
    valid_from: str | None
    valid_until: str | None
    approved_level: str
    policy_version: int | None
    valid_at_training: bool
    revoked_by_then: bool
    suspended_then: bool
    state_then: JsonDict | None
    request: RequestView | None


class AccessSection(TypedDict, total=False):
    """The decision for the training user on one input at training time, and their grants on it by then."""

    allowed: bool
    reason: str
    grant: str | None
    grants: list[GrantView]


class InputItem(TypedDict):
    dataset: str
    at_training: DatasetState | None
    at_time: DatasetState | None
    access: AccessSection


class DatasetRef(TypedDict):
    id: str
    namespace: str
    name: str


class LineageEdge(TypedDict):
    source: str
    target: str
    job: DatasetRef


class LineageSection(TypedDict):
    depth: int
    truncated: bool
    datasets: list[DatasetRef]
    edges: list[LineageEdge]


class PolicyView(TypedDict):
    version: int
    published_at: str | None
    document: JsonDict


class PolicySection(TypedDict):
    at_time: PolicyView | None
    at_training: PolicyView | None


class AuditEventView(TypedDict):
    seq: int
    at: str | None
    actor: str
    action: str
    target_type: str
    target_id: str
    target: str
    reason: str
    hash: str


class AuditSection(TypedDict):
    total: int
    shown: int
    events: list[AuditEventView]


# One change since the instant: ``kind`` and ``at`` always, the other keys by kind (docs/compliance.md).
Change = TypedDict(
    "Change",
    {
        "kind": str,
        "at": str | None,
        "dataset": str,
        "field": str | None,
        "tag": str,
        "from": Any,
        "to": Any,
        "added": list[str],
        "removed": list[str],
        "retyped": list[str],
        "grant": str,
        "reason": str,
        "level": str,
        "model_version": str,
        "state": JsonDict | None,
        "deployment": str,
        "version": int,
    },
    total=False,
)


class ResultView(TypedDict):
    id: str
    produced_at: str | None
    input_ref: str
    output_digest: str
    received_at: str | None


class EntityState(TypedDict):
    id: str
    state: JsonDict | None


class RunView(TypedDict):
    id: str
    job: DatasetRef
    state: str
    started_at: str | None
    ended_at: str | None


class TrainingSection(TypedDict):
    run: RunView | None
    at: str | None
    trained_by: str | None
    inputs: list[InputItem]


class Reconstruction(TypedDict):
    """The whole document, keys in the order the API has always returned them."""

    at: str
    result: ResultView | None
    model: EntityState
    model_version: EntityState
    deployments: list[EntityState]
    training: TrainingSection
    lineage: LineageSection | None
    policy: PolicySection
    audit: AuditSection
    allowed: bool
    findings: list[str]
    changes_since: list[Change]
