"""Sources: list, create, look at, change, delete; queue a crawl; its runs. Data stewards and admins only."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from sources import services
from sources.api import serializers as s
from sources.models import Source, SourceRun
from steward.api.pagination import StewardCursorPagination
from steward.api.params import as_uuid, parse_body
from steward.errors import NotFound


class ByName(StewardCursorPagination):
    ordering = ("name", "id")


class NewestFirst(StewardCursorPagination):
    ordering = ("-queued_at", "-id")


class SourceViewSet(viewsets.GenericViewSet):
    """Crawled sources (docs/sources.md). Credentials are write-only."""

    serializer_class = s.SourceSerializer
    pagination_class = ByName
    queryset = Source.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Source.objects.none()
        services.sources_check(self.request.user)
        return Source.objects.select_related("owner").all()

    def _get(self, pk: Any) -> Source:
        found = self.get_queryset().filter(pk=as_uuid(pk, "source")).first()
        if found is None:
            raise NotFound(f"No source {pk}.")
        return found

    @extend_schema(summary="Sources (data stewards and admins)")
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.SourceSerializer(page, many=True).data)

    @extend_schema(summary="Register a source", request=s.SourceInput, responses={201: s.SourceSerializer})
    def create(self, request: Request) -> Response:
        data = parse_body(s.SourceInput, request.data)
        created = services.source_create(actor=request.user, data=dict(data))
        return Response(s.SourceSerializer(created).data, status.HTTP_201_CREATED)

    @extend_schema(summary="One source and its last run")
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.SourceSerializer(self._get(pk)).data)

    @extend_schema(summary="Change a source (credentials replaced when given)", request=s.SourceInput)
    def partial_update(self, request: Request, pk: str) -> Response:
        found = self._get(pk)
        data = parse_body(s.SourceInput, request.data)
        updated = services.source_update(actor=request.user, source=found, data=dict(data))
        return Response(s.SourceSerializer(updated).data)

    @extend_schema(summary="Change a source (credentials replaced when given)", request=s.SourceInput)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(summary="Delete a source and its runs (crawled datasets stay)", responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.source_delete(actor=request.user, source=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Queue a crawl now", request=None, responses={202: s.SourceRunSerializer})
    @action(detail=True, methods=["post"])
    def crawl(self, request: Request, pk: str) -> Response:
        run = services.run_queue(actor=request.user, source=self._get(pk), trigger="api")
        run.refresh_from_db()
        return Response(s.SourceRunSerializer(run).data, status.HTTP_202_ACCEPTED)

    @extend_schema(summary="The source's runs, newest first", responses={200: s.SourceRunSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def runs(self, request: Request, pk: str) -> Response:
        found = self._get(pk)
        paginator = NewestFirst()
        page = paginator.paginate_queryset(
            SourceRun.objects.filter(source=found).select_related("requested_by"), request, view=self
        )
        return paginator.get_paginated_response(s.SourceRunSerializer(page, many=True).data)
