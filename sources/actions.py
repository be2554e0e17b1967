"""Audit actions written by sources, registered with ``ledger.actions``. Values never hold credentials."""

from __future__ import annotations

from ledger.actions import register

__all__ = ["SOURCE_CRAWL", "SOURCE_CREATE", "SOURCE_DELETE", "SOURCE_UPDATE", "SOURCE_DATASET_REMOVED"]

SOURCE_CREATE = register("sources.source.create", "{actor} created source {target}")
SOURCE_UPDATE = register("sources.source.update", "{actor} changed source {target}")
SOURCE_DELETE = register("sources.source.delete", "{actor} deleted source {target}")
SOURCE_CRAWL = register("sources.source.crawl", "{actor} queued a crawl of source {target}")
SOURCE_DATASET_REMOVED = register(
    "sources.dataset.removed", "{actor} marked dataset {target} removed (gone from its source)"
)
