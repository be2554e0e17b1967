"""What the catalog keeps in history (``ledger.history``): the state loaders of its kinds.

Kinds:
- ``catalog.dataset``: identity, description, direct level, owners, direct tags, custom properties, and the
  schema (each field's type, ordinal, description, level and direct tags);
- ``catalog.dataset.level``: the effective classification alone (propagation changes it often; it is kept
  apart so that a recompute writes one small row, not the whole schema);
- ``catalog.tag``: the vocabulary (implied level, whether it propagates);
- ``catalog.model``, ``catalog.model_version``, ``catalog.deployment``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.models import Group, User
from django.db import connection

from catalog.models import Dataset, Deployment, MLModel, ModelVersion, SchemaField, Tag, TagAssignment
from ledger import history
from steward.lookups import UUIDs

__all__ = [
    "DATASET",
    "DATASET_LEVEL",
    "DEPLOYMENT",
    "MODEL",
    "MODEL_VERSION",
    "TAG",
    "capture_datasets",
    "capture_models",
    "new_dataset_state",
    "record_new_datasets",
    "register",
]

DATASET = "catalog.dataset"
DATASET_LEVEL = "catalog.dataset.level"
TAG = "catalog.tag"
MODEL = "catalog.model"
MODEL_VERSION = "catalog.model_version"
DEPLOYMENT = "catalog.deployment"


def _uuids(keys: list[str]) -> UUIDs:
    return UUIDs([UUID(k) for k in keys])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _owner_and_tag_rows(ids: list[UUID], users: str, groups: str) -> list[tuple[Any, ...]]:
    """Owners (users and groups) and tags of ``ids`` in one round trip (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 0, o.dataset_id, NULL::integer, u.username FROM {users} o "
            f"JOIN {User._meta.db_table} u ON u.id = o.user_id WHERE o.dataset_id = ANY(%s::uuid[]) UNION ALL "
            f"SELECT 1, o.dataset_id, NULL::integer, g.name FROM {groups} o "
            f"JOIN {Group._meta.db_table} g ON g.id = o.group_id WHERE o.dataset_id = ANY(%s::uuid[]) UNION ALL "
            f"SELECT 2, a.dataset_id, a.field_id, t.key FROM {TagAssignment._meta.db_table} a "
            f"JOIN {Tag._meta.db_table} t ON t.id = a.tag_id WHERE a.dataset_id = ANY(%s::uuid[])",
            [ids] * 3,
        )
        return cursor.fetchall()


def load_datasets(keys: list[str]) -> dict[str, dict[str, Any]]:
    ids = _uuids(keys)
    owners: dict[UUID, list[str]] = defaultdict(list)
    dataset_tags: dict[UUID, list[str]] = defaultdict(list)
    field_tags: dict[int, list[str]] = defaultdict(list)
    # Owners (users and groups) and tags in one round trip.
    users = Dataset.owner_users.through._meta.db_table
    groups = Dataset.owner_groups.through._meta.db_table
    if connection.vendor != "postgresql":  # the embedded SQLite default: three plain queries
        rows = [
            *(
                (0, d, None, n)
                for d, n in Dataset.owner_users.through.objects.filter(dataset_id__in=ids.values).values_list(
                    "dataset_id", "user__username"
                )
            ),
            *(
                (1, d, None, n)
                for d, n in Dataset.owner_groups.through.objects.filter(dataset_id__in=ids.values).values_list(
                    "dataset_id", "group__name"
                )
            ),
            *(
                (2, d, f, n)
                for d, f, n in TagAssignment.objects.filter(dataset_id__in=ids.values).values_list(
                    "dataset_id", "field_id", "tag__key"
                )
            ),
        ]
    else:
        rows = _owner_and_tag_rows(ids.values, users, groups)
    for kind, ds_id, field_id, name in rows:
        if kind == 0:
            owners[ds_id].append(name)
        elif kind == 1:
            owners[ds_id].append(f"group:{name}")
        elif field_id is None:
            dataset_tags[ds_id].append(name)
        else:
            field_tags[field_id].append(name)
    fields: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for pk, ds_id, name, type_, ordinal, description, level in (
        SchemaField.objects.filter(dataset_id__any_of=ids)
        .order_by("dataset_id", "ordinal", "name")
        .values_list("pk", "dataset_id", "name", "type", "ordinal", "description", "classification")
    ):
        fields[ds_id].append(
            {
                "name": name,
                "type": type_,
                "ordinal": ordinal,
                "description": description,
                "classification": level,
                "tags": sorted(field_tags.get(pk, ())),
            }
        )
    states = {}
    for ds in Dataset.objects.filter(pk__any_of=ids).only(
        "id",
        "namespace",
        "name",
        "platform",
        "description",
        "classification",
        "properties",
        "producer_facts",
        "removed_at",
    ):
        states[str(ds.pk)] = {
            "namespace": ds.namespace,
            "name": ds.name,
            "platform": ds.platform,
            "description": ds.description,
            "classification": ds.classification,
            "owners": sorted(owners.get(ds.pk, ())),
            "tags": sorted(dataset_tags.get(ds.pk, ())),
            "properties": ds.properties,
            "fields": fields.get(ds.pk, []),
            # What lineage producers said (only once they said something, so older states compare equal).
            **({"producer": ds.producer_facts} if ds.producer_facts else {}),
            # Gone from the source that crawled it (only once removed, so older states compare equal).
            **({"removed_at": _iso(ds.removed_at)} if ds.removed_at else {}),
        }
    return states


