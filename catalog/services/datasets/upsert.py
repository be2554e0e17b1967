"""Dataset create, update, bulk upsert and delete.

One code path (``_apply``) serves single and bulk writes, so a bulk upsert of 10,000 datasets costs
a fixed number of queries per batch, and writing the same content twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from catalog import permissions
from catalog.classification import max_level, validate_code
from catalog.models import Dataset, SchemaField, Tag, TagAssignment
from catalog.services.classification import dataset_recompute_effective
from catalog.services.datasets.common import (
    CHUNK,
    DATASET_COLUMNS,
    FIELD_COLUMNS,
    MAX_BULK,
    datasets_by_identity,
    datasets_changed,
)
from catalog.signals import tags_changed
from catalog.validation import DatasetSpec, parse_owner, platform_of
from ledger import audit
from ledger.audit import AuditEntry
from steward.bulk import insert_new_rows, insert_rows, update_objects
from steward.errors import Conflict, FieldProblem, PermissionDenied, ProblemCollector, ValidationFailed
from steward.identity import Actor
from steward.retry import retry_races

__all__ = ["UpsertResult", "dataset_bulk_upsert", "dataset_create", "dataset_delete", "dataset_update"]


@dataclass
class UpsertResult:
    """What a bulk upsert did, in input order."""

    created: list[UUID] = field(default_factory=list)
    updated: list[UUID] = field(default_factory=list)
    unchanged: list[UUID] = field(default_factory=list)
    ids: list[UUID] = field(default_factory=list)


@dataclass
class _Refs:
    tags: dict[str, Tag]
    users: dict[str, Any]
    groups: dict[str, Group]


def _resolve_refs(specs: list[DatasetSpec], problems: ProblemCollector) -> _Refs:
    """Look up every tag, user and group the specs name (three queries), reporting unknown ones."""
    tag_keys: set[str] = set()
    usernames: set[str] = set()
    group_names: set[str] = set()
    for spec in specs:
        tag_keys.update(spec.tags or ())
        for f in spec.fields or ():
            tag_keys.update(f.tags)
        for owner in spec.owners or ():
            kind, name = parse_owner(owner)  # type: ignore[misc]
            (usernames if kind == "user" else group_names).add(name)
    tags = {t.key: t for t in Tag.objects.filter(key__in=tag_keys)} if tag_keys else {}
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames)} if usernames else {}
    groups = {g.name: g for g in Group.objects.filter(name__in=group_names)} if group_names else {}
    for spec in specs:
        for key in spec.tags or ():
            if key not in tags:
                problems.add(f"{spec.path}.tags".lstrip("."), f"Unknown tag {key!r}; create it first.", "unknown_tag")
        for index, f in enumerate(spec.fields or ()):
            for key in f.tags:
                if key not in tags:
                    problems.add(
                        f"{spec.path}.fields[{index}].tags".lstrip("."), f"Unknown tag {key!r}.", "unknown_tag"
                    )
            if f.classification:
                _check_level(f.classification, f"{spec.path}.fields[{index}].classification".lstrip("."), problems)
        if spec.classification:
            _check_level(spec.classification, f"{spec.path}.classification".lstrip("."), problems)
        for owner in spec.owners or ():
            kind, name = parse_owner(owner)  # type: ignore[misc]
            if (kind == "user" and name not in users) or (kind == "group" and name not in groups):
                problems.add(f"{spec.path}.owners".lstrip("."), f"Unknown {kind} {name!r}.", "unknown_owner")
    return _Refs(tags, users, groups)


def _check_level(code: str, path: str, problems: ProblemCollector) -> None:
    try:
        validate_code(code, path)
    except ValidationFailed as exc:
        problems.add(path, exc.problems[0].message, "unknown_level")


class _LostRace(Conflict):
    """Another transaction created one of the datasets being created, between the look-up and the insert."""


_IDENTITY = ("namespace", "name")


def _apply(*, actor: Actor, specs: list[DatasetSpec], mode: str) -> UpsertResult:
    """Write ``specs``. ``mode`` is ``create`` (409 if any exists), ``update`` (all exist) or ``upsert``.

    Race-free: when a concurrent writer creates one of the new datasets first, a create is a 409 as if it had
    existed before, and an upsert is done again (in a savepoint), now updating what the other created; other
    collisions with concurrent writers (history rows, deadlocks) are retried too (``steward.retry``)."""
    for attempt in range(3):
        try:
            return _apply_once(actor=actor, specs=specs, mode=mode)
        except _LostRace as exc:
            if mode == "create" or attempt == 2:
                raise Conflict(exc.message, problems=[FieldProblem("name", exc.message, "duplicate")]) from None
    raise AssertionError("unreachable")


@retry_races
def _apply_once(*, actor: Actor, specs: list[DatasetSpec], mode: str) -> UpsertResult:
    problems = ProblemCollector()
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        if spec.identity in seen:
            problems.add(
                f"{spec.path}.name".lstrip("."),
                f"Duplicate of {seen[spec.identity] or 'another item'} ({spec.namespace}/{spec.name}).",
                "duplicate",
            )
        seen.setdefault(spec.identity, spec.path)
    refs = _resolve_refs(specs, problems)
    problems.raise_if_any()

    now = timezone.now()
    existing = datasets_by_identity([s.identity for s in specs])
    if mode == "create" and existing:
        ns, name = next(iter(existing))
        message = f"Dataset {ns}/{name} already exists; use PATCH or the bulk upsert."
        raise Conflict(message, problems=[FieldProblem("name", message, "duplicate")])
    if existing and not permissions.has_curator_role(actor):
        for spec in specs:
            ds = existing.get(spec.identity)
            if ds is not None and not permissions.can_edit_asset(actor, ds):
                raise PermissionDenied(f"{spec.path or 'dataset'}: you may not change {ds}; ask one of its owners.")
    if len(existing) < len(specs) and mode != "update" and not permissions.can_create_assets(actor):
        raise PermissionDenied("Only data owners, data stewards and admins register datasets.")

    result = UpsertResult()
    rows: list[Dataset] = []
    changed_rows: list[Dataset] = []
    entries: list[AuditEntry] = []
    created_ids: set[UUID] = set()
    for spec in specs:
        ds = existing.get(spec.identity)
        if ds is None:
            ds = Dataset(
                namespace=spec.namespace,
                name=spec.name,
                platform=platform_of(spec.namespace),
                description=spec.description or "",
                classification=spec.classification or "",
                effective_classification=_new_dataset_level(spec, refs),
                properties=spec.properties or {},
                created_at=now,
                updated_at=now,
            )
            created_ids.add(ds.pk)
            changed_rows.append(ds)
        else:
            before = (ds.description, ds.classification, ds.properties)
            if spec.description is not None:
                ds.description = spec.description
            if spec.classification is not None:
                ds.classification = spec.classification
            if spec.properties is not None:
                ds.properties = spec.properties
            if (ds.description, ds.classification, ds.properties) != before:
                ds.updated_at = now
                changed_rows.append(ds)
        rows.append(ds)

    inserted = insert_new_rows(
        Dataset,
        DATASET_COLUMNS,
        [[getattr(ds, c) for c in DATASET_COLUMNS] for ds in changed_rows if ds.pk in created_ids],
        order_by=_IDENTITY,
    )
    if len(inserted) < len(created_ids):  # a concurrent writer created some of them first
        lost = next(ds for ds in changed_rows if ds.pk in created_ids and ds.pk not in inserted)
        raise _LostRace(f"Dataset {lost.namespace}/{lost.name} already exists; use PATCH or the bulk upsert.")
    update_objects(
        Dataset,
        [ds for ds in changed_rows if ds.pk not in created_ids],
        ["description", "classification", "properties", "updated_at"],
    )
    touched: set[UUID] = {ds.pk for ds in changed_rows}
    touched |= _write_fields(specs, rows, created_ids)
    touched |= _write_tags(actor, specs, rows, refs, created_ids, now)
    touched |= _write_owners(specs, rows, refs, actor, created_ids)
    tags_changed.send(sender=Dataset, datasets=sorted(touched), tags=[])
    # New datasets got their level above; existing ones may have gained or lost tags and fields.
    dataset_recompute_effective([ds.pk for ds in rows if ds.pk in touched and ds.pk not in created_ids])

    for spec, ds in zip(specs, rows, strict=True):
        result.ids.append(ds.pk)
        if ds.pk in created_ids:
            result.created.append(ds.pk)
            entries.append(
                AuditEntry("catalog.dataset.create", "catalog.dataset", str(ds.pk), str(ds), after=_audit_view(spec))
            )
        elif ds.pk in touched:
            result.updated.append(ds.pk)
            entries.append(
                AuditEntry("catalog.dataset.update", "catalog.dataset", str(ds.pk), str(ds), after=_audit_view(spec))
            )
        else:
            result.unchanged.append(ds.pk)
    audit.record_many(actor=actor, entries=entries, at=now)
    # Levels were recomputed above (before the audit events, as reclassification may suspend grants).
    datasets_changed(
        [ds.pk for ds in rows if ds.pk in touched],
        recompute=(),
        stamp=[pk for pk in touched if pk not in created_ids],
        now=now,
    )
    return result


def _new_dataset_level(spec: DatasetSpec, refs: _Refs) -> str:
    """The effective level of a dataset about to be created: its direct levels and its tags' implied levels."""
    codes = [spec.classification]
    codes += [refs.tags[key].implied_level for key in spec.tags or ()]
    for f in spec.fields or ():
        codes.append(f.classification)
        codes += [refs.tags[key].implied_level for key in f.tags]
    return max_level(codes)


