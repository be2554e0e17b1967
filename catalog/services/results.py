"""Result records: model outputs ingested in bulk, each tied to the deployment of its model serving at the time.

Up to ``MAX_RESULTS`` records per call, all or nothing. The resolution is set-based: every deployment of the
models involved is read once and looked up in memory (bisect per environment), so a call costs a fixed number of
queries whatever its size. Rows are written with COPY; re-sending a record is a no-op (its id derives from its
content). Ingestion holds a share lock on the models it resolves against until it commits, so deployment changes
(``catalog.services.deployments``) wait for it, and it waits for them.
"""

from __future__ import annotations

import uuid
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from catalog import permissions
from catalog.actions import RESULTS_INGEST
from catalog.models import Deployment, MLModel, ResultRecord
from catalog.selectors import visible_q
from catalog.services.deployments import ENVIRONMENT_RE
from ledger import audit
from steward.bulk import insert_rows
from steward.errors import Conflict, FieldProblem, PermissionDenied, ProblemCollector, ValidationFailed
from steward.identity import Actor, Role, has_role, viewer_for
from steward.lookups import UUIDs
from steward.times import TimeProblem, parse_aware_time

__all__ = ["MAX_RESULTS", "RESULT_NAMESPACE", "ResultIngestResult", "result_id", "results_ingest"]

MAX_RESULTS = 10_000
MAX_INPUT_REF = 1024
MAX_OUTPUT_DIGEST = 100
RECORD_KEYS = {"id", "model", "deployment", "produced_at", "input_ref", "output_digest", "environment"}
# uuid5 namespace of result ids derived from content (fixed forever: changing it would make re-sends duplicates).
RESULT_NAMESPACE = UUID("6f1c7e0a-2b1d-5c43-9a57-3e0b8f4d2a61")
RESULT_COLUMNS = [
    "id",
    "model",
    "deployment",
    "model_version",
    "produced_at",
    "input_ref",
    "output_digest",
    "received_at",
    "received_by",
]


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else "open"


@dataclass
class ResultIngestResult:
    """What one ingestion call did: ``ids`` in input order (a duplicate in the call repeats its id)."""

    received: int = 0
    created: int = 0
    already_present: int = 0
    ids: list[UUID] = field(default_factory=list)


@dataclass
class _Record:
    index: int
    path: str
    id: UUID | None
    model_ref: str | None
    deployment_id: UUID | None
    produced_at: datetime
    input_ref: str
    output_digest: str
    environment: str | None


@dataclass
class _Deployments:
    """One model's deployments by environment, sorted by start (windows in one environment do not overlap)."""

    starts: dict[str, list[datetime]] = field(default_factory=dict)
    rows: dict[str, list[tuple]] = field(default_factory=dict)

    def serving(self, at: datetime, environment: str | None) -> list[tuple]:
        found = []
        for env in (environment,) if environment is not None else self.rows:
            rows = self.rows.get(env)
            if not rows:
                continue
            i = bisect_right(self.starts[env], at) - 1
            if i >= 0 and (rows[i][5] is None or at < rows[i][5]):
                found.append(rows[i])
        return found


def result_id(
    *, model_id: UUID, deployment_id: UUID | None, produced_at: datetime, input_ref: str, digest: str
) -> UUID:
    """The id of a result record given without one: uuid5 over its canonical content (UTC time to the µs)."""
    text = "\x1f".join(
        (str(model_id), str(deployment_id or ""), produced_at.astimezone(UTC).isoformat(), input_ref, digest)
    )
    return uuid.uuid5(RESULT_NAMESPACE, text)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _text(data: dict, key: str, path: str, problems: ProblemCollector, max_length: int) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        problems.add(_join(path, key), "This field is required.", "required")
        return None
    if not isinstance(value, str):
        problems.add(_join(path, key), f"Must be a string, not {type(value).__name__}.", "invalid_type")
        return None
    if len(value) > max_length:
        problems.add(_join(path, key), f"Too long: {len(value)} characters, at most {max_length}.", "max_length")
        return None
    return value


def _uuid(value: Any, path: str, problems: ProblemCollector) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        pass
    problems.add(path, "Must be a UUID.", "invalid_uuid")
    return None


