"""Point-in-time reconstruction and compliance reports (compliance officers and admins)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import JsonResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import services as compliance
from compliance.models import ComplianceReport
from compliance.reconstruction import Query
from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_body, parse_int, parse_time, parse_uuid
from steward.api.schema import LOOKS_UP
from steward.api.serializers import StrictSerializer
from steward.errors import NotFound, ValidationFailed

QUERY_PARAMETERS = [
    OpenApiParameter("result", OpenApiTypes.UUID, description="A result record: reconstruct as of its time"),
    OpenApiParameter("model_version", OpenApiTypes.UUID, description="A model version (with at)"),
    OpenApiParameter("at", OpenApiTypes.DATETIME, description="ISO 8601 time with offset (with model_version)"),
    OpenApiParameter("depth", int, description="Upstream lineage depth (default 5)"),
]

ReportSerializer = inline_serializer(
    "ComplianceReport",
    {
        "id": serializers.UUIDField(allow_null=True, help_text="Null when not stored (GET /compliance/reconstruct)"),
        "at": serializers.DateTimeField(),
        "requested_by": serializers.CharField(),
        "requested_at": serializers.DateTimeField(),
        "query": serializers.DictField(),
        "digest": serializers.DictField(help_text="{algorithm: sha256, value: hex} of the bundle's canonical JSON"),
        "links": serializers.DictField(),
        "bundle": serializers.DictField(required=False, help_text="Only on single-report answers"),
    },
)


class ReportInput(StrictSerializer):
    result = serializers.UUIDField(required=False)
    model_version = serializers.UUIDField(required=False)
    at = serializers.CharField(required=False, help_text="ISO 8601 time with offset (with model_version)")
    depth = serializers.IntegerField(required=False, min_value=0)


def _depth(value: int | None) -> int:
    limit = settings.STEWARD_LINEAGE_MAX_DEPTH
    depth = 5 if value is None else value
    if not 0 <= depth <= limit:
        raise ValidationFailed.one("depth", f"Must be between 0 and {limit}.", "out_of_range")
    return depth


def _digest(report: ComplianceReport) -> dict[str, str]:
    return {"algorithm": "sha256", "canonical": "json-sorted-keys-compact-utf8", "value": report.digest}


def report_view(report: ComplianceReport, *, with_bundle: bool) -> dict[str, Any]:
    stored = not report._state.adding  # a GET reconstruction is only looked at: POST /compliance/reports keeps one
    view = {
        "id": str(report.pk) if stored else None,
        "at": report.at.isoformat(),
        "requested_by": report.bundle["report"]["requested_by"],
        "requested_at": report.requested_at.isoformat(),
        "query": report.query,
        "digest": _digest(report),
        "links": {
            "self": reverse("compliance-report", args=[report.pk]),
            "bundle": reverse("compliance-report-bundle", args=[report.pk]),
            "html": reverse("frontend:compliance-report", args=[report.pk]),
        }
        if stored
        else {"store": reverse("compliance-reports")},
    }
    if with_bundle:
        view["bundle"] = report.bundle
    return view


class ReconstructView(APIView):
    @extend_schema(
        summary="What was in effect when a result was produced, or at a time for a model version",
        description=(
            "Runs the reconstruction and returns it with its SHA-256 digest; stores nothing (the asking is audited, "
            "like every read of compliance data). POST /compliance/reports to keep it as a report. "
            "Give `result`, or `model_version` and `at`."
        ),
        parameters=QUERY_PARAMETERS,
        responses=ReportSerializer,
        extensions=LOOKS_UP,
    )
    def get(self, request: Request) -> Response:
        compliance.check_reader(request.user)
        params = request.query_params
        query = Query(
            result=parse_uuid(params.get("result"), "result"),
            model_version=parse_uuid(params.get("model_version"), "model_version"),
            at=parse_time(params.get("at"), "at"),
            lineage_depth=_depth(parse_int(params.get("depth"), "depth", None)),
        )
        report = compliance.report_look(actor=request.user, query=query)
        return Response(report_view(report, with_bundle=True))


class ReportPagination(StewardCursorPagination):
    ordering = "-requested_at"


@extend_schema(summary="Compliance reports, newest first", responses=ReportSerializer)
class ReportListView(ListAPIView):
    pagination_class = ReportPagination
    queryset = ComplianceReport.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ComplianceReport.objects.none()
        compliance.check_reader(self.request.user)
        return ComplianceReport.objects.all()

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset()) or []  # None only without a paginator; this view has one
        return self.get_paginated_response([report_view(r, with_bundle=False) for r in page])

    @extend_schema(
        summary="Create a compliance report",
        request=ReportInput,
        responses={201: ReportSerializer},
        extensions=LOOKS_UP,
    )
    def post(self, request: Request) -> Response:
        compliance.check_reader(request.user)
        data = parse_body(ReportInput, request.data)
        query = Query(
            result=data.get("result"),
            model_version=data.get("model_version"),
            at=parse_time(data.get("at"), "at"),
            lineage_depth=_depth(data.get("depth")),
        )
        report = compliance.report_create(actor=request.user, query=query)
        return Response(report_view(report, with_bundle=True), status=201)


def _report(user: Any, pk: Any) -> ComplianceReport:
    compliance.check_reader(user)
    report = ComplianceReport.objects.filter(pk=pk).first()
    if report is None:
        raise NotFound(f"No compliance report {pk}.")
    return report


class ReportDetailView(APIView):
    @extend_schema(summary="One compliance report with its bundle", responses=ReportSerializer)
    def get(self, request: Request, pk: Any) -> Response:
        report = _report(request.user, pk)
        compliance.report_viewed(actor=request.user, report=report, form="json")
        return Response(report_view(report, with_bundle=True))


class ReportBundleView(APIView):
    @extend_schema(
        summary="Download a report's JSON bundle (bundle + digest of its canonical form)",
        responses={(200, "application/json"): OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, pk: Any) -> JsonResponse:
        report = _report(request.user, pk)
        compliance.report_viewed(actor=request.user, report=report, form="bundle")
        response = JsonResponse(
            {
                "bundle": report.bundle,
                "digest": _digest(report),
            },
            json_dumps_params={"indent": 2, "ensure_ascii": False},
        )
        response["Content-Disposition"] = f'attachment; filename="steward-compliance-{report.pk}.json"'
        return response