def _audit_view(spec: DatasetSpec) -> dict[str, Any]:
    view: dict[str, Any] = {"namespace": spec.namespace, "name": spec.name}
    for key in ("description", "classification", "owners", "tags"):
        value = getattr(spec, key)
        if value is not None:
            view[key] = value
    if spec.fields is not None:
        view["fields"] = [[f.name, f.type, f.classification, f.tags] for f in spec.fields]
    return view


def _write_fields(specs: list[DatasetSpec], rows: list[Dataset], created: set[UUID]) -> set[UUID]:
    """Make each dataset's fields exactly those of its spec (when the spec lists fields)."""
    wanted = {ds.pk: spec.fields for spec, ds in zip(specs, rows, strict=True) if spec.fields is not None}
    if not wanted:
        return set()
    insert_rows(
        SchemaField,
        FIELD_COLUMNS,
        (
            (ds_id, f.name, f.type, ordinal, f.description, f.classification)
            for ds_id, fields in wanted.items()
            if ds_id in created
            for ordinal, f in enumerate(fields)
        ),
    )
    touched = {ds_id for ds_id in wanted if ds_id in created}
    wanted = {ds_id: fields for ds_id, fields in wanted.items() if ds_id not in created}
    current: dict[UUID, dict[str, tuple]] = defaultdict(dict)
    ids = list(wanted)
    for start in range(0, len(ids), CHUNK):
        for row in SchemaField.objects.filter(dataset_id__in=ids[start : start + CHUNK]).values_list(
            "id", "dataset_id", "name", "type", "ordinal", "description", "classification"
        ):
            current[row[1]][row[2]] = row
    to_delete: list[int] = []
    to_write: list[SchemaField] = []
    for ds_id, fields in wanted.items():
        have = current.get(ds_id, {})
        names = {f.name for f in fields}
        gone = [row[0] for name, row in have.items() if name not in names]
        if gone:
            to_delete += gone
            touched.add(ds_id)
        for ordinal, f in enumerate(fields):
            stored = have.get(f.name)
            if stored is None or stored[3:] != (f.type, ordinal, f.description, f.classification):
                to_write.append(
                    SchemaField(
                        dataset_id=ds_id,
                        name=f.name,
                        type=f.type,
                        ordinal=ordinal,
                        description=f.description,
                        classification=f.classification,
                    )
                )
                touched.add(ds_id)
    for start in range(0, len(to_delete), CHUNK):
        SchemaField.objects.filter(pk__in=to_delete[start : start + CHUNK]).delete()
    SchemaField.objects.bulk_create(
        to_write,
        update_conflicts=True,
        unique_fields=["dataset", "name"],
        update_fields=["type", "ordinal", "description", "classification"],
        batch_size=2000,
    )
    return touched


