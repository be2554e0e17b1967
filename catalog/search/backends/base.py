"""The search backend protocol and the plain types every backend returns."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from catalog.search.documents import SearchDocument
from steward.identity import Viewer

__all__ = [
    "FACETS",
    "MAX_OFFSET",
    "SearchBackend",
    "SearchHit",
    "SearchQuery",
    "SearchResults",
    "Suggestion",
    "tokenize",
]

FACETS = ("kind", "platform", "classification", "tag", "owner")
MAX_OFFSET = 10_000
_TOKEN_RE = re.compile(r"[^0-9a-z]+")
# camelCase and PascalCase word starts: "customerEmail" -> "customer Email", "HTTPServer" -> "HTTP Server".
_CAMEL_RE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def tokenize(text: str) -> list[str]:
    """Lower-case words of snake_case, camelCase, dotted and slashed names:
    ``sales.public.customerEmail_v2`` → ``["sales", "public", "customer", "email", "v2"]``."""
    return [t for t in _TOKEN_RE.split(_CAMEL_RE.sub(" ", text).lower()) if t]


@dataclass
class SearchQuery:
    """A search request. Filters within one facet are OR-ed; different facets are AND-ed."""

    q: str = ""
    kinds: list[str] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    classifications: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    limit: int = 20
    offset: int = 0
    # Removed datasets (gone from their source, ``Dataset.removed_at``) are left out unless asked for, as
    # DataHub leaves soft-deleted entities out of search.
    include_removed: bool = False


@dataclass
class SearchHit:
    kind: str
    id: UUID
    name: str
    qualified_name: str
    namespace: str
    platform: str
    description: str
    classification: str
    tags: list[str]
    score: float
    removed: bool = False


@dataclass
class SearchResults:
    """``total`` and facet counts are exact when ``exact``; otherwise lower bounds (a backend's cap).

    When the words as typed matched nothing and the backend matched close words instead, ``fuzzy`` is true and
    ``corrected`` holds the words it used, so the page can say "showing results for …" instead of correcting
    silently."""

    total: int
    hits: list[SearchHit]
    facets: dict[str, list[tuple[str, int]]]
    exact: bool = True
    fuzzy: bool = False
    corrected: str = ""


@dataclass
class Suggestion:
    kind: str
    id: UUID
    name: str
    qualified_name: str


class SearchBackend(Protocol):
    """What services need from a search engine. Implementations return only the types above."""

    def index(self, docs: Sequence[SearchDocument]) -> None:
        """Insert or replace these documents (idempotent)."""

    def delete(self, kind: str, ids: Sequence[str]) -> None:
        """Remove these assets from the index (missing ones are ignored)."""

    def search(self, query: SearchQuery, viewer: Viewer) -> SearchResults:
        """Ranked hits and facet counts, never showing what ``viewer`` may not see."""

    def suggest(self, prefix: str, viewer: Viewer, limit: int = 10) -> list[Suggestion]:
        """Typeahead: assets whose name has a word starting with ``prefix``."""

    def clear(self) -> None:
        """Drop every document."""

    def rebuild(self, batches: Iterable[Sequence[SearchDocument]]) -> None:
        """Replace the whole index by these documents; searches see the old index until it is done."""

    def check(self) -> None:
        """Raise ``BackendUnavailable`` when the engine cannot serve (for ``/readyz``)."""

    def setup(self) -> None:
        """Create indexes or mappings (idempotent)."""