def _time(value: Any, path: str, problems: ProblemCollector, now: datetime) -> datetime | None:
    if value is None:
        problems.add(path, "This field is required.", "required")
        return None
    try:
        value = parse_aware_time(value)
    except TimeProblem as problem:
        problems.add(path, problem.message, problem.code)
        return None
    if value > now:
        problems.add(path, f"Is in the future (now is {_iso(now)}).", "future_datetime")
        return None
    return value


def _parse_record(data: Any, path: str, index: int, problems: ProblemCollector, now: datetime) -> _Record | None:
    if not isinstance(data, dict):
        problems.add(path or None, "Must be a JSON object.", "invalid_type")
        return None
    before = len(problems.problems)
    if not RECORD_KEYS.issuperset(data):
        for key in sorted(set(data) - RECORD_KEYS, key=str):
            problems.add(_join(path, str(key)), "Unknown field.", "unknown_field")
    rid = _uuid(data["id"], _join(path, "id"), problems) if data.get("id") is not None else None
    deployment_id = None
    if data.get("deployment") is not None:
        deployment_id = _uuid(data["deployment"], _join(path, "deployment"), problems)
    model_ref = data.get("model")
    if model_ref is not None and (not isinstance(model_ref, str) or not model_ref or len(model_ref) > 255):
        problems.add(_join(path, "model"), "Must be a model's id or name.", "invalid")
    elif model_ref is None and data.get("deployment") is None:
        problems.add(_join(path, "model"), "Give the model (id or name) or the deployment.", "required")
    environment = data.get("environment")
    if environment is not None and (not isinstance(environment, str) or not ENVIRONMENT_RE.match(environment)):
        problems.add(_join(path, "environment"), "Must be an environment name such as prod.", "invalid")
    produced_at = _time(data.get("produced_at"), _join(path, "produced_at"), problems, now)
    input_ref = _text(data, "input_ref", path, problems, MAX_INPUT_REF)
    output_digest = _text(data, "output_digest", path, problems, MAX_OUTPUT_DIGEST)
    if len(problems.problems) > before:
        return None
    return _Record(
        index=index,
        path=path,
        id=rid,
        model_ref=model_ref,
        deployment_id=deployment_id,
        produced_at=produced_at,  # type: ignore[arg-type]
        input_ref=input_ref,  # type: ignore[arg-type]
        output_digest=output_digest,  # type: ignore[arg-type]
        environment=environment,
    )


def _load_models(actor: Actor, refs: set[str], extra_ids: set[UUID]) -> tuple[dict[str, MLModel], dict[UUID, MLModel]]:
    """The models ``refs`` (ids or names) and ``extra_ids`` name that ``actor`` may see, in one query."""
    ids = set(extra_ids)
    for ref in refs:
        try:
            ids.add(UUID(ref))
        except ValueError:
            pass
    if not refs and not ids:
        return {}, {}
    found = list(
        MLModel.objects.filter(visible_q(MLModel, viewer_for(actor)))
        .filter(Q(pk__any_of=UUIDs(ids)) | Q(name__in=refs))
        .only("id", "name")
    )
    by_id = {m.pk: m for m in found}
    by_ref: dict[str, MLModel] = {}
    for m in found:
        by_ref[m.name] = m
    for m in found:  # an id wins over a name that happens to look like one
        by_ref[str(m.pk)] = m
    return by_ref, by_id


def _check_may_post(actor: Actor, models: Sequence[MLModel]) -> None:
    """Owners of each model, stewards, admins and service accounts post results."""
    if has_role(actor, Role.SERVICE) or permissions.has_curator_role(actor):
        return
    viewer = viewer_for(actor)
    groups = [p.split(":", 1)[1] for p in viewer.principals if p.startswith("group:")]
    owned = set(
        MLModel.objects.filter(pk__any_of=UUIDs([m.pk for m in models]))
        .filter(Q(owner_users__pk=getattr(actor, "pk", None)) | Q(owner_groups__name__in=groups))
        .values_list("pk", flat=True)
    )
    refused = sorted(m.name for m in models if m.pk not in owned)
    if refused:
        raise PermissionDenied(
            f"You may not post results for model(s) {', '.join(refused)}; their owners, admins and service "
            "accounts may."
        )


