"""Search: a pluggable backend (``STEWARD_SEARCH_BACKEND``) fed from committed catalog changes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from uuid import UUID

from django.conf import settings

from steward.backends import load_backend
from steward.tasks import enqueue_coalesced_on_commit, enqueue_now

if TYPE_CHECKING:
    from catalog.search.backends.base import SearchBackend

__all__ = ["get_backend", "index_later"]


def get_backend() -> SearchBackend:
    return load_backend("search")


def index_later(kind: str, ids: Iterable[UUID | str]) -> None:
    """After commit, queue (re)indexing of these assets; deleted ids are removed from the index.

    With a Redis broker the ids join a pending set and one task indexes all that are pending, in batches
    (``steward.tasks.enqueue_coalesced_on_commit``): a stream of small writes costs the worker one indexing per
    batch, not one per write. Otherwise one task per batch of this call's ids, as it always was."""
    batch = settings.STEWARD_SEARCH_INDEX_BATCH
    id_list = [str(i) for i in ids]
    if not id_list:
        return

    from catalog.tasks import search_index_pending_task, search_index_task

    recovery = "run `manage.py search_reindex` once the broker is back."

    def per_call() -> None:
        for start in range(0, len(id_list), batch):
            if not enqueue_now(search_index_task, kind, id_list[start : start + batch], recovery=recovery):
                return  # the broker is down: one log line, not one per batch

    enqueue_coalesced_on_commit(
        search_index_pending_task,
        f"search_index:{kind}",
        id_list,
        args=(kind,),
        per_call=per_call,
        recovery=recovery,
    )
