"""The reader of each source kind, chosen in settings (``STEWARD_SOURCE_READERS``) and imported lazily by dotted
path, so a kind whose module is absent fails only when used, with a message saying so."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from connectors.sources.base import SourceError, SourceReader

__all__ = ["reader_for", "reader_kinds"]


def reader_kinds() -> list[str]:
    return sorted(settings.STEWARD_SOURCE_READERS)


def reader_for(kind: str) -> SourceReader:
    path = settings.STEWARD_SOURCE_READERS.get(kind)
    if not path:
        raise SourceError(f"No reader for source kind {kind!r}; known kinds: {', '.join(reader_kinds())}.")
    try:
        return import_string(path)()
    except ImportError as exc:
        raise SourceError(f"The reader of kind {kind!r} ({path}) cannot be imported: {exc}.") from None
