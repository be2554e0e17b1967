"""Lineage's reads under ``datasets/{id}/``: direct and propagated tags, explanations, versions.

Routed at the catalog's dataset URLs (same paths and names as always). ``POST datasets/{id}/tags`` shares
its path with the GET here, so this view hands it to the catalog's ``dataset_tag_add``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.api.datasets import dataset_tag_add
from catalog.api.serializers import DatasetDetailSerializer, TagAssignInput
from catalog.selectors import dataset_get
from lineage.api.serializers import (
    DatasetExplainSerializer,
    DatasetTagsSerializer,
    DatasetVersionsSerializer,
    FieldTagsSerializer,
)
from lineage.selectors import dataset_explain, dataset_tags, dataset_versions
from steward.api.params import parse_time
from steward.errors import NotFound

__all__ = ["DatasetLineageViewSet"]


class DatasetLineageViewSet(viewsets.GenericViewSet):
    """Propagated tags, explanations and versions of a dataset (registered under ``datasets``)."""

    lookup_value_regex = "[^/]+"

    @extend_schema(methods=["GET"], parameters=[OpenApiParameter("at", str)], responses={200: DatasetTagsSerializer})
    @extend_schema(methods=["POST"], request=TagAssignInput, responses={201: DatasetDetailSerializer})
    @action(detail=True, methods=["get", "post"], url_path="tags")
    def tags(self, request: Request, pk: str) -> Response:
        """GET: direct and propagated tags and the effective classification, now or as of ``?at=`` (all three
        as they were then). POST: tag the dataset, or its ``field``."""
        if request.method == "GET":
            return Response(dataset_tags(user=request.user, pk=pk, at=parse_time(request.query_params.get("at"))))
        return dataset_tag_add(request, pk)

    @extend_schema(
        parameters=[
            OpenApiParameter("tag", str, required=True),
            OpenApiParameter("field", str),
            OpenApiParameter("at", str),
        ],
        responses={200: DatasetExplainSerializer},
    )
    @action(detail=True, methods=["get"])
    def explain(self, request: Request, pk: str) -> Response:
        """Why the dataset (or ``?field=``) carries ``?tag=``: one path from a direct assignment."""
        params = request.query_params
        return Response(
            dataset_explain(
                user=request.user,
                pk=pk,
                tag=params.get("tag", ""),
                field=params.get("field") or None,
                at=parse_time(params.get("at")),
            )
        )

    @extend_schema(
        parameters=[OpenApiParameter("tag", str, required=True), OpenApiParameter("at", str)],
        responses={200: DatasetExplainSerializer},
    )
    @action(detail=True, methods=["get"], url_path=r"fields/(?P<field>[^/]+)/explain")
    def field_explain(self, request: Request, pk: str, field: str) -> Response:
        """Why a column carries ``?tag=``."""
        params = request.query_params
        return Response(
            dataset_explain(
                user=request.user, pk=pk, tag=params.get("tag", ""), field=field, at=parse_time(params.get("at"))
            )
        )

    @extend_schema(parameters=[OpenApiParameter("at", str)], responses={200: FieldTagsSerializer})
    @action(detail=True, methods=["get"], url_path=r"fields/(?P<field>[^/]+)/tags")
    def field_tags(self, request: Request, pk: str, field: str) -> Response:
        """A column's direct and propagated tags."""
        data = dataset_tags(user=request.user, pk=pk, at=parse_time(request.query_params.get("at")))
        if not dataset_get(user=request.user, pk=pk).fields.filter(name=field).exists():
            raise NotFound(f"No field {field!r}.")
        data["field"] = field
        data["direct"] = [t for t in data["direct"] if t["field"] == field]
        data["propagated"] = [t for t in data["propagated"] if t["field"] == field]
        return Response(data)

    @extend_schema(responses={200: DatasetVersionsSerializer})
    @action(detail=True, methods=["get"])
    def versions(self, request: Request, pk: str) -> Response:
        """The dataset's versions from OpenLineage ``version`` facets (or the writing run's id), newest first."""
        return Response(dataset_versions(user=request.user, pk=pk))
