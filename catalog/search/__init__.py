"""Search: a pluggable backend (``STEWARD_SEARCH_BACKEND``) fed from committed catalog changes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings
from django.db import transaction

from steward.backends import load_backend

if TYPE_CHECKING:
    from catalog.search.backends.base import SearchBackend

__all__ = ["get_backend", "index_later"]

logger = logging.getLogger(__name__)


def get_backend() -> SearchBackend:
    return load_backend("search")


def index_later(kind: str, ids: Iterable[UUID | str]) -> None:
    """After commit, queue (re)indexing of these assets in batches; deleted ids are removed from the index."""
    batch = settings.STEWARD_SEARCH_INDEX_BATCH
    id_list = [str(i) for i in ids]
    if not id_list:
        return

    def enqueue() -> None:
        from catalog.tasks import search_index_task

        for start in range(0, len(id_list), batch):
            chunk = id_list[start : start + batch]
            try:
                search_index_task.delay(kind, chunk)
            except Exception:  # the broker is down: the change is committed, the index catches up on reindex
                logger.exception(
                    "Could not queue search indexing of %d %s(s); run `manage.py search_reindex` once the "
                    "broker is back.",
                    len(chunk),
                    kind,
                )
                return

    transaction.on_commit(enqueue)
