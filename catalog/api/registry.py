"""Model registry endpoints for compliance: deployments (which version served where, when) and result records.

Both are visible to whoever may see the model (compliance officers, stewards and admins see all). Deployments are
created and ended by the model's owners, stewards and admins; results are posted by the same people and by
service accounts, up to 10,000 per call.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from catalog import selectors, services
from catalog.api import serializers as s
from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_body, parse_time
from steward.errors import NotFound, ValidationFailed

__all__ = ["DeploymentViewSet", "ResultViewSet"]


class DeploymentPagination(StewardCursorPagination):
    ordering = ("-deployed_from", "-id")


class ResultPagination(StewardCursorPagination):
    ordering = ("-produced_at", "-id")


DEPLOYMENT_FILTERS = [
    OpenApiParameter("model", str, description="The model's id or name"),
    OpenApiParameter("model_version", str, description="A model version's id"),
    OpenApiParameter("environment", str),
    OpenApiParameter("at", str, description="Only deployments serving at this time (ISO 8601 with offset)"),
]
RESULT_FILTERS = [
    OpenApiParameter("model", str, description="The model's id or name"),
    OpenApiParameter("deployment", str, description="A deployment's id"),
    OpenApiParameter("from", str, description="produced_at at or after this time (ISO 8601 with offset)"),
    OpenApiParameter("to", str, description="produced_at before this time (ISO 8601 with offset)"),
]


class DeploymentViewSet(viewsets.GenericViewSet):
    """Deployments of model versions: list, read, deploy (a redeploy ends the previous one), end."""

    serializer_class = s.DeploymentSerializer
    pagination_class = DeploymentPagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        params = self.request.query_params
        filters: dict[str, Any] = {key: params.get(key) for key in ("model", "model_version", "environment")}
        filters["at"] = parse_time(params.get("at"), "at")
        return selectors.deployment_list(user=self.request.user, filters=filters)

    @extend_schema(summary="Deployments, latest start first", parameters=DEPLOYMENT_FILTERS)
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.DeploymentSerializer(page, many=True).data)

    @extend_schema(summary="One deployment")
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.DeploymentSerializer(selectors.deployment_get(user=request.user, pk=pk)).data)

    @extend_schema(
        summary="Deploy a model version in an environment (ends the model's open deployment there)",
        request=s.DeploymentInput,
        responses={201: s.DeploymentSerializer},
    )
    def create(self, request: Request) -> Response:
        data = parse_body(s.DeploymentInput, request.data)
        try:
            version = selectors.model_version_get(user=request.user, pk=data.pop("model_version"))
        except NotFound:
            raise ValidationFailed.one("model_version", "No such model version.", "unknown") from None
        deployment = services.deployment_create(actor=request.user, model_version=version, **data)
        fresh = selectors.deployment_get(user=request.user, pk=deployment.pk)
        return Response(s.DeploymentSerializer(fresh).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Stop a deployment serving (at a past time or now)",
        request=s.DeploymentEndInput,
        responses=s.DeploymentSerializer,
    )
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str) -> Response:
        data = parse_body(s.DeploymentEndInput, request.data or {})
        deployment = selectors.deployment_get(user=request.user, pk=pk)
        services.deployment_end(actor=request.user, deployment=deployment, at=data.get("at"))
        return Response(s.DeploymentSerializer(selectors.deployment_get(user=request.user, pk=pk)).data)


class ResultViewSet(viewsets.GenericViewSet):
    """Result records: what a model produced, when, from which input; each tied to the deployment serving then."""

    serializer_class = s.ResultRecordSerializer
    pagination_class = ResultPagination
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        params = self.request.query_params
        filters: dict[str, Any] = {key: params.get(key) for key in ("model", "deployment")}
        filters["from"] = parse_time(params.get("from"), "from")
        filters["to"] = parse_time(params.get("to"), "to")
        return selectors.result_list(user=self.request.user, filters=filters)

    @extend_schema(summary="Result records, latest first", parameters=RESULT_FILTERS)
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.ResultRecordSerializer(page, many=True).data)

    @extend_schema(summary="One result record")
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.ResultRecordSerializer(selectors.result_get(user=request.user, pk=pk)).data)

    @extend_schema(
        summary="Record one result, or up to 10,000 as {records: [...]}, all or nothing; re-sending is a no-op",
        request=PolymorphicProxySerializer(
            component_name="ResultIngestInput",
            serializers=[s.ResultRecordInput, s.ResultBulkInput],
            resource_type_field_name=None,
        ),
        responses={201: s.ResultIngestSerializer, 200: s.ResultIngestSerializer},
    )
    def create(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ValidationFailed.one("body", 'Send one record or {"records": [...]}.', "invalid_type")
        if "records" in body:
            unknown = sorted(set(body) - {"records"})
            if unknown:
                raise ValidationFailed.one(unknown[0], "Unknown field.", "unknown_field")
            records = body["records"]
            if not isinstance(records, list):
                raise ValidationFailed.one("records", "Must be a list of records.", "invalid_type")
            result = services.results_ingest(actor=request.user, records=records)
        else:
            result = services.results_ingest(actor=request.user, records=[body], path=None)
        return Response(
            {
                "received": result.received,
                "created": result.created,
                "already_present": result.already_present,
                "ids": result.ids,
            },
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
