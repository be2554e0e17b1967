"""What lineage producers say about a dataset through OpenLineage facets that carry meaning (docs/lineage.md
"Facets that carry meaning"): description, owners, tags, aliases, platform.

People win, and both are shown: every producer value is kept in ``Dataset.producer_facts``; it reaches the
attribute itself only while no person has set that attribute, that is while the attribute is still empty
(the platform: still the one derived from the namespace) or still holds what a producer last said. Tags are
only added (a tag a producer said once and a person removed is not added again); unknown tags and owners are
kept in ``producer_facts`` (``unknown_tags``, ``unresolved_owners``), never created.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from catalog.actions import DATASET_UPDATE
from catalog.models import Dataset, DatasetAlias, SchemaField, Tag, TagAssignment
from catalog.services.datasets.common import datasets_changed
from catalog.signals import tags_changed
from catalog.validation import platform_of
from ledger import audit
from ledger.audit import AuditEntry

__all__ = ["dataset_producer_facts_apply"]

_GROUP_PREFIXES = ("group", "team")


def _owner_refs(names: list[str]) -> tuple[set[tuple[str, str]], list[str]]:
    """Resolve OpenLineage owner names: ``user:alice``, ``group:eng`` or ``team:eng``, or a bare name (a user,
    else a group). Returns the owners that exist and the names that do not (kept as they were sent)."""
    wanted: list[tuple[str, str, str]] = []
    for raw in names:
        kind, sep, name = raw.partition(":")
        if not sep:
            wanted.append(("any", raw, raw))
        elif kind in ("user", *_GROUP_PREFIXES) and name:
            wanted.append(("group" if kind in _GROUP_PREFIXES else "user", name, raw))
        else:
            wanted.append(("none", name, raw))
    users = set(
        get_user_model().objects.filter(username__in=[n for _, n, _ in wanted]).values_list("username", flat=True)
    )
    groups = set(Group.objects.filter(name__in=[n for _, n, _ in wanted]).values_list("name", flat=True))
    found: set[tuple[str, str]] = set()
    unresolved: list[str] = []
    for kind, name, raw in wanted:
        if kind in ("user", "any") and name in users:
            found.add(("user", name))
        elif kind in ("group", "any") and name in groups:
            found.add(("group", name))
        else:
            unresolved.append(raw)
    return found, sorted(set(unresolved))


def _owners_of(ds: Dataset) -> set[tuple[str, str]]:
    return {("user", u) for u in ds.owner_users.values_list("username", flat=True)} | {
        ("group", g) for g in ds.owner_groups.values_list("name", flat=True)
    }


def _owner_text(owners: set[tuple[str, str]]) -> list[str]:
    return sorted(f"{kind}:{name}" for kind, name in owners)


def _platform(source: dict[str, str]) -> str:
    return platform_of(source["uri"]) if source.get("uri") else source["name"].lower()[:64]


def _apply_one(actor: Any, ds: Dataset, meaning: dict[str, Any]) -> tuple[dict, dict, bool]:
    """Apply one dataset's facts; returns (before, after, tags changed)."""
    said = dict(ds.producer_facts or {})
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    tags_touched = False
    if "description" in meaning:
        value = meaning["description"]
        if ds.description in ("", said.get("description")) and ds.description != value:
            before["description"], after["description"] = ds.description, value
            ds.description = value
        said["description"] = value
    if "platform" in meaning:
        value = _platform(meaning["platform"])
        if ds.platform in (platform_of(ds.namespace), said.get("platform")) and ds.platform != value:
            before["platform"], after["platform"] = ds.platform, value
            ds.platform = value
        said["platform"] = value
    if "owners" in meaning:
        found, unresolved = _owner_refs(meaning["owners"])
        current = _owners_of(ds)
        previous = {tuple(o.split(":", 1)) for o in said.get("owners", [])}
        if (not current or current == previous) and current != found:
            before["owners"], after["owners"] = _owner_text(current), _owner_text(found)
            ds.owner_users.set(get_user_model().objects.filter(username__in=[n for k, n in found if k == "user"]))
            ds.owner_groups.set(Group.objects.filter(name__in=[n for k, n in found if k == "group"]))
        said["owners"], said["unresolved_owners"] = _owner_text(found), unresolved
    if "tags" in meaning:
        tags_touched = _apply_tags(actor, ds, meaning["tags"], said, before, after)
    if "aliases" in meaning:
        said["aliases"] = _apply_aliases(ds, meaning["aliases"], before, after)
    said["by"] = actor.get_username() if getattr(actor, "pk", None) else ""
    if said != ds.producer_facts:
        ds.producer_facts = said
        after["producer"] = said
    return before, after, tags_touched