def _write_tags(
    actor: Actor, specs: list[DatasetSpec], rows: list[Dataset], refs: _Refs, created: set[UUID], now: Any
) -> set[UUID]:
    """Make direct tag assignments match the specs: dataset tags when given, field tags when fields given."""
    ds_level = {ds.pk: set(spec.tags) for spec, ds in zip(specs, rows, strict=True) if spec.tags is not None}
    field_level = {
        ds.pk: {(f.name, key) for f in spec.fields for key in f.tags}
        for spec, ds in zip(specs, rows, strict=True)
        if spec.fields is not None
    }
    ids = list(set(ds_level) | set(field_level))
    if not ids:
        return set()
    field_ids: dict[tuple[UUID, str], int] = {}
    have_ds: dict[UUID, dict[str, int]] = defaultdict(dict)
    have_field: dict[UUID, dict[tuple[str, str], int]] = defaultdict(dict)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        if any(field_level.get(i) for i in chunk):
            for fid, ds_id, name in SchemaField.objects.filter(dataset_id__in=chunk).values_list(
                "id", "dataset_id", "name"
            ):
                field_ids[(ds_id, name)] = fid
        existing_chunk = [i for i in chunk if i not in created]
        for pk, ds_id, fname, key in TagAssignment.objects.filter(dataset_id__in=existing_chunk).values_list(
            "id", "dataset_id", "field__name", "tag__key"
        ):
            if fname is None:
                have_ds[ds_id][key] = pk
            else:
                have_field[ds_id][(fname, key)] = pk
    to_delete: list[int] = []
    to_add: list[tuple] = []
    touched: set[UUID] = set()
    user_id = getattr(actor, "pk", None)
    for ds_id, keys in ds_level.items():
        have = have_ds.get(ds_id, {})
        for key, pk in have.items():
            if key not in keys:
                to_delete.append(pk)
                touched.add(ds_id)
        for key in keys - set(have):
            to_add.append((refs.tags[key].pk, ds_id, None, now, user_id))
            touched.add(ds_id)
    for ds_id, pairs in field_level.items():
        have_pairs = have_field.get(ds_id, {})
        for pair, pk in have_pairs.items():
            if pair not in pairs:
                to_delete.append(pk)
                touched.add(ds_id)
        for fname, key in pairs - set(have_pairs):
            to_add.append((refs.tags[key].pk, ds_id, field_ids[(ds_id, fname)], now, user_id))
            touched.add(ds_id)
    for start in range(0, len(to_delete), CHUNK):
        TagAssignment.objects.filter(pk__in=to_delete[start : start + CHUNK]).delete()
    insert_rows(TagAssignment, ["tag", "dataset", "field", "created_at", "created_by"], to_add)
    return touched


