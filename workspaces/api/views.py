"""Workspaces: create, list, look at, stop, start, delete; the templates to create them from."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_body, parse_choice
from workspaces import selectors, services
from workspaces.api import serializers as s
from workspaces.choices import WorkspaceState
from workspaces.models import Template, Workspace


class NewestFirst(StewardCursorPagination):
    ordering = ("-created_at", "-id")


class WorkspaceViewSet(viewsets.GenericViewSet):
    """Workspaces you own, of your projects, or all (admins). Others answer 404."""

    serializer_class = s.WorkspaceSerializer
    pagination_class = NewestFirst
    queryset = Workspace.objects.none()
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Workspace.objects.none()
        state = parse_choice(self.request.query_params.get("state"), "state", WorkspaceState.values)
        return selectors.workspace_list(user=self.request.user, state=state)

    def _out(self, pk: Any, code: int = status.HTTP_200_OK) -> Response:
        return Response(s.WorkspaceSerializer(selectors.workspace_get(user=self.request.user, pk=pk)).data, code)

    @extend_schema(
        summary="Workspaces you may see (not deleted ones, unless state=deleted)",
        parameters=[OpenApiParameter("state", str, enum=WorkspaceState.values)],
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.WorkspaceSerializer(page, many=True).data)

    @extend_schema(
        summary="Create a workspace with datasets your grants cover",
        request=s.WorkspaceCreateInput,
        responses={201: s.WorkspaceSerializer},
    )
    def create(self, request: Request) -> Response:
        data = parse_body(s.WorkspaceCreateInput, request.data)
        created = services.workspace_create(
            actor=request.user,
            template=data["template"],
            datasets=data["datasets"],
            resources=data.get("resources"),
            name=data.get("name", ""),
            project=data.get("project"),
            start=data["start"],
        )
        return self._out(created.pk, status.HTTP_201_CREATED)

    @extend_schema(summary="One workspace: state, URL, datasets, every event")
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._out(pk)

    @extend_schema(summary="Stop the workspace (storage kept)", request=None, responses={202: s.WorkspaceSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        found = selectors.workspace_get(user=request.user, pk=pk)
        services.workspace_stop(actor=request.user, workspace=found)
        return self._out(found.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Start the workspace again (or retry a failed one)",
        request=None,
        responses={202: s.WorkspaceSerializer},
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        found = selectors.workspace_get(user=request.user, pk=pk)
        services.workspace_start(actor=request.user, workspace=found)
        return self._out(found.pk, status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Delete the workspace: its grants are revoked now, the connector removes it",
        responses={202: s.WorkspaceSerializer},
    )
    def destroy(self, request: Request, pk: str) -> Response:
        found = selectors.workspace_get(user=request.user, pk=pk)
        services.workspace_delete(actor=request.user, workspace=found)
        return self._out(found.pk, status.HTTP_202_ACCEPTED)


class TemplateViewSet(viewsets.GenericViewSet):
    """Templates a workspace is created from."""

    serializer_class = s.TemplateSerializer
    queryset = Template.objects.none()
    pagination_class = None

    def get_queryset(self):
        return selectors.template_list()

    @extend_schema(summary="Workspace templates")
    def list(self, request: Request) -> Response:
        return Response(s.TemplateSerializer(self.get_queryset(), many=True).data)
