"""Catalog write services. Every write runs in one transaction, records audit events and queues indexing."""

from catalog.services.classification import dataset_recompute_effective
from catalog.services.datasets import (
    UpsertResult,
    dataset_bulk_upsert,
    dataset_classify,
    dataset_create,
    dataset_delete,
    dataset_producer_facts_apply,
    dataset_tag_add,
    dataset_tag_remove,
    dataset_update,
    datasets_ensure,
)
from catalog.services.deployments import deployment_create, deployment_end
from catalog.services.models import (
    model_create,
    model_delete,
    model_update,
    model_version_create,
    model_version_update,
)
from catalog.services.results import MAX_RESULTS, ResultIngestResult, results_ingest
from catalog.services.tags import tag_create, tag_delete, tag_update

__all__ = [
    "MAX_RESULTS",
    "ResultIngestResult",
    "UpsertResult",
    "dataset_bulk_upsert",
    "dataset_classify",
    "dataset_create",
    "dataset_delete",
    "dataset_producer_facts_apply",
    "dataset_recompute_effective",
    "dataset_tag_add",
    "dataset_tag_remove",
    "dataset_update",
    "datasets_ensure",
    "deployment_create",
    "deployment_end",
    "model_create",
    "model_delete",
    "model_update",
    "model_version_create",
    "model_version_update",
    "results_ingest",
    "tag_create",
    "tag_delete",
    "tag_update",
]
