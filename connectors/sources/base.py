"""The contract between a source reader and the code that applies what it saw."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class ColumnSnapshot:
    name: str
    type: str = ""
    ordinal: int = 0
    nullable: bool | None = None
    description: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSnapshot:
    """One table, view, model, seed or source as the outside world describes it.

    ``namespace``/``name`` follow OpenLineage naming (``postgres://host:5432``, ``db.schema.table``).
    ``kind`` is what the source calls it (``table``, ``view``, ``materialized_view``, ``model``, ``seed``,
    ``source``). ``properties`` holds facts without a field of their own (row estimate, primary key,
    foreign keys as relations, dbt tests, view definition, …)."""

    namespace: str
    name: str
    kind: str = "table"
    description: str = ""
    columns: tuple[ColumnSnapshot, ...] = ()
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceSnapshot:
    """Everything one crawl saw. ``complete`` is False when the reader was asked for part of the source
    only, so absent objects must not be marked removed. ``lineage_events`` are OpenLineage RunEvent
    dicts (COMPLETE), the way a producer would have sent them."""

    datasets: list[DatasetSnapshot] = field(default_factory=list)
    lineage_events: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    warnings: list[str] = field(default_factory=list)


Progress = Callable[[int, int | None, str], None]
"""``progress(done, total_or_None, what)``: readers call it as they go."""


class SourceReader(Protocol):
    kind: str
    description_rank: int
    """How much this reader's descriptions weigh against another source's of the same dataset: written
    documentation (dbt) 20, a system's own comments (PostgreSQL) 10. A person's description always wins."""

    def read(self, config: dict[str, Any], secret: dict[str, Any], progress: Progress | None = None) -> SourceSnapshot:
        """Read the source. ``config`` is the non-secret connection (host, port, database, schemas, paths),
        ``secret`` the decrypted credentials. Raise ``SourceError`` with a message saying what to do."""
        ...


class SourceError(Exception):
    """A source could not be read; the message says what to check (host, credentials, path)."""


def column_origin(name: str, table: str, inputs: Collection[str]) -> str:
    """The input dataset a column comes from, as ``openlineage-sql`` names its origin (``name``, made of the
    origin's database, schema and table), or ``""`` when no input is meant.

    ``openlineage-sql`` names the origin of ``orders.id`` after the qualifier, in the query's default schema, when
    the FROM names ``shop.orders``: a name that is no input of the query (and often no relation at all). Such an
    origin resolves to the one input whose table is ``table``; with none or several, it is dropped: column lineage
    never names a dataset the query does not read."""
    if name in inputs:
        return name
    same = [i for i in inputs if i.rsplit(".", 1)[-1] == table]
    return same[0] if len(same) == 1 else ""


def allowed_paths() -> list[Path]:
    """The directories file-reading sources may read (``STEWARD_SOURCE_ALLOWED_PATHS``), resolved."""
    from django.conf import settings  # readers stay importable without Django; only this check needs it

    return [Path(p).expanduser().resolve() for p in getattr(settings, "STEWARD_SOURCE_ALLOWED_PATHS", [])]


def path_problem(value: Any, allowed: list[Path] | None = None) -> str:
    """Why ``value`` may not be read by a source (``""`` when it may): it must be an absolute path inside one of
    the allowed directories once ``~``, ``..`` and symbolic links are resolved."""
    roots = allowed_paths() if allowed is None else allowed
    if not isinstance(value, str) or not value.strip():
        return "A path (a string)."
    if not roots:
        return (
            "Sources may read no file on this server: an administrator lists the directories they may read in "
            "STEWARD_SOURCE_ALLOWED_PATHS."
        )
    path = Path(value).expanduser()
    if not path.is_absolute():
        return "An absolute path."
    real = path.resolve()
    if not any(real == root or real.is_relative_to(root) for root in roots):
        return f"Not inside a directory sources may read (STEWARD_SOURCE_ALLOWED_PATHS: {', '.join(map(str, roots))})."
    return ""
