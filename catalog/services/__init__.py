"""Catalog write services. Every write runs in one transaction, records audit events and queues indexing."""

from catalog.services.classification import dataset_recompute_effective
from catalog.services.datasets import (
    UpsertResult,
    dataset_bulk_upsert,
    dataset_classify,
    dataset_create,
    dataset_delete,
    dataset_tag_add,
    dataset_tag_remove,
    dataset_update,
    datasets_ensure,
)
from catalog.services.models import (
    model_create,
    model_delete,
    model_update,
    model_version_create,
    model_version_update,
)
from catalog.services.tags import tag_create, tag_delete, tag_update

__all__ = [
    "UpsertResult",
    "dataset_bulk_upsert",
    "dataset_classify",
    "dataset_create",
    "dataset_delete",
    "dataset_recompute_effective",
    "dataset_tag_add",
    "dataset_tag_remove",
    "dataset_update",
    "datasets_ensure",
    "model_create",
    "model_delete",
    "model_update",
    "model_version_create",
    "model_version_update",
    "tag_create",
    "tag_delete",
    "tag_update",
]
