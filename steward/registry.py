"""The one place lower layers are extended by higher ones: typed hooks registered in ``AppConfig.ready``.

A lower app never imports a higher one (tests/steward/test_layers.py). When it must ask a question only a
higher app can answer, it asks this registry, and the higher app registers its answer at start-up:

- ``TagSource`` (lineage): tags a dataset carries beyond its direct ones (propagated along lineage). The
  catalog reads their implied levels for effective classification, the datasets holding a tag that way, and
  their keys for search documents and access checks.
- ``ReaderSource`` (governance): more readers of hidden assets, e.g. holders of a grant valid now.
- ``WorkspaceAuthority`` (workspaces): whether a user may ask for grants on behalf of a workspace.

Registering the same hook twice (``ready`` runs again in some test set-ups) keeps one copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from django.db.models import Q

    from steward.identity import Viewer

__all__ = ["ReaderSource", "Registry", "TagSource", "WorkspaceAuthority", "registry"]

# f(model, viewer) -> a Q over the model's rows the viewer may also read, or None.
ReaderSource = Callable[[type, "Viewer"], "Q | None"]
# f(user, workspace id) -> whether the user may act for that workspace.
WorkspaceAuthority = Callable[[Any, UUID], bool]


@dataclass(frozen=True)
class TagSource:
    """Tags datasets carry through another app (lineage's propagated tags)."""

    levels: Callable[[list[UUID]], dict[UUID, set[str]]]
    """Dataset ids -> the classification levels their extra tags imply."""
    holders: Callable[[int], Iterable[UUID]]
    """Tag id -> the datasets holding that tag this way."""
    keys: Callable[[list[UUID]], dict[UUID, set[str]]]
    """Dataset ids -> the keys of their extra tags."""
    levels_sql: Callable[[], str] | None = None
    """Optional, PostgreSQL: ``levels`` as one ``SELECT dataset_id, level_code`` over the datasets in the ``uuid[]``
    parameter ``%(ids)s`` (blank codes left out), for a set-based recompute of effective classifications."""


@dataclass
class Registry:
    tag_sources: list[TagSource] = field(default_factory=list)
    reader_sources: list[ReaderSource] = field(default_factory=list)
    workspace_authorities: list[WorkspaceAuthority] = field(default_factory=list)

    def add_tag_source(self, source: TagSource) -> None:
        if source not in self.tag_sources:
            self.tag_sources.append(source)

    def add_reader_source(self, source: ReaderSource) -> None:
        if source not in self.reader_sources:
            self.reader_sources.append(source)

    def add_workspace_authority(self, check: WorkspaceAuthority) -> None:
        if check not in self.workspace_authorities:
            self.workspace_authorities.append(check)


registry = Registry()
