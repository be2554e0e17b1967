"""Push catalog state into the search backend, and rebuild it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

from catalog.search import get_backend
from catalog.search.documents import KINDS, build_documents, iter_all_ids

__all__ = ["search_index", "search_rebuild"]


def search_index(*, kind: str, ids: Sequence[str | UUID]) -> int:
    """Index the current state of these assets; returns how many documents were written."""
    docs = build_documents(kind, ids)
    backend = get_backend()
    backend.index(docs)
    present = {str(d.id) for d in docs}
    missing = [str(i) for i in ids if str(i) not in present]
    if missing:
        backend.delete(kind, missing)
    return len(docs)


def search_rebuild(*, progress: Callable[[str, int], None] | None = None, clear: bool = True) -> dict[str, int]:
    """Rebuild the whole index from the database; ``progress(kind, n)`` is called after each chunk."""
    backend = get_backend()
    backend.setup()
    if clear:
        backend.clear()
    counts = {}
    for kind in KINDS:
        counts[kind] = 0
        for chunk in iter_all_ids(kind, chunk=1000):
            counts[kind] += search_index(kind=kind, ids=chunk)
            if progress:
                progress(kind, len(chunk))
    return counts
