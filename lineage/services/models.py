"""Model versions inherit the tags of their training run's input datasets (docs/architecture.md §4)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from catalog.classification import max_level
from catalog.history import capture_models
from catalog.models import ModelVersion, Tag, TagAssignment
from catalog.search import index_later
from catalog.services.models import model_recompute_effective
from lineage.models import PropagatedTag, Run

__all__ = ["model_versions_refresh", "model_versions_reading"]


def model_versions_reading(datasets: Iterable[UUID]) -> list[UUID]:
    """Versions whose training run read any of ``datasets`` (model versions are few; runs are looked up)."""
    wanted = {str(d) for d in datasets}
    if not wanted:
        return []
    by_run: dict[UUID, list[UUID]] = {}
    for pk, run_id in ModelVersion.objects.filter(training_run_id__isnull=False).values_list("pk", "training_run_id"):
        if run_id is not None:  # excluded by the filter; the type checker cannot tell
            by_run.setdefault(run_id, []).append(pk)
    found: list[UUID] = []
    for run_id, inputs in Run.objects.filter(pk__in=list(by_run)).values_list("pk", "inputs"):
        if wanted.intersection(inputs):
            found += by_run[run_id]
    return found


def model_versions_refresh(ids: Iterable[UUID]) -> list[UUID]:
    """Recompute inherited tags and effective classification of these versions; returns the changed ones."""
    versions = list(ModelVersion.objects.filter(pk__in=list(ids)))
    runs: dict[UUID | None, list[str]] = {
        pk: inputs
        for pk, inputs in Run.objects.filter(pk__in={v.training_run_id for v in versions}).values_list("pk", "inputs")
    }
    changed: list[UUID] = []
    for version in versions:
        inputs = [UUID(i) for i in runs.get(version.training_run_id, [])]
        tag_ids = set(
            TagAssignment.objects.filter(dataset_id__in=inputs, tag__propagates=True).values_list("tag_id", flat=True)
        )
        tag_ids |= set(
            PropagatedTag.objects.filter(dataset_id__in=inputs, valid_to__isnull=True).values_list("tag_id", flat=True)
        )
        tags = list(Tag.objects.filter(pk__in=tag_ids).order_by("key").values_list("key", "implied_level"))
        keys = [k for k, _ in tags]
        level = max_level(level for _, level in tags)
        if keys != version.inherited_tags or level != version.effective_classification:
            version.inherited_tags, version.effective_classification = keys, level
            version.save(update_fields=["inherited_tags", "effective_classification"])
            changed.append(version.pk)
    models = {v.model_id for v in versions if v.pk in changed}
    if models:
        model_recompute_effective(list(models))
        capture_models(models)
        index_later("model", list(models))
    return changed
