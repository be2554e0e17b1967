"""Push catalog state into the search backend, and rebuild it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from uuid import UUID

from django.utils import timezone

from catalog.search import get_backend
from catalog.search.documents import KINDS, build_documents, changed_since, iter_all_ids

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
    """Rebuild the whole index from the database; ``progress(kind, n)`` is called after each chunk.

    With ``clear`` the backend builds a new index and swaps it in (``SearchBackend.rebuild``), so searches keep
    answering from the old one meanwhile; assets changed while it was built are indexed again afterwards
    (their own after-commit updates may have gone to the old index). Without ``clear`` every asset is
    re-indexed in place.
    """
    backend = get_backend()
    backend.setup()
    counts = dict.fromkeys(KINDS, 0)
    started = timezone.now()

    def batches() -> Iterator[list]:
        for kind in KINDS:
            for chunk in iter_all_ids(kind, chunk=1000):
                docs = build_documents(kind, chunk)
                counts[kind] += len(docs)
                yield docs
                if progress:
                    progress(kind, len(chunk))

    if clear:
        backend.rebuild(batches())
        for kind in KINDS:
            changed = [str(pk) for pk in changed_since(kind, started)]
            if changed:
                search_index(kind=kind, ids=changed)
    else:
        for docs in batches():
            backend.index(docs)
    return counts