def _write_owners(
    specs: list[DatasetSpec], rows: list[Dataset], refs: _Refs, actor: Actor, created: set[UUID]
) -> set[UUID]:
    """Make owners match the specs; a new dataset with no owners named is owned by its creator."""
    wanted: dict[UUID, set[tuple[str, str]]] = {}
    for spec, ds in zip(specs, rows, strict=True):
        if spec.owners is not None:
            wanted[ds.pk] = {parse_owner(o) for o in spec.owners}  # type: ignore[misc]
        elif ds.pk in created and getattr(actor, "pk", None):
            wanted[ds.pk] = {("user", actor.username)}
            refs.users.setdefault(actor.username, actor)
    if not wanted:
        return set()
    through_u = Dataset.owner_users.through
    through_g = Dataset.owner_groups.through
    ids = list(wanted)
    have: dict[UUID, set[tuple[str, str]]] = defaultdict(set)
    ids = [i for i in ids if i not in created]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for ds_id, name in through_u.objects.filter(dataset_id__in=chunk).values_list("dataset_id", "user__username"):
            have[ds_id].add(("user", name))
        for ds_id, name in through_g.objects.filter(dataset_id__in=chunk).values_list("dataset_id", "group__name"):
            have[ds_id].add(("group", name))
    touched = {ds_id for ds_id, owners in wanted.items() if owners != have.get(ds_id, set())}
    if not touched:
        return set()
    changed = list(touched)
    stale = [i for i in changed if i not in created]
    for start in range(0, len(stale), CHUNK):
        chunk = stale[start : start + CHUNK]
        through_u.objects.filter(dataset_id__in=chunk).delete()
        through_g.objects.filter(dataset_id__in=chunk).delete()
    insert_rows(
        through_u,
        ["dataset", "user"],
        [(ds_id, refs.users[n].pk) for ds_id in changed for k, n in wanted[ds_id] if k == "user"],
    )
    insert_rows(
        through_g,
        ["dataset", "group"],
        [(ds_id, refs.groups[n].pk) for ds_id in changed for k, n in wanted[ds_id] if k == "group"],
    )
    return touched


