"""Search, typeahead and the classification levels."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api import serializers as s
from catalog.classification import levels
from catalog.search import get_backend
from catalog.search.backends.base import SearchHit, SearchQuery
from steward.api.params import parse_body
from steward.errors import ValidationFailed
from steward.identity import viewer_for

__all__ = ["ClassificationLevelsView", "SearchView", "SuggestView"]


class ClassificationLevelsView(APIView):
    """The configured classification levels, lowest first."""

    @extend_schema(responses=s.ClassificationLevelSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            [
                {"code": lv.code, "name": lv.name, "rank": lv.rank, "hides_metadata": lv.hides_metadata}
                for lv in levels()
            ]
        )


def _search_query(request: Request) -> SearchQuery:
    params = request.query_params
    raw: dict[str, Any] = {}
    for key in params:
        if key in ("kind", "platform", "tag", "classification", "owner"):
            raw[key] = params.getlist(key)
        else:
            raw[key] = params.get(key)
    data = parse_body(s.SearchQueryInput, raw)
    return SearchQuery(
        q=data.get("q", ""),
        kinds=data.get("kind", []),
        platforms=data.get("platform", []),
        tags=data.get("tag", []),
        classifications=data.get("classification", []),
        owners=data.get("owner", []),
        limit=data["limit"],
        offset=data["offset"],
        include_removed=data["include_removed"],
    )


def _hit(hit: SearchHit) -> dict[str, Any]:
    """A hit as ``SearchHitSerializer`` writes it (the schema), built directly: the serializer's field machinery
    took a few milliseconds per page of 20."""
    return {
        "kind": hit.kind,
        "id": str(hit.id),
        "name": hit.name,
        "qualified_name": hit.qualified_name,
        "namespace": hit.namespace,
        "platform": hit.platform,
        "description": hit.description,
        "classification": hit.classification,
        "tags": list(hit.tags),
        "score": float(hit.score),
        "removed": bool(hit.removed),
    }


class SearchView(APIView):
    """Ranked search over datasets and models with facet counts; hidden assets never appear."""

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str),
            OpenApiParameter("kind", str, many=True),
            OpenApiParameter("platform", str, many=True),
            OpenApiParameter("tag", str, many=True),
            OpenApiParameter("classification", str, many=True),
            OpenApiParameter("owner", str, many=True, description="user:alice or group:data-eng"),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
            OpenApiParameter(
                "include_removed",
                bool,
                description="Also find datasets gone from their source (removed_at set; left out by default).",
            ),
        ],
        responses=s.SearchResultsSerializer,
    )
    def get(self, request: Request) -> Response:
        results = get_backend().search(_search_query(request), viewer_for(request.user))
        return Response(
            {
                "total": results.total,
                "total_is_exact": results.exact,
                "results": [_hit(hit) for hit in results.hits],
                "facets": {
                    name: [{"value": v, "count": n} for v, n in values] for name, values in results.facets.items()
                },
            }
        )


class SuggestView(APIView):
    """Typeahead over asset names."""

    @extend_schema(
        parameters=[OpenApiParameter("q", str, required=True), OpenApiParameter("limit", int)],
        responses=inline_serializer("Suggestions", {"results": s.SuggestionSerializer(many=True)}),
    )
    def get(self, request: Request) -> Response:
        q = request.query_params.get("q", "")
        if len(q) > 200:
            raise ValidationFailed.one("q", "At most 200 characters.", "max_length")
        try:
            limit = min(max(int(request.query_params.get("limit", 10)), 1), 50)
        except ValueError:
            raise ValidationFailed.one("limit", "Must be an integer.", "invalid") from None
        found = get_backend().suggest(q, viewer_for(request.user), limit=limit)
        return Response({"results": s.SuggestionSerializer(found, many=True).data})
