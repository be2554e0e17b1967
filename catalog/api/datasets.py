"""Dataset endpoints: list, read, register, change, delete, look up by name, bulk upsert, tag and classify.

Views parse input, call one service or selector, and shape output. Reads of propagated tags, explanations
and versions under ``datasets/{id}/`` are lineage's (``lineage/api/datasets.py``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api import serializers as s
from catalog.api.pagination import NamePagination
from catalog.services.popularity import popularity_record
from catalog.validation import ProblemCollector, parse_dataset
from steward.api.params import parse_body
from steward.api.schema import LOOKS_UP
from steward.errors import ValidationFailed

__all__ = ["DatasetViewSet", "dataset_tag_add"]


def _body_dict(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationFailed.one("body", "The request body must be a JSON object.", "invalid_type")
    return request.data


DATASET_FILTERS = [
    OpenApiParameter("namespace", str),
    OpenApiParameter("platform", str),
    OpenApiParameter("classification", str),
    OpenApiParameter("tag", str),
]


class DatasetViewSet(viewsets.GenericViewSet):
    """Datasets: list, read, register, change, delete, look up by name, bulk upsert, tag and classify."""

    serializer_class = s.DatasetSerializer
    pagination_class = NamePagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        params = self.request.query_params
        return selectors.dataset_list(
            user=self.request.user,
            filters={key: params.get(key) for key in ("namespace", "platform", "classification", "tag")},
        )

    def _get(self, pk: str):
        return selectors.dataset_get(user=self.request.user, pk=pk)

    @extend_schema(parameters=DATASET_FILTERS)
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.DatasetSerializer(page, many=True).data)

    @extend_schema(responses=s.DatasetDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        dataset = self._get(pk)
        popularity_record(kind="dataset", ids=[dataset.pk], signal="open")
        return Response(s.DatasetDetailSerializer(dataset).data)

    @extend_schema(request=s.DatasetInput, responses={201: s.DatasetDetailSerializer})
    def create(self, request: Request) -> Response:
        problems = ProblemCollector()
        spec = problems.checked(parse_dataset(_body_dict(request), "", problems))
        dataset = services.dataset_create(actor=request.user, spec=spec)
        fresh = selectors.dataset_get(user=request.user, pk=dataset.pk)
        return Response(s.DatasetDetailSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DatasetInput(partial=True), responses=s.DatasetDetailSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        dataset = self._get(pk)
        problems = ProblemCollector()
        spec = problems.checked(parse_dataset(_body_dict(request), "", problems, partial=True))
        services.dataset_update(actor=request.user, dataset=dataset, spec=spec)
        return Response(s.DatasetDetailSerializer(self._get(pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.dataset_delete(actor=request.user, dataset=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[OpenApiParameter("namespace", str, required=True), OpenApiParameter("name", str, required=True)],
        responses=s.DatasetDetailSerializer,
        extensions=LOOKS_UP,
    )
    @action(detail=False, methods=["get"])
    def lookup(self, request: Request) -> Response:
        """Find a dataset by its OpenLineage identity, or by an alias (a `symlinks` facet identifier)."""
        namespace = request.query_params.get("namespace", "")
        name = request.query_params.get("name", "")
        missing = [k for k, v in (("namespace", namespace), ("name", name)) if not v]
        if missing:
            raise ValidationError({k: ["This query parameter is required."] for k in missing})
        dataset = selectors.dataset_lookup(user=request.user, namespace=namespace, name=name)
        return Response(s.DatasetDetailSerializer(dataset).data)

    @extend_schema(request=s.DatasetBulkInput, responses=s.DatasetBulkResult)
    @action(detail=False, methods=["post"])
    def bulk(self, request: Request) -> Response:
        """Create or update up to 10,000 datasets (with schemas) atomically; one bad item rejects all."""
        body = _body_dict(request)
        problems = ProblemCollector()
        unknown = sorted(set(body) - {"datasets"})
        for key in unknown:
            problems.add(key, "Unknown field.", "unknown_field")
        items = body.get("datasets")
        if not isinstance(items, list):
            problems.add("datasets", "Must be a list of datasets.", "required" if items is None else "invalid_type")
            problems.raise_if_any()
        parsed = [parse_dataset(item, f"datasets[{i}]", problems) for i, item in enumerate(items or [])]
        problems.raise_if_any()
        specs = [problems.checked(spec) for spec in parsed]
        result = services.dataset_bulk_upsert(actor=request.user, specs=specs)
        return Response(
            {
                "created": len(result.created),
                "updated": len(result.updated),
                "unchanged": len(result.unchanged),
                "ids": result.ids,
            }
        )

    @extend_schema(parameters=[OpenApiParameter("field", str)], responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"tags/(?P<key>[^/]+)")
    def untag(self, request: Request, pk: str, key: str) -> Response:
        """Remove a direct tag from the dataset, or from ``?field=``."""
        services.dataset_tag_remove(
            actor=request.user, dataset=self._get(pk), key=key, field_name=request.query_params.get("field") or None
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.ClassifyInput, responses=s.DatasetDetailSerializer)
    @action(detail=True, methods=["put"])
    def classification(self, request: Request, pk: str) -> Response:
        """Set (or clear with ``null``) the direct classification of the dataset or one of its fields."""
        data = parse_body(s.ClassifyInput, request.data)
        services.dataset_classify(
            actor=request.user,
            dataset=self._get(pk),
            level=data.get("level") or None,
            field_name=data.get("field") or None,
        )
        return Response(s.DatasetDetailSerializer(self._get(pk)).data)


def dataset_tag_add(request: Request, pk: str) -> Response:
    """POST ``datasets/{id}/tags``: tag the dataset, or its ``field`` (routed with lineage's GET on that path)."""
    data = parse_body(s.TagAssignInput, request.data)
    services.dataset_tag_add(
        actor=request.user,
        dataset=selectors.dataset_get(user=request.user, pk=pk),
        key=data["key"],
        field_name=data.get("field") or None,
    )
    return Response(
        s.DatasetDetailSerializer(selectors.dataset_get(user=request.user, pk=pk)).data, status=status.HTTP_201_CREATED
    )
