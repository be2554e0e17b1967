"""Dataset writes, one module per job: ``upsert`` (create, update, bulk upsert, delete), ``tagging`` (tags and
classification), ``ensure`` (datasets named by lineage producers); ``common.datasets_changed`` is the epilogue they
share (levels, ``updated_at``, history, index)."""

from catalog.services.datasets.common import MAX_BULK, datasets_changed
from catalog.services.datasets.ensure import datasets_ensure
from catalog.services.datasets.producer import dataset_producer_facts_apply
from catalog.services.datasets.tagging import dataset_classify, dataset_tag_add, dataset_tag_remove
from catalog.services.datasets.upsert import (
    UpsertResult,
    dataset_bulk_upsert,
    dataset_create,
    dataset_delete,
    dataset_update,
)

__all__ = [
    "MAX_BULK",
    "UpsertResult",
    "dataset_bulk_upsert",
    "dataset_classify",
    "dataset_create",
    "dataset_delete",
    "dataset_producer_facts_apply",
    "dataset_tag_add",
    "dataset_tag_remove",
    "dataset_update",
    "datasets_changed",
    "datasets_ensure",
]
