"""Audit actions written by the catalog, registered with ``ledger.actions``."""

from __future__ import annotations

from ledger.actions import register

__all__ = [
    "DATASET_CLASSIFY",
    "DATASET_CREATE",
    "DATASET_DELETE",
    "DATASET_TAG_ADD",
    "DATASET_TAG_REMOVE",
    "DATASET_UPDATE",
    "DEPLOYMENT_CREATE",
    "DEPLOYMENT_END",
    "MODEL_CREATE",
    "MODEL_DELETE",
    "MODEL_UPDATE",
    "MODEL_VERSION_CREATE",
    "MODEL_VERSION_STAGE",
    "MODEL_VERSION_UPDATE",
    "RESULTS_INGEST",
    "TAG_CREATE",
    "TAG_DELETE",
    "TAG_UPDATE",
]

DATASET_CREATE = register("catalog.dataset.create", "{actor} registered dataset {target}")
DATASET_UPDATE = register("catalog.dataset.update", "{actor} changed dataset {target}")
DATASET_DELETE = register("catalog.dataset.delete", "{actor} deleted dataset {target}")
DATASET_TAG_ADD = register("catalog.dataset.tag_add", "{actor} tagged dataset {target}")
DATASET_TAG_REMOVE = register("catalog.dataset.tag_remove", "{actor} removed a tag from dataset {target}")
DATASET_CLASSIFY = register("catalog.dataset.classify", "{actor} classified dataset {target}")

TAG_CREATE = register("catalog.tag.create", "{actor} created tag {target}")
TAG_UPDATE = register("catalog.tag.update", "{actor} changed tag {target}")
TAG_DELETE = register("catalog.tag.delete", "{actor} deleted tag {target}")

MODEL_CREATE = register("catalog.model.create", "{actor} registered model {target}")
MODEL_UPDATE = register("catalog.model.update", "{actor} changed model {target}")
MODEL_DELETE = register("catalog.model.delete", "{actor} deleted model {target}")
MODEL_VERSION_CREATE = register("catalog.model_version.create", "{actor} registered model version {target}")
MODEL_VERSION_STAGE = register("catalog.model_version.stage", "{actor} moved model version {target} to a new stage")
MODEL_VERSION_UPDATE = register("catalog.model_version.update", "{actor} changed model version {target}")

DEPLOYMENT_CREATE = register("catalog.deployment.create", "{actor} deployed {target}")
DEPLOYMENT_END = register("catalog.deployment.end", "{actor} ended deployment {target}")
RESULTS_INGEST = register("catalog.results.ingest", "{actor} recorded model results ({target})")
