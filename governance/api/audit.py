"""The audit log: filtered reading and chain verification (compliance officers and admins)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from governance.api import serializers as s
from governance.selectors import AUDIT_READERS, audit_list
from ledger import audit
from ledger.models import AuditEvent
from steward.api.pagination import StewardCursorPagination
from steward.api.params import parse_time
from steward.errors import PermissionDenied
from steward.identity import has_role


class AuditPagination(StewardCursorPagination):
    ordering = "-seq"


@extend_schema(
    summary="Audit events, newest first (compliance officers and admins)",
    parameters=[
        OpenApiParameter("actor", str, description="Username of who acted (system for background work)"),
        OpenApiParameter("action", str, description="Exact action, or a prefix ending in * (governance.grant.*)"),
        OpenApiParameter("object", str, description="Target id, or type:id (governance.grant:<uuid>)"),
        OpenApiParameter("since", str, description="ISO 8601 time with offset (inclusive)"),
        OpenApiParameter("until", str, description="ISO 8601 time with offset (exclusive)"),
    ],
)
class AuditListView(ListAPIView):
    serializer_class = s.AuditEventSerializer
    pagination_class = AuditPagination
    queryset = AuditEvent.objects.none()

    def get_queryset(self):  # noqa: ANN201
        if getattr(self, "swagger_fake_view", False):
            return AuditEvent.objects.none()
        params = self.request.query_params
        filters = {
            "actor": params.get("actor"),
            "action": params.get("action"),
            "object": params.get("object"),
            "since": parse_time(params.get("since"), "since"),
            "until": parse_time(params.get("until"), "until"),
        }
        return audit_list(user=self.request.user, filters=filters)


class AuditVerifyView(APIView):
    @extend_schema(
        summary="Recompute the hash chain; report the first event whose hash or link is wrong",
        responses=s.AuditVerifySerializer,
    )
    def get(self, request: Request) -> Response:
        if not has_role(request.user, *AUDIT_READERS):
            raise PermissionDenied("Only compliance officers and admins verify the audit log.")
        broken = audit.verify()
        return Response(
            {
                "ok": broken is None,
                "checked": AuditEvent.objects.count(),
                "first_broken": s.AuditEventSerializer(broken).data if broken else None,
            }
        )
