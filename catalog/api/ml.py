"""ML model and model version endpoints."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api import serializers as s
from catalog.api.pagination import NamePagination, NewestFirstPagination
from catalog.services.popularity import popularity_record
from steward.api.params import parse_body

__all__ = ["MLModelViewSet", "ModelVersionViewSet"]


class MLModelViewSet(viewsets.GenericViewSet):
    """Registered ML models and their versions."""

    serializer_class = s.MLModelSerializer
    pagination_class = NamePagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return selectors.model_list(user=self.request.user)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.MLModelSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        model = selectors.model_get(user=request.user, pk=pk)
        popularity_record(kind="model", ids=[model.pk], signal="open")
        return Response(s.MLModelSerializer(model).data)

    @extend_schema(request=s.MLModelInput, responses={201: s.MLModelSerializer})
    def create(self, request: Request) -> Response:
        model = services.model_create(actor=request.user, **parse_body(s.MLModelInput, request.data))
        return Response(
            s.MLModelSerializer(selectors.model_get(user=request.user, pk=model.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=s.MLModelUpdateInput, responses=s.MLModelSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        model = selectors.model_get(user=request.user, pk=pk)
        services.model_update(actor=request.user, model=model, **parse_body(s.MLModelUpdateInput, request.data))
        return Response(s.MLModelSerializer(selectors.model_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        services.model_delete(actor=request.user, model=selectors.model_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["get"], responses=s.ModelVersionSerializer(many=True))
    @extend_schema(methods=["post"], request=s.ModelVersionInput, responses={201: s.ModelVersionSerializer})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, pk: str) -> Response:
        """List a model's versions (newest first), or register a new one."""
        model = selectors.model_get(user=request.user, pk=pk)
        if request.method == "GET":
            versions = model.versions.select_related("trained_by", "created_by")
            paginator = NewestFirstPagination()
            page = paginator.paginate_queryset(versions, request, view=self)
            return paginator.get_paginated_response(s.ModelVersionSerializer(page, many=True).data)
        data = parse_body(s.ModelVersionInput, request.data)
        if "training_run" in data:
            data["training_run_id"] = data.pop("training_run")
        mv = services.model_version_create(actor=request.user, model=model, **data)
        return Response(s.ModelVersionSerializer(mv).data, status=status.HTTP_201_CREATED)


class ModelVersionViewSet(viewsets.GenericViewSet):
    serializer_class = s.ModelVersionSerializer
    lookup_value_regex = "[^/]+"

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ModelVersionSerializer(selectors.model_version_get(user=request.user, pk=pk)).data)

    @extend_schema(request=s.ModelVersionUpdateInput, responses=s.ModelVersionSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        mv = selectors.model_version_get(user=request.user, pk=pk)
        mv = services.model_version_update(
            actor=request.user, version=mv, **parse_body(s.ModelVersionUpdateInput, request.data)
        )
        return Response(s.ModelVersionSerializer(mv).data)