# --- public services --------------------------------------------------------------------------------


@transaction.atomic
def dataset_bulk_upsert(*, actor: Actor, specs: list[DatasetSpec]) -> UpsertResult:
    """Create or update up to ``MAX_BULK`` datasets atomically; one bad item rejects the whole batch."""
    if len(specs) > MAX_BULK:
        raise ValidationFailed.one(
            "datasets", f"Too many datasets in one call: {len(specs)}, at most {MAX_BULK}.", "max_length"
        )
    return _apply(actor=actor, specs=specs, mode="upsert")


@transaction.atomic
def dataset_create(*, actor: Actor, spec: DatasetSpec) -> Dataset:
    """Register one new dataset; 409 when ``(namespace, name)`` exists."""
    result = _apply(actor=actor, specs=[spec], mode="create")
    return Dataset.objects.get(pk=result.ids[0])


@transaction.atomic
def dataset_update(*, actor: Actor, dataset: Dataset, spec: DatasetSpec) -> Dataset:
    """Change a dataset. ``None`` parts of ``spec`` stay as they are; identity cannot change."""
    if (spec.namespace and spec.namespace != dataset.namespace) or (spec.name and spec.name != dataset.name):
        raise ValidationFailed.one(
            "name", "A dataset's namespace and name are its identity and cannot change.", "immutable"
        )
    spec.namespace, spec.name = dataset.namespace, dataset.name
    if not permissions.can_edit_asset(actor, dataset):
        raise PermissionDenied(f"You may not change {dataset}; ask one of its owners.")
    _apply(actor=actor, specs=[spec], mode="update")
    return Dataset.objects.get(pk=dataset.pk)


@transaction.atomic
def dataset_delete(*, actor: Actor, dataset: Dataset) -> None:
    if not permissions.can_edit_asset(actor, dataset):
        raise PermissionDenied(f"You may not delete {dataset}.")
    audit.record(actor=actor, action="catalog.dataset.delete", target=dataset, before=dataset.snapshot())
    pk = dataset.pk
    tags_changed.send(sender=Dataset, datasets=[pk], tags=[])
    dataset.delete()
    datasets_changed([pk], recompute=(), stamp=())
