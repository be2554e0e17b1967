"""``OPTIONS`` answers: the view's name, description and media types. The OpenAPI schema describes the actions."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata

__all__ = ["StewardMetadata"]


class StewardMetadata(SimpleMetadata):
    """DRF's metadata without ``actions``: building those instantiates each view's serializer, which views that
    parse their bodies by hand do not have (``OPTIONS /api/v1/compliance/reports`` was a 500)."""

    def determine_metadata(self, request: Any, view: Any) -> dict[str, Any]:
        metadata = super().determine_metadata(request, view)
        metadata.pop("actions", None)
        return metadata

    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        return {}
