"""Search: a pluggable backend (``STEWARD_SEARCH_BACKEND``) fed from committed catalog changes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings

from steward.backends import load_backend
from steward.tasks import enqueue_each_on_commit

if TYPE_CHECKING:
    from catalog.search.backends.base import SearchBackend

__all__ = ["get_backend", "index_later"]


def get_backend() -> SearchBackend:
    return load_backend("search")


def index_later(kind: str, ids: Iterable[UUID | str]) -> None:
    """After commit, queue (re)indexing of these assets in batches; deleted ids are removed from the index."""
    batch = settings.STEWARD_SEARCH_INDEX_BATCH
    id_list = [str(i) for i in ids]
    if not id_list:
        return

    from catalog.tasks import search_index_task

    enqueue_each_on_commit(
        search_index_task,
        ((kind, id_list[start : start + batch]) for start in range(0, len(id_list), batch)),
        recovery="run `manage.py search_reindex` once the broker is back.",
    )