def load_dataset_levels(keys: list[str]) -> dict[str, dict[str, Any]]:
    return {
        str(pk): {"effective_classification": level}
        for pk, level in Dataset.objects.filter(pk__any_of=_uuids(keys)).values_list("pk", "effective_classification")
    }


def load_tags(keys: list[str]) -> dict[str, dict[str, Any]]:
    return {
        str(t.pk): {
            "key": t.key,
            "description": t.description,
            "implied_level": t.implied_level,
            "propagates": t.propagates,
        }
        for t in Tag.objects.filter(pk__in=[int(k) for k in keys])
    }


def load_models(keys: list[str]) -> dict[str, dict[str, Any]]:
    states = {}
    for m in MLModel.objects.filter(pk__any_of=_uuids(keys)).prefetch_related("tags", "owner_users", "owner_groups"):
        states[str(m.pk)] = {
            "name": m.name,
            "description": m.description,
            "classification": m.classification,
            "effective_classification": m.effective_classification,
            "tags": sorted(t.key for t in m.tags.all()),
            "owners": sorted(
                [u.username for u in m.owner_users.all()] + [f"group:{g.name}" for g in m.owner_groups.all()]
            ),
        }
    return states


def load_model_versions(keys: list[str]) -> dict[str, dict[str, Any]]:
    states = {}
    for mv in ModelVersion.objects.filter(pk__any_of=_uuids(keys)).select_related("trained_by", "created_by"):
        trained_by = mv.trained_by or mv.created_by
        states[str(mv.pk)] = {
            **mv.snapshot(),
            "model": str(mv.model_id),
            "description": mv.description,
            "framework": mv.framework,
            "parameters": mv.parameters,
            "metrics": mv.metrics,
            "trained_by": trained_by.username if trained_by else None,
            "inherited_tags": sorted(mv.inherited_tags),
            "effective_classification": mv.effective_classification,
        }
    return states


def load_deployments(keys: list[str]) -> dict[str, dict[str, Any]]:
    return {str(d.pk): d.snapshot() for d in Deployment.objects.filter(pk__any_of=_uuids(keys))}


def new_dataset_state(
    *, namespace: str, name: str, platform: str, classification: str, fields: list[dict[str, Any]]
) -> dict[str, Any]:
    """The state ``load_datasets`` reads for a dataset just created by a producer (no description, owners, tags,
    properties or producer facts yet) whose ``fields`` (``name``, ``type``, ``ordinal``, ``description``,
    ``classification``) were inserted with it: what ``record_new_datasets`` writes without reading it back."""
    return {
        "namespace": namespace,
        "name": name,
        "platform": platform,
        "description": "",
        "classification": classification,
        "owners": [],
        "tags": [],
        "properties": {},
        "fields": [{**f, "tags": []} for f in sorted(fields, key=lambda f: (f["ordinal"], f["name"]))],
    }


def record_new_datasets(
    states: dict[UUID, dict[str, Any]], levels: dict[UUID, str], *, at: datetime | None = None
) -> None:
    """The first history rows of datasets created in this transaction (``new_dataset_state`` and their effective
    level), in one statement: no open rows to read, nothing to load back (``capture_datasets`` would read both)."""
    if not states:
        return
    history.write_many(
        {
            DATASET: {str(pk): state for pk, state in states.items()},
            DATASET_LEVEL: {str(pk): {"effective_classification": levels[pk]} for pk in states},
        },
        at=at,
        fresh=True,
    )


def capture_datasets(ids: Iterable[Any], *, at: datetime | None = None) -> None:
    """Record the datasets' full state and effective level (call after any change to them)."""
    history.capture_many([DATASET, DATASET_LEVEL], ids, at=at)


def register() -> None:
    history.register(DATASET, load_datasets, history.all_pks(Dataset))
    history.register(DATASET_LEVEL, load_dataset_levels, history.all_pks(Dataset))
    history.register(TAG, load_tags, history.all_pks(Tag))
    history.register(MODEL, load_models, history.all_pks(MLModel))
    history.register(MODEL_VERSION, load_model_versions, history.all_pks(ModelVersion))
    history.register(DEPLOYMENT, load_deployments, history.all_pks(Deployment))


def capture_models(model_ids: Iterable[Any], *, version_ids: Iterable[Any] = (), at: datetime | None = None) -> None:
    """Record these models and all their versions (plus ``version_ids``: versions just deleted)."""
    ids = [UUID(str(pk)) for pk in model_ids]
    versions = {*map(str, version_ids)}
    versions.update(
        str(pk) for pk in ModelVersion.objects.filter(model_id__any_of=UUIDs(ids)).values_list("pk", flat=True)
    )
    history.capture(MODEL, ids, at=at)
    history.capture(MODEL_VERSION, versions, at=at)