def _share_lock(model_ids: list[UUID]) -> None:
    """Wait for deployment changes of these models in progress, and hold them off until this call commits."""
    if connection.vendor == "postgresql" and model_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 1 FROM {connection.ops.quote_name(MLModel._meta.db_table)} WHERE id = ANY(%s) FOR SHARE",
                [model_ids],
            )


def _load_deployments(model_ids: list[UUID]) -> tuple[dict[UUID, _Deployments], dict[UUID, tuple]]:
    """Every deployment of these models: by model and environment (sorted), and by id."""
    by_model: dict[UUID, _Deployments] = {}
    by_id: dict[UUID, tuple] = {}
    grouped: dict[UUID, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    rows = (
        Deployment.objects.filter(model_version__model_id__any_of=UUIDs(model_ids))
        .order_by("deployed_from")
        .values_list("id", "model_version_id", "model_version__model_id", "environment", "deployed_from", "deployed_to")
    )
    for row in rows:
        by_id[row[0]] = row
        grouped[row[2]][row[3]].append(row)
    for model_id, envs in grouped.items():
        deps = _Deployments()
        for env, env_rows in envs.items():
            deps.rows[env] = env_rows
            deps.starts[env] = [r[4] for r in env_rows]
        by_model[model_id] = deps
    return by_model, by_id


def _resolve(
    rec: _Record,
    model: MLModel,
    deployments: dict[UUID, _Deployments],
    by_id: dict[UUID, tuple],
    problems: ProblemCollector,
) -> tuple | None:
    """The deployment row that served ``rec``; problems name the record's field when there is none or several."""
    t = rec.produced_at
    if rec.deployment_id is not None:
        row = by_id.get(rec.deployment_id)
        if row is None or row[2] != model.pk:
            problems.add(
                _join(rec.path, "deployment"), f"No deployment {rec.deployment_id} of model {model.name}.", "unknown"
            )
            return None
        if rec.environment is not None and rec.environment != row[3]:
            problems.add(
                _join(rec.path, "environment"),
                f"Deployment {row[0]} is in environment {row[3]}, not {rec.environment}.",
                "mismatch",
            )
            return None
        if t < row[4] or (row[5] is not None and t >= row[5]):
            problems.add(
                _join(rec.path, "produced_at"),
                f"Deployment {row[0]} was not serving at {_iso(t)} (it served from {_iso(row[4])} to {_iso(row[5])}).",
                "not_serving",
            )
            return None
        return row
    found = deployments[model.pk].serving(t, rec.environment) if model.pk in deployments else []
    if not found:
        where = f" in environment {rec.environment}" if rec.environment is not None else ""
        problems.add(
            _join(rec.path, "produced_at"),
            f"No deployment of model {model.name}{where} was serving at {_iso(t)}.",
            "no_deployment",
        )
        return None
    if len(found) > 1:
        envs = ", ".join(sorted(row[3] for row in found))
        problems.add(
            _join(rec.path, "produced_at"),
            f"Several deployments of model {model.name} were serving at {_iso(t)} ({envs}); give environment or "
            "deployment.",
            "ambiguous",
        )
        return None
    return found[0]


@transaction.atomic
def results_ingest(
    *, actor: Actor, records: Sequence[Any], path: str | None = "records", now: datetime | None = None
) -> ResultIngestResult:
    """Record model outputs, all or nothing: each resolved to the deployment of its model serving at its time.

    ``records`` are JSON-like dicts: ``model`` (id or name) or ``deployment`` (id), ``produced_at`` (aware
    datetime or ISO 8601 text with an offset, not in the future), ``input_ref``, ``output_digest``, and optional
    ``environment`` (to choose among deployments serving at once) and ``id``. Problems name each record's field
    (``records[12].produced_at``); with ``path=None`` (one record) they name the field alone. A record's id
    defaults to ``result_id`` of its content, so re-sending one is a no-op; a given id already used by a record
    with other content is a 409. One audit event per call.
    """
    if len(records) > MAX_RESULTS:
        raise ValidationFailed.one(
            path or "records",
            f"Too many records in one call: {len(records)}, at most {MAX_RESULTS}; send them in several calls.",
            "max_length",
        )
    if not records:
        raise ValidationFailed.one(path or "records", "Send at least one record.", "required")
    now = now or timezone.now()
    problems = ProblemCollector()
    parsed = [
        _parse_record(data, f"{path}[{i}]" if path is not None else "", i, problems, now)
        for i, data in enumerate(records)
    ]
    problems.raise_if_any()
    recs: list[_Record] = parsed  # type: ignore[assignment]

    # Deployments named by id bring their model along (a record may give only the deployment).
    named_deployments = {r.deployment_id for r in recs if r.deployment_id is not None}
    deployment_models: dict[UUID, UUID] = {}
    if named_deployments:
        deployment_models = dict(
            Deployment.objects.filter(pk__any_of=UUIDs(named_deployments)).values_list("pk", "model_version__model_id")
        )
    by_ref, by_id = _load_models(actor, {r.model_ref for r in recs if r.model_ref}, set(deployment_models.values()))
    resolved: list[tuple[_Record, MLModel]] = []
    for rec in recs:
        if rec.model_ref is not None:
            model = by_ref.get(rec.model_ref)
            if model is None:
                problems.add(_join(rec.path, "model"), f"No model {rec.model_ref!r}.", "unknown_model")
        else:
            model = by_id.get(deployment_models[rec.deployment_id]) if rec.deployment_id in deployment_models else None
            if model is None:
                problems.add(_join(rec.path, "deployment"), f"No deployment {rec.deployment_id}.", "unknown")
        if model is not None:
            resolved.append((rec, model))
    problems.raise_if_any()

    models = {m.pk: m for _, m in resolved}
    _check_may_post(actor, list(models.values()))
    model_ids = sorted(models)
    _share_lock(model_ids)
    deployments, deployments_by_id = _load_deployments(model_ids)

    result = ResultIngestResult(received=len(recs))
    rows: dict[UUID, list[Any]] = {}
    first_at: dict[UUID, str] = {}
    given: dict[UUID, _Record] = {}
    actor_id = getattr(actor, "pk", None)
    for rec, model in resolved:
        row = _resolve(rec, model, deployments, deployments_by_id, problems)
        if row is None:
            continue
        rid = rec.id or result_id(
            model_id=model.pk,
            deployment_id=row[0],
            produced_at=rec.produced_at,
            input_ref=rec.input_ref,
            digest=rec.output_digest,
        )
        content = [rid, model.pk, row[0], row[1], rec.produced_at, rec.input_ref, rec.output_digest, now, actor_id]
        seen = rows.get(rid)
        if seen is not None and seen[1:7] != content[1:7]:
            problems.add(
                _join(rec.path, "id"), f"Same id as {first_at[rid] or 'another record'} but other content.", "duplicate"
            )
        elif seen is None:
            rows[rid] = content
            first_at[rid] = rec.path
            if rec.id is not None:
                given[rid] = rec
        result.ids.append(rid)
    problems.raise_if_any()

    _check_given_ids(given, rows)
    result.created = insert_rows(ResultRecord, RESULT_COLUMNS, rows.values(), ignore_conflicts=True)
    result.already_present = result.received - result.created
    times = [row[4] for row in rows.values()]
    audit.record(
        actor=actor,
        action=RESULTS_INGEST,
        target_type="catalog.resultrecord",
        after={
            "received": result.received,
            "created": result.created,
            "already_present": result.already_present,
            "models": [str(pk) for pk in model_ids],
            "produced_from": _iso(min(times)),
            "produced_to": _iso(max(times)),
        },
        at=now,
    )
    return result


def _check_given_ids(given: dict[UUID, _Record], rows: dict[UUID, list[Any]]) -> None:
    """A producer-given id already stored with other content is a conflict, not a silent no-op."""
    if not given:
        return
    problems: list[FieldProblem] = []
    stored = ResultRecord.objects.filter(pk__any_of=UUIDs(given)).values_list(
        "id", "model_id", "deployment_id", "model_version_id", "produced_at", "input_ref", "output_digest"
    )
    for row in stored:
        if list(row[1:]) != rows[row[0]][1:7]:
            problems.append(
                FieldProblem(
                    _join(given[row[0]].path, "id"),
                    f"Result record {row[0]} already exists with other content; records are immutable.",
                    "conflict",
                )
            )
    if problems:
        raise Conflict(f"{problems[0].field}: {problems[0].message}", problems=problems[:100])