def _apply_tags(actor: Any, ds: Dataset, items: list, said: dict, before: dict, after: dict) -> bool:
    """Add the tags a producer names that exist in Steward's vocabulary (column tags on fields the dataset
    has); the others are reported in ``unknown_tags``. A tag the producer already said is not added again."""
    vocabulary = {t.key: t for t in Tag.objects.filter(key__in=[key for key, _, _ in items])}
    fields = {f.name: f for f in SchemaField.objects.filter(dataset=ds, name__in=[f for _, _, f in items if f])}
    said_before = set(said.get("tags", [])) | {
        f"{name}:{key}" for name, keys in said.get("field_tags", {}).items() for key in keys
    }
    dataset_tags: set[str] = set()
    field_tags: dict[str, set[str]] = {}
    unknown: set[str] = set()
    added: list[str] = []
    for key, _value, field_name in items:
        if key not in vocabulary:
            unknown.add(f"{field_name}:{key}" if field_name else key)
            continue
        if field_name and field_name not in fields:
            unknown.add(f"{field_name}:{key}")
            continue
        (field_tags.setdefault(field_name, set()) if field_name else dataset_tags).add(key)
        label = f"{field_name}:{key}" if field_name else key
        if label in said_before:
            continue  # said before: if it is gone, a person removed it
        _, created = TagAssignment.objects.get_or_create(
            dataset=ds,
            field=fields[field_name] if field_name else None,
            tag=vocabulary[key],
            defaults={"created_by": actor if getattr(actor, "pk", None) else None},
        )
        if created:
            added.append(label)
    said["tags"] = sorted(dataset_tags)
    said["field_tags"] = {name: sorted(keys) for name, keys in sorted(field_tags.items())}
    said["unknown_tags"] = sorted(unknown)
    if added:
        after["tags_added"] = sorted(added)
    return bool(added)


def _apply_aliases(ds: Dataset, aliases: list, before: dict, after: dict) -> list[dict[str, str]]:
    """Make the dataset's aliases those of its ``symlinks`` facet. An alias already naming another dataset
    stays that dataset's (the first to claim it keeps it); the dataset's own identity is not an alias."""
    wanted = {(ns, name): kind for ns, name, kind in aliases if (ns, name) != (ds.namespace, ds.name)}
    have = {(a.namespace, a.name): a for a in DatasetAlias.objects.filter(dataset=ds)}
    taken = set()
    for ns, name in set(wanted) - set(have):
        if DatasetAlias.objects.filter(namespace=ns, name=name).exclude(dataset=ds).exists():
            taken.add((ns, name))
            continue
        DatasetAlias.objects.create(namespace=ns, name=name, type=wanted[(ns, name)], dataset=ds)
    gone = [a.pk for key, a in have.items() if key not in wanted]
    DatasetAlias.objects.filter(pk__in=gone).delete()
    now_have = sorted(k for k in wanted if k not in taken)
    if set(now_have) != set(have):
        before["aliases"] = sorted(f"{ns}/{name}" for ns, name in have)
        after["aliases"] = [f"{ns}/{name}" for ns, name in now_have]
    return [{"namespace": ns, "name": name, "type": wanted[(ns, name)]} for ns, name in now_have]


def dataset_producer_facts_apply(*, actor: Any, facts: dict[UUID, dict[str, Any]]) -> list[UUID]:
    """Apply what producers' facets say (``lineage.openlineage.DatasetRef.meaning``) to these datasets; the
    caller checked the actor may write each dataset's namespace and holds the transaction. Changes are
    audited (``catalog.dataset.update``) and historised like any dataset write. Returns the changed ids."""
    if not facts:
        return []
    changed: list[UUID] = []
    tagged: list[UUID] = []
    entries: list[AuditEntry] = []
    for ds in Dataset.objects.select_for_update().filter(pk__in=list(facts)).order_by("pk"):
        before, after, tags_touched = _apply_one(actor, ds, facts[ds.pk])
        if not after:
            continue
        ds.save(update_fields=["description", "platform", "producer_facts"])
        changed.append(ds.pk)
        if tags_touched:
            tagged.append(ds.pk)
        entries.append(
            AuditEntry(
                DATASET_UPDATE,
                "catalog.dataset",
                str(ds.pk),
                str(ds),
                before=before,
                after=after,
                reason="OpenLineage facets",
            )
        )
    if entries:
        audit.record_many(actor=actor, entries=entries)
    if tagged:
        tags_changed.send(sender=Dataset, datasets=tagged, tags=[])
    if changed:
        datasets_changed(changed)
    return changed
